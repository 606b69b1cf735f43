//! `--footprint`: what depending on the crate costs a program in build
//! time and binary size, next to the crates a program would use instead
//! (`ctrlc`, `signal-hook`) and a plain hello world as the baseline.
//!
//! The programs are written to a scratch directory and their crates fetched
//! first, so that no network time is timed. Each build is
//! `cargo build --release` from an empty target directory of its own, round
//! by round (a, b, c, d, e, a, b, ...) so that a slow moment of the machine
//! hits every program alike.

use std::collections::BTreeSet;
use std::env;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{self, Command};
use std::time::Instant;

use crate::{fail, machine, median, note, ratio, show_limit, show_ratio, today, verdict, SCRATCH};

struct Program {
    key: &'static str,
    what: &'static str,
    /// The crate whose resolved version the table names.
    dependency: Option<&'static str>,
    /// `[dependencies]`; `{atexit}` stands for the crate's own directory.
    dependencies: &'static str,
    main: &'static str,
    /// Its whole output, exit handler included: proof that it works.
    prints: &'static str,
}

const PROGRAMS: [Program; 5] = [
    Program {
        key: "a",
        what: "atexit, default features: a handler + `handle_signals()`",
        dependency: Some("atexit"),
        dependencies: "atexit = { path = {atexit} }",
        main: r#"fn main() {
    atexit::register(|| println!("goodbye"));
    atexit::handle_signals().expect("handle_signals");
    println!("hello world");
}
"#,
        prints: "hello world\ngoodbye\n",
    },
    Program {
        key: "b",
        what: "atexit, `default-features = false`: a handler",
        dependency: Some("atexit"),
        dependencies: "atexit = { path = {atexit}, default-features = false }",
        main: r#"fn main() {
    atexit::register(|| println!("goodbye"));
    println!("hello world");
}
"#,
        prints: "hello world\ngoodbye\n",
    },
    Program {
        key: "c",
        what: "ctrlc, feature `termination`: a handler",
        dependency: Some("ctrlc"),
        dependencies: r#"ctrlc = { version = "3", features = ["termination"] }"#,
        main: r#"fn main() {
    ctrlc::set_handler(|| println!("goodbye")).expect("set_handler");
    println!("hello world");
}
"#,
        prints: "hello world\n",
    },
    Program {
        key: "d",
        what: "signal-hook: a flag for SIGTERM",
        dependency: Some("signal-hook"),
        dependencies: r#"signal-hook = "0.4""#,
        main: r#"use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn main() {
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))
        .expect("register");
    println!("hello world");
}
"#,
        prints: "hello world\n",
    },
    Program {
        key: "e",
        what: "hello world (the size baseline)",
        dependency: None,
        dependencies: "",
        main: r#"fn main() {
    println!("hello world");
}
"#,
        prints: "hello world\n",
    },
];

/// What one program cost.
struct Cost {
    /// Seconds per clean build.
    builds: Vec<f64>,
    /// Packages compiled, itself included.
    crates: usize,
    version: Option<String>,
    binary: Option<u64>,
    stripped: Option<u64>,
}

impl Cost {
    fn binary(&self) -> Option<u64> {
        self.binary
    }

    fn stripped(&self) -> Option<u64> {
        self.stripped
    }
}

/// The crate's own directory: the parent of this one, in any clone.
fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("perf/ has a parent")
}

/// The cargo that runs this program, so that every build uses the same.
fn cargo() -> Command {
    Command::new(env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")))
}

fn project_dir(root: &Path, program: &Program) -> PathBuf {
    root.join(program.key)
}

/// One per program, so that no build reuses another's artifacts.
fn target_dir(root: &Path, program: &Program) -> PathBuf {
    root.join(format!("target-{}", program.key))
}

/// Writes the program's package and fetches its crates.
fn create(program: &Program, root: &Path) -> Cost {
    let project = project_dir(root, program);
    let src = project.join("src");
    fs::create_dir_all(&src).unwrap_or_else(|err| fail(&format!("creating {src:?}: {err}")));
    // A TOML basic string takes the escapes of Rust's `{:?}` for any
    // ordinary path.
    let atexit = format!("{:?}", crate_dir().to_string_lossy());
    let manifest = format!(
        "[package]\nname = \"footprint-{}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         # Not a member of any enclosing workspace.\n[workspace]\n\n[dependencies]\n{}\n",
        program.key,
        program.dependencies.replace("{atexit}", &atexit),
    );
    for (path, text) in [
        (project.join("Cargo.toml"), manifest.as_str()),
        (src.join("main.rs"), program.main),
    ] {
        fs::write(&path, text).unwrap_or_else(|err| fail(&format!("writing {path:?}: {err}")));
    }
    let mut fetch = cargo();
    fetch.args(["fetch", "--quiet"]).current_dir(&project);
    run(&format!("cargo fetch of ({})", program.key), fetch);
    let packages = packages(program, &project);
    let version = program.dependency.and_then(|name| {
        packages
            .iter()
            .find(|(package, _)| package == name)
            .map(|(_, version)| version.clone())
    });
    Cost {
        builds: Vec::new(),
        crates: packages.len(),
        version,
        binary: None,
        stripped: None,
    }
}

fn run(what: &str, mut command: Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|err| fail(&format!("{what}: {err}")));
    if !output.status.success() {
        fail(&format!(
            "{what} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// One clean release build; its wall-clock seconds.
fn build(program: &Program, root: &Path) -> f64 {
    let target = target_dir(root, program);
    match fs::remove_dir_all(&target) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => {
            fail(&format!("emptying {target:?}: {err}"))
        }
        _ => {}
    }
    let mut command = cargo();
    // `--frozen`: the lock file and the fetched crates as they are, no
    // network.
    command
        .args(["build", "--release", "--frozen", "--quiet"])
        .current_dir(project_dir(root, program))
        .env("CARGO_TARGET_DIR", &target);
    let t0 = Instant::now();
    run(&format!("cargo build of ({})", program.key), command);
    t0.elapsed().as_secs_f64()
}

/// The packages a build compiles for this machine, the program included,
/// as (name, version): `cargo tree`, since the lock file also lists every
/// other platform's.
fn packages(program: &Program, project: &Path) -> BTreeSet<(String, String)> {
    let mut tree = cargo();
    tree.args([
        "tree",
        "--frozen",
        "--prefix",
        "none",
        "--edges",
        "normal,build",
    ])
    .current_dir(project);
    run(&format!("cargo tree of ({})", program.key), tree)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?.to_owned();
            let version = words.next()?.strip_prefix('v')?.to_owned();
            Some((name, version))
        })
        .collect()
}

fn size(path: &Path) -> u64 {
    fs::metadata(path)
        .unwrap_or_else(|err| fail(&format!("{path:?}: {err}")))
        .len()
}

/// The binary's size after `strip`; `None`, with a note, without `strip`.
fn stripped_size(binary: &Path) -> Option<u64> {
    let stripped = binary.with_extension("stripped");
    match Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(binary)
        .status()
    {
        Ok(status) if status.success() => Some(size(&stripped)),
        outcome => {
            note(&format!(
                "strip of {binary:?} failed ({outcome:?}): stripped size skipped"
            ));
            None
        }
    }
}

/// Runs the last build of the program, checks what it prints, and takes
/// its sizes.
fn inspect(program: &Program, root: &Path, cost: &mut Cost) {
    let binary = target_dir(root, program)
        .join("release")
        .join(format!("footprint-{}", program.key));
    let printed = run(&format!("({})", program.key), Command::new(&binary));
    if printed != program.prints {
        fail(&format!(
            "({}) printed {printed:?}, not {:?}",
            program.key, program.prints
        ));
    }
    cost.binary = Some(size(&binary));
    cost.stripped = stripped_size(&binary);
}

/// `--footprint`: builds every program `rounds` times, then prints the
/// table.
pub fn main(rounds: usize) {
    let root = env::temp_dir().join(format!("atexit-footprint-{}", process::id()));
    let _ = SCRATCH.set(root.clone());
    let mut costs = PROGRAMS.each_ref().map(|program| create(program, &root));
    let started = Instant::now();
    for round in 0..rounds {
        let _ = writeln!(
            io::stderr(),
            "atexit-perf: build round {} of {rounds} ({:.0?} so far)",
            round + 1,
            started.elapsed()
        );
        for (program, cost) in PROGRAMS.iter().zip(&mut costs) {
            cost.builds.push(build(program, &root));
        }
    }
    for (program, cost) in PROGRAMS.iter().zip(&mut costs) {
        inspect(program, &root, cost);
    }
    let _ = fs::remove_dir_all(&root);
    let _ = io::stdout().write_all(report(rounds, &costs).as_bytes());
    let _ = io::stdout().flush();
}

const KB: f64 = 1024.0;

fn kilobytes(value: Option<u64>) -> String {
    value.map_or("n/a".to_owned(), |v| format!("{:.1} KB", v as f64 / KB))
}

fn added(value: Option<f64>) -> String {
    value.map_or("n/a".to_owned(), |v| format!("{:+.1} KB", v / KB))
}

fn seconds(values: &[f64]) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    format!("{:.1} s ({min:.1} s)", median(values))
}

fn report(rounds: usize, costs: &[Cost; 5]) -> String {
    let [a, b, c, d, e] = costs;
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .map_or("rustc: unknown".to_owned(), |output| {
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        });
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## Footprint: atexit vs ctrlc vs signal-hook\n\n\
         machine: {}; {rustc}; date {}\n\
         command: cargo run --release -p atexit-perf -- --footprint\n\
         build time: `cargo build --release --frozen` from an empty target directory, crates fetched beforehand; \
         median (min) of the builds, {rounds} per program, interleaved\n\
         size: the release binary as cargo leaves it, and after `strip`; added = over (e); 1 KB = 1024 B\n\
         crates: the packages compiled (`cargo tree`), the program included\n",
        machine(),
        today(),
    );
    let _ = writeln!(
        out,
        "| program | resolved | crates | build time | binary | stripped | added | added, stripped |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    // Bytes over the baseline (e).
    let over = |cost: &Cost, of: fn(&Cost) -> Option<u64>| Some(of(cost)? as f64 - of(e)? as f64);
    for (program, cost) in PROGRAMS.iter().zip(costs) {
        let _ = writeln!(
            out,
            "| ({}) {} | {} | {} | {} | {} | {} | {} | {} |",
            program.key,
            program.what,
            cost.version.as_deref().unwrap_or(""),
            cost.crates,
            seconds(&cost.builds),
            kilobytes(cost.binary),
            kilobytes(cost.stripped),
            added(over(cost, Cost::binary)),
            added(over(cost, Cost::stripped)),
        );
    }
    let _ = writeln!(
        out,
        "\n| figure | value | target | |\n| --- | --- | --- | --- |"
    );
    for (figure, ours, theirs, anchor) in [
        ("(a) vs (c): build time", a, c, "ctrlc"),
        ("(b) vs (d): build time", b, d, "signal-hook"),
    ] {
        let value = ratio(Some(median(&ours.builds)), Some(median(&theirs.builds)));
        let _ = writeln!(
            out,
            "| {figure} | {} | <= {} x {anchor} | {} |",
            show_ratio(value, anchor),
            show_limit(1.0),
            verdict(value, 1.0),
        );
    }
    let a_added = over(a, Cost::stripped);
    let _ = writeln!(
        out,
        "| (a): size added over (e), stripped | {} | <= 100 KB | {} |\n",
        added(a_added),
        verdict(a_added.map(|bytes| bytes / KB), 100.0),
    );
    out
}

//! `cargo run --release -p atexit-perf`: times the atexit crate, glibc's
//! `atexit` (a C program built with `cc` at run time) and CPython's
//! `atexit` (`python3`) doing the same work, in one run, and prints each
//! figure (median of several fresh processes), each ratio, and the targets
//! of the crate's performance issue.
//!
//! It also counts instructions under callgrind (`instructions.rs`), the
//! figures that do not depend on the machine, when valgrind is installed.
//!
//! `--quick` (or `ATEXIT_PERF_QUICK=1`) runs everything at tiny counts in
//! a few seconds: a smoke test that the comparison works, not a measurement.
//! Missed targets are reported, never turned into a failure; the command
//! fails only when a measurement could not be made or came out wrong (a
//! handler that did not run, a child that crashed).
//!
//! `--footprint` measures something else instead: the build time and
//! binary size of a program that uses the crate, against `ctrlc` and
//! `signal-hook` (`footprint.rs`; fetches crates on its first run).

#[macro_use]
mod fn_table;
mod child;
mod footprint;
mod instructions;
mod never;
mod run_clock;

use std::collections::BTreeMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{self, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use instructions::{Counts, PerHandler, Subject};

#[global_allocator]
static ALLOCATOR: never::CountingAlloc = never::CountingAlloc;

const GLIBC_SOURCE: &str = include_str!("../anchors/glibc.c");
const CPYTHON_SOURCE: &str = include_str!("../anchors/cpython.py");

/// How much work each figure gets.
struct Plan {
    quick: bool,
    samples: usize,
    /// Handler counts for the growth table; the last one is used for the
    /// register, exit-run and memory figures.
    sizes: Vec<usize>,
    /// Live handlers for the unregister figures.
    live: usize,
    /// Rounds of 256 `unregister(f)` calls per crate child.
    rounds: usize,
    /// Register + `Handle::unregister` pairs per crate child.
    pairs: usize,
    /// The two handler counts whose instruction totals are subtracted.
    callgrind_sizes: [usize; 2],
    /// Each callgrind run this many times, to show that the counts agree.
    callgrind_repeats: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                samples: 3,
                sizes: vec![100, 1_000],
                live: 1_000,
                rounds: 1,
                pairs: 1_000,
                callgrind_sizes: [1_000, 2_000],
                callgrind_repeats: 1,
            }
        } else {
            Plan {
                quick,
                samples: 7,
                sizes: vec![1_000, 10_000, 100_000, 1_000_000],
                live: 100_000,
                rounds: 16,
                pairs: 200_000,
                callgrind_sizes: [100_000, 200_000],
                callgrind_repeats: 2,
            }
        }
    }

    fn big(&self) -> usize {
        *self.sizes.last().expect("at least one size")
    }

    /// CPython scans every entry per `unregister`: fewer calls when many
    /// are live, so that each sample scans about the same number.
    fn python_unregister_calls(&self, live: usize) -> usize {
        (25_600_000 / live.max(1)).clamp(4, 256)
    }
}

/// One kind of child process; each sample runs it afresh.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Job {
    /// The crate: register, memory, exit run.
    Crate {
        registry: bool,
        closure: bool,
        handlers: usize,
    },
    Glibc {
        handlers: usize,
    },
    Python {
        with_arg: bool,
        handlers: usize,
    },
    CrateUnregister {
        live: usize,
    },
    PythonUnregister {
        live: usize,
    },
}

/// The anchors available on this machine.
struct Tools {
    exe: PathBuf,
    glibc: Option<PathBuf>,
    python: Option<PathBuf>,
}

impl Job {
    /// The command for one sample; `None` when its tool is missing.
    fn command(&self, tools: &Tools, plan: &Plan) -> Option<Command> {
        let mut command;
        match *self {
            Job::Crate {
                registry,
                closure,
                handlers,
            } => {
                command = Command::new(&tools.exe);
                command.args([
                    "--child",
                    "lifecycle",
                    if registry { "registry" } else { "global" },
                    if closure { "closure" } else { "fn" },
                    &handlers.to_string(),
                ]);
            }
            Job::Glibc { handlers } => {
                command = Command::new(tools.glibc.as_ref()?);
                command.args(["lifecycle", &handlers.to_string()]);
            }
            Job::Python { with_arg, handlers } => {
                command = Command::new("python3");
                command.arg(tools.python.as_ref()?);
                command.args([
                    if with_arg {
                        "lifecycle-arg"
                    } else {
                        "lifecycle"
                    },
                    &handlers.to_string(),
                ]);
            }
            Job::CrateUnregister { live } => {
                command = Command::new(&tools.exe);
                command.args([
                    "--child",
                    "unregister",
                    &live.to_string(),
                    &plan.rounds.to_string(),
                    &plan.pairs.to_string(),
                ]);
            }
            Job::PythonUnregister { live } => {
                command = Command::new("python3");
                command.arg(tools.python.as_ref()?);
                command.args([
                    "unregister",
                    &live.to_string(),
                    &plan.python_unregister_calls(live).to_string(),
                ]);
            }
        }
        Some(command)
    }

    /// The handlers a lifecycle child must report as run.
    fn expected_runs(&self) -> Option<usize> {
        match *self {
            Job::Crate { handlers, .. }
            | Job::Glibc { handlers }
            | Job::Python { handlers, .. } => Some(handlers - 2),
            _ => None,
        }
    }
}

type Figures = BTreeMap<String, f64>;

/// How long one child may take; the slowest takes about two seconds.
const CHILD_DEADLINE: Duration = Duration::from_secs(120);

/// Runs a child to completion and parses its `key value` lines; any
/// failure ends the whole comparison.
fn run_child(what: &str, mut command: Command) -> Figures {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().unwrap_or_else(|err| {
        fail(&format!("could not start the {what} child: {err}"));
    });
    let pid = child.id();
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = match finished.recv_timeout(CHILD_DEADLINE) {
        Ok(Ok(output)) => output,
        Ok(Err(err)) => fail(&format!("waiting for the {what} child: {err}")),
        Err(_) => {
            // SAFETY: `pid` is our child and is not reaped yet: its waiter
            // has not returned. Killing it lets nothing else go wrong.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            fail(&format!(
                "the {what} child hung: killed after {CHILD_DEADLINE:?}"
            ));
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        fail(&format!(
            "the {what} child failed ({}):\n{stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let mut figures = Figures::new();
    for line in stdout.lines() {
        if let Some((key, value)) = line.split_once(' ') {
            if let Ok(value) = value.trim().parse() {
                figures.insert(key.to_owned(), value);
            }
        }
    }
    figures
}

/// The scratch directory, removed however the run ends.
static SCRATCH: OnceLock<PathBuf> = OnceLock::new();

fn fail(message: &str) -> ! {
    let _ = writeln!(io::stderr(), "atexit-perf: {message}");
    if let Some(dir) = SCRATCH.get() {
        let _ = fs::remove_dir_all(dir);
    }
    process::exit(1);
}

/// Writes the anchors into `dir` and builds the C one.
fn prepare_tools(dir: &Path) -> Tools {
    let exe = env::current_exe().unwrap_or_else(|err| fail(&format!("current_exe: {err}")));
    let source = dir.join("glibc.c");
    let binary = dir.join("glibc-atexit");
    fs::write(&source, GLIBC_SOURCE).unwrap_or_else(|err| fail(&format!("writing C: {err}")));
    let built = Command::new("cc")
        .args(["-O2", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-o"])
        .arg(&binary)
        .arg(&source)
        .status();
    let glibc = match built {
        Ok(status) if status.success() => Some(binary),
        Ok(status) => {
            note(&format!("cc failed ({status}): glibc figures skipped"));
            None
        }
        Err(err) => {
            note(&format!("no cc ({err}): glibc figures skipped"));
            None
        }
    };
    let script = dir.join("cpython.py");
    fs::write(&script, CPYTHON_SOURCE)
        .unwrap_or_else(|err| fail(&format!("writing Python: {err}")));
    let python = match Command::new("python3")
        .arg("-c")
        .arg("import atexit")
        .status()
    {
        Ok(status) if status.success() => Some(script),
        _ => {
            note("no working python3: CPython figures skipped");
            None
        }
    };
    Tools { exe, glibc, python }
}

fn note(message: &str) {
    let _ = writeln!(io::stderr(), "atexit-perf: {message}");
}

/// All samples of all jobs, interleaved round by round so that a slow
/// moment of the machine hits every contender alike.
fn measure(plan: &Plan, tools: &Tools) -> BTreeMap<Job, BTreeMap<String, Vec<f64>>> {
    let mut jobs = Vec::new();
    for &handlers in &plan.sizes {
        jobs.push(Job::Crate {
            registry: false,
            closure: false,
            handlers,
        });
        jobs.push(Job::Glibc { handlers });
        jobs.push(Job::Python {
            with_arg: false,
            handlers,
        });
        jobs.push(Job::CrateUnregister { live: handlers });
        jobs.push(Job::PythonUnregister { live: handlers });
    }
    let big = plan.big();
    jobs.push(Job::Crate {
        registry: false,
        closure: true,
        handlers: big,
    });
    jobs.push(Job::Python {
        with_arg: true,
        handlers: big,
    });
    for closure in [false, true] {
        jobs.push(Job::Crate {
            registry: true,
            closure,
            handlers: big,
        });
    }
    if !plan.sizes.contains(&plan.live) {
        jobs.push(Job::CrateUnregister { live: plan.live });
        jobs.push(Job::PythonUnregister { live: plan.live });
    }

    let mut results: BTreeMap<Job, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    let started = Instant::now();
    for round in 0..plan.samples {
        let _ = writeln!(
            io::stderr(),
            "atexit-perf: round {} of {} ({:.0?} so far)",
            round + 1,
            plan.samples,
            started.elapsed()
        );
        for job in &jobs {
            let Some(command) = job.command(tools, plan) else {
                continue;
            };
            let figures = run_child(&format!("{job:?}"), command);
            if let Some(expected) = job.expected_runs() {
                let ran = figures.get("ran").copied().unwrap_or(-1.0);
                if ran != expected as f64 {
                    fail(&format!("{job:?}: {ran} handlers ran, {expected} expected"));
                }
            }
            let entry = results.entry(job.clone()).or_default();
            for (key, value) in figures {
                entry.entry(key).or_default().push(value);
            }
        }
    }
    results
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

/// Medians by job and key.
struct Table(BTreeMap<Job, BTreeMap<String, Vec<f64>>>);

impl Table {
    fn get(&self, job: &Job, key: &str) -> Option<f64> {
        self.0
            .get(job)?
            .get(key)
            .filter(|values| !values.is_empty())
            .map(|values| median(values))
    }
}

fn nanos(value: Option<f64>) -> String {
    match value {
        None => "n/a".to_owned(),
        Some(v) if v >= 100_000.0 => format!("{:.2} ms", v / 1e6),
        Some(v) if v >= 1_000.0 => format!("{:.2} µs", v / 1e3),
        Some(v) => format!("{v:.1} ns"),
    }
}

fn instructions(value: Option<f64>) -> String {
    value.map_or("n/a".to_owned(), |v| format!("{v:.1} instr"))
}

fn bytes(value: Option<f64>) -> String {
    value.map_or("n/a".to_owned(), |v| format!("{v:.1} B"))
}

fn ratio(numerator: Option<f64>, denominator: Option<f64>) -> Option<f64> {
    match (numerator, denominator) {
        (Some(n), Some(d)) if d > 0.0 => Some(n / d),
        _ => None,
    }
}

fn show_ratio(value: Option<f64>, anchor: &str) -> String {
    match value {
        None => "n/a".to_owned(),
        Some(v) if v < 0.01 => format!("{v:.1e} x {anchor}"),
        Some(v) => format!("{v:.2} x {anchor}"),
    }
}

fn show_limit(limit: f64) -> String {
    if limit >= 0.1 {
        format!("{limit:.1}")
    } else {
        format!("{limit}")
    }
}

fn verdict(value: Option<f64>, limit: f64) -> &'static str {
    match value {
        None => "not measured",
        Some(v) if v <= limit => "met",
        Some(_) => "MISSED",
    }
}

fn count_label(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// Today's date (UTC), from the system clock.
fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() / 86_400) as i64;
    // Days since 1970-01-01 to a civil date (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, name)| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    // SAFETY: glibc returns a pointer to a static NUL-terminated string.
    let glibc = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) }
        .to_string_lossy()
        .into_owned();
    format!("{cores} cores ({model}), glibc {glibc}")
}

struct Never {
    figures: Figures,
}

impl Never {
    fn get(&self, key: &str) -> f64 {
        self.figures.get(key).copied().unwrap_or(-1.0)
    }

    fn clean(&self) -> bool {
        self.get("threads_at_start") == 1.0
            && self.get("threads_at_exit") == 1.0
            && self.get("allocations") == 0.0
            && self.get("exit_hooks") == 0.0
            && self.get("fork_hooks") == 0.0
    }

    fn describe(&self) -> String {
        format!(
            "threads {} -> {}, allocations {}, exit hooks {}, fork hooks {}",
            self.get("threads_at_start"),
            self.get("threads_at_exit"),
            self.get("allocations"),
            self.get("exit_hooks"),
            self.get("fork_hooks"),
        )
    }
}

/// How the instruction counts were made, for the header.
fn callgrind_method(counts: Option<&Counts>) -> String {
    let Some(counts) = counts else {
        return "not counted (no valgrind)".to_owned();
    };
    let [small, big] = counts.sizes;
    let agreement = if counts.repeats > 1 {
        format!(
            "{} repeats agree within {:.3} instructions per handler",
            counts.repeats, counts.spread
        )
    } else {
        "one run each".to_owned()
    };
    format!(
        "{} --tool=callgrind, per handler = (total at {} - total at {}) / {}; \
         exit run = lifecycle minus a child that `_exit`s after registering; {agreement}",
        counts.valgrind,
        count_label(big),
        count_label(small),
        count_label(big - small),
    )
}

fn report(
    plan: &Plan,
    table: &Table,
    never: &Never,
    control: &Never,
    python_version: &str,
    counts: Option<&Counts>,
) {
    let big = plan.big();
    let live = plan.live;
    let crate_life = |registry, closure, handlers| Job::Crate {
        registry,
        closure,
        handlers,
    };
    let glibc = Job::Glibc { handlers: big };
    let python = Job::Python {
        with_arg: false,
        handlers: big,
    };
    let python_arg = Job::Python {
        with_arg: true,
        handlers: big,
    };
    let crate_unregister = Job::CrateUnregister { live };
    let python_unregister = Job::PythonUnregister { live };

    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## atexit crate vs glibc atexit vs CPython atexit\n\n\
         machine: {}; CPython {python_version}; date {}\n\
         command: cargo run --release -p atexit-perf{}\n\
         each figure: median of {} runs, each in a fresh process\n\
         instructions: {}\n",
        machine(),
        today(),
        if plan.quick { " -- --quick" } else { "" },
        plan.samples,
        callgrind_method(counts),
    );
    if plan.quick {
        let _ = writeln!(
            out,
            "QUICK MODE: tiny counts, the figures below mean nothing; this run only shows that every measurement works.\n"
        );
    }
    let n = count_label(big);
    let l = count_label(live);
    let _ = writeln!(
        out,
        "| figure | atexit crate | glibc | CPython | ratio | target | |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    let mut row = |figure: String,
                   ours: Option<f64>,
                   c: Option<f64>,
                   py: Option<f64>,
                   ratio: Option<f64>,
                   anchor: &str,
                   limit: f64,
                   unit: fn(Option<f64>) -> String| {
        let _ = writeln!(
            out,
            "| {figure} | {} | {} | {} | {} | <= {} x {anchor} | {} |",
            unit(ours),
            unit(c),
            unit(py),
            show_ratio(ratio, anchor),
            show_limit(limit),
            verdict(ratio, limit),
        );
    };

    let fn_register = table.get(&crate_life(false, false, big), "register_ns");
    let c_register = table.get(&glibc, "register_ns");
    row(
        format!("register a function item, per call ({n} handlers)"),
        fn_register,
        c_register,
        table.get(&python, "register_ns"),
        ratio(fn_register, c_register),
        "glibc",
        1.0,
        nanos,
    );
    let closure_register = table.get(&crate_life(false, true, big), "register_ns");
    row(
        format!("register a closure capturing 8 bytes, per call ({n})"),
        closure_register,
        c_register,
        table.get(&python_arg, "register_ns"),
        ratio(closure_register, c_register),
        "glibc",
        1.5,
        nanos,
    );
    let fn_run = table.get(&crate_life(false, false, big), "run_ns_per_handler");
    let c_run = table.get(&glibc, "run_ns_per_handler");
    row(
        format!("exit run, per handler ({n} handlers)"),
        fn_run,
        c_run,
        table.get(&python, "run_ns_per_handler"),
        ratio(fn_run, c_run),
        "glibc",
        1.0,
        nanos,
    );
    let count = |subject, pick: fn(PerHandler) -> f64| {
        counts.and_then(|counts| counts.get(subject)).map(pick)
    };
    let c_register_instr = count(Subject::Glibc, |each| each.register);
    for (figure, ours, limit) in [
        (
            "instructions per registration of a function item",
            count(Subject::CrateFn, |each| each.register),
            1.0,
        ),
        (
            "instructions per registration of a closure capturing 8 bytes",
            count(Subject::CrateClosure, |each| each.register),
            1.5,
        ),
    ] {
        row(
            figure.to_owned(),
            ours,
            c_register_instr,
            None,
            ratio(ours, c_register_instr),
            "glibc",
            limit,
            instructions,
        );
    }
    let fn_run_instr = count(Subject::CrateFn, |each| each.run);
    let c_run_instr = count(Subject::Glibc, |each| each.run);
    row(
        "instructions per handler of the exit run".to_owned(),
        fn_run_instr,
        c_run_instr,
        None,
        ratio(fn_run_instr, c_run_instr),
        "glibc",
        1.0,
        instructions,
    );
    let unregister = table.get(&crate_unregister, "unregister_ns");
    let py_unregister = table.get(&python_unregister, "unregister_ns");
    row(
        format!("`unregister(f)` with {l} live"),
        unregister,
        None,
        py_unregister,
        ratio(unregister, py_unregister),
        "CPython",
        0.2,
        nanos,
    );
    let pair = table.get(&crate_unregister, "pair_ns");
    row(
        format!("`Handle` register + unregister with {l} live"),
        pair,
        None,
        py_unregister,
        ratio(pair, py_unregister),
        "CPython",
        0.0001,
        nanos,
    );
    let memory = table.get(&crate_life(false, false, big), "bytes_per_handler");
    let _ = writeln!(
        out,
        "| memory per pending function-item handler ({n}) | {} | {} | {} | | <= 48 B | {} |",
        bytes(memory),
        bytes(table.get(&glibc, "bytes_per_handler")),
        bytes(table.get(&python, "bytes_per_handler")),
        verdict(memory, 48.0),
    );
    let _ = writeln!(
        out,
        "| a program that never registers | {} | | | | no thread, no allocation, no lock | {} |",
        never.describe(),
        if never.clean() { "met" } else { "MISSED" },
    );
    let _ = writeln!(
        out,
        "\nControl for the last row, a program that registers one handler: {}.\n\
         (No exit or fork hook armed means no crate code runs at exit or at fork, so the registry lock is never taken.)",
        control.describe()
    );

    let _ = writeln!(
        out,
        "\n### `Registry` and closures ({n} handlers, no targets)\n\n\
         | figure | per op |\n| --- | --- |"
    );
    for (what, job, key) in [
        (
            "`Registry::register`, function item",
            crate_life(true, false, big),
            "register_ns",
        ),
        (
            "`Registry::register`, closure capturing 8 bytes",
            crate_life(true, true, big),
            "register_ns",
        ),
        (
            "`Registry::run`, per handler",
            crate_life(true, false, big),
            "run_ns_per_handler",
        ),
        (
            "exit run of closures, per handler",
            crate_life(false, true, big),
            "run_ns_per_handler",
        ),
    ] {
        let _ = writeln!(out, "| {what} | {} |", nanos(table.get(&job, key)));
    }
    let _ = writeln!(
        out,
        "| exit run of closures, instructions per handler | {} |",
        instructions(count(Subject::CrateClosure, |each| each.run))
    );
    let _ = writeln!(
        out,
        "| memory per pending closure handler | {} |",
        bytes(table.get(&crate_life(false, true, big), "bytes_per_handler"))
    );

    let _ = writeln!(
        out,
        "\n### How cost grows with the number of handlers\n\n\
         Per operation; constant per operation means linear in handlers.\n\n\
         | handlers | register fn item: crate / glibc | exit run per handler: crate / glibc | memory per handler: crate / glibc | `unregister(f)` with that many live: crate / CPython | `Handle` pair with that many live |\n\
         | --- | --- | --- | --- | --- | --- |"
    );
    for &size in &plan.sizes {
        let ours = crate_life(false, false, size);
        let c = Job::Glibc { handlers: size };
        let unreg = Job::CrateUnregister { live: size };
        let py_unreg = Job::PythonUnregister { live: size };
        let _ = writeln!(
            out,
            "| {} | {} / {} | {} / {} | {} / {} | {} / {} | {} |",
            count_label(size),
            nanos(table.get(&ours, "register_ns")),
            nanos(table.get(&c, "register_ns")),
            nanos(table.get(&ours, "run_ns_per_handler")),
            nanos(table.get(&c, "run_ns_per_handler")),
            bytes(table.get(&ours, "bytes_per_handler")),
            bytes(table.get(&c, "bytes_per_handler")),
            nanos(table.get(&unreg, "unregister_ns")),
            nanos(table.get(&py_unreg, "unregister_ns")),
            nanos(table.get(&unreg, "pair_ns")),
        );
    }
    let (first, last) = (plan.sizes[0], big);
    let growth = |job: fn(usize) -> Job, key: &str| {
        ratio(table.get(&job(last), key), table.get(&job(first), key))
            .map_or("n/a".to_owned(), |r| format!("{r:.2}x"))
    };
    let _ = writeln!(
        out,
        "\nPer-operation cost at {} relative to {}: register {}, exit run {}, `unregister(f)` {}, `Handle` pair {}; CPython `unregister` {}.\n",
        count_label(last),
        count_label(first),
        growth(|h| Job::Crate { registry: false, closure: false, handlers: h }, "register_ns"),
        growth(|h| Job::Crate { registry: false, closure: false, handlers: h }, "run_ns_per_handler"),
        growth(|live| Job::CrateUnregister { live }, "unregister_ns"),
        growth(|live| Job::CrateUnregister { live }, "pair_ns"),
        growth(|live| Job::PythonUnregister { live }, "unregister_ns"),
    );
    let _ = io::stdout().write_all(out.as_bytes());
    let _ = io::stdout().flush();
}

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        child::main(&args[1..]);
        return;
    }
    let mut quick = env::var_os("ATEXIT_PERF_QUICK").is_some_and(|value| value != "0");
    let mut footprint = false;
    for arg in &args {
        match arg.as_str() {
            "--quick" => quick = true,
            "--footprint" => footprint = true,
            _ => fail(&format!(
                "unknown argument {arg:?}\nusage: cargo run --release -p atexit-perf [-- [--quick] [--footprint]]"
            )),
        }
    }
    if footprint {
        // Quick: each program built once, a smoke test of the mode.
        footprint::main(if quick { 1 } else { 2 });
        return;
    }
    if cfg!(debug_assertions) && !quick {
        note("this is a debug build: use `cargo run --release -p atexit-perf` for real figures");
    }
    let plan = Plan::new(quick);
    let dir = env::temp_dir().join(format!("atexit-perf-{}", process::id()));
    fs::create_dir_all(&dir).unwrap_or_else(|err| fail(&format!("creating {dir:?}: {err}")));
    let _ = SCRATCH.set(dir.clone());
    let tools = prepare_tools(&dir);

    let never_job = |mode: &str| {
        let mut command = Command::new(&tools.exe);
        command.args(["--child", mode]);
        Never {
            figures: run_child(mode, command),
        }
    };
    let never = never_job("never");
    let control = never_job("never-control");
    let python_version = tools.python.as_ref().map_or("n/a".to_owned(), |script| {
        Command::new("python3")
            .arg(script)
            .args(["lifecycle", "3"])
            .output()
            .ok()
            .and_then(|output| {
                String::from_utf8_lossy(&output.stdout)
                    .lines()
                    .find_map(|line| line.strip_prefix("version ").map(str::to_owned))
            })
            .unwrap_or_else(|| "unknown".to_owned())
    });

    let results = measure(&plan, &tools);
    // After the timed children, which other processes would slow down.
    let counts = instructions::measure(&plan, &tools, &dir);
    let _ = fs::remove_dir_all(&dir);
    report(
        &plan,
        &Table(results),
        &never,
        &control,
        &python_version,
        counts.as_ref(),
    );
}

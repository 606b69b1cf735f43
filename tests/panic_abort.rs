//! `panic = "abort"`: a panic runs the exit handlers, then the process dies
//! of SIGABRT. The program under test is `fixtures/panic-abort`, built here
//! with the workspace's `panic-abort` profile (a profile applies to a whole
//! build, so it cannot be this test binary's own).

#[path = "common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use common::Outcome;

/// The fixture's target, when this test is built for another than the host.
const TARGET: Option<&str> = if cfg!(all(target_arch = "x86_64", target_env = "musl")) {
    Some("x86_64-unknown-linux-musl")
} else {
    None
};

/// Builds the fixture once (beside this test's own build) and returns it.
fn fixture() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        // target/<profile>/deps/this-test: its own target dir beside them,
        // since the running `cargo test` holds the lock of this one.
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target dir");
        let target_dir = profile_dir.join("panic-abort-fixture");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "--profile", "panic-abort"])
            .args(["-p", "atexit-fixture-panic-abort"])
            .arg("--manifest-path")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target_dir);
        let mut built = target_dir.clone();
        if let Some(target) = TARGET {
            build.args(["--target", target]);
            built.push(target);
        }
        let status = build.status().expect("run cargo build for the fixture");
        assert!(
            status.success(),
            "building fixtures/panic-abort failed: {status}"
        );
        built.join("panic-abort").join("atexit-fixture-panic-abort")
    })
}

fn play(scenario: &str) -> Outcome {
    let mut command = Command::new(fixture());
    command.arg(scenario).env("RUST_BACKTRACE", "0");
    let outcome = common::run(command);
    assert!(
        outcome.stdout.starts_with("built with panic = \"abort\"\n"),
        "the fixture was not built with panic = \"abort\": {outcome:?}"
    );
    outcome
}

const HANDLERS_RAN: &str = "newest ran, reason Some(Panic)\noldest ran\n";

/// The one panic message on stderr: its line in the fixture, and its text.
fn the_panic(outcome: &Outcome) -> (String, String) {
    let panics = outcome.panic_messages();
    assert_eq!(panics.len(), 1, "{outcome:?}");
    assert!(outcome.stderr_without_panics().is_empty(), "{outcome:?}");
    panics[0].clone()
}

#[test]
fn a_panic_in_main_runs_the_handlers_then_aborts() {
    let outcome = play("main_panics");
    assert_eq!(
        outcome.stdout,
        format!("built with panic = \"abort\"\n{HANDLERS_RAN}")
    );
    let (at, message) = the_panic(&outcome);
    assert!(at.starts_with("fixtures/panic-abort/src/main.rs:"), "{at}");
    assert_eq!(message, "main gave up");
    assert_eq!(outcome.signal, Some(libc::SIGABRT), "{outcome:?}");
}

#[test]
fn a_panic_on_another_thread_runs_the_handlers_then_aborts() {
    let outcome = play("thread_panics");
    assert_eq!(
        outcome.stdout,
        format!("built with panic = \"abort\"\n{HANDLERS_RAN}")
    );
    assert_eq!(the_panic(&outcome).1, "worker gave up");
    assert!(outcome.stderr.contains("thread 'worker'"), "{outcome:?}");
    assert_eq!(outcome.signal, Some(libc::SIGABRT), "{outcome:?}");
}

#[test]
fn the_hook_installed_before_still_runs_first() {
    let outcome = play("hook_before");
    assert_eq!(
        outcome.stdout,
        format!("built with panic = \"abort\"\nthe program's own hook ran\n{HANDLERS_RAN}")
    );
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.signal, Some(libc::SIGABRT), "{outcome:?}");
}

#[test]
fn a_hook_installed_after_replaces_the_crates() {
    let outcome = play("hook_after_replaces");
    assert_eq!(
        outcome.stdout,
        "built with panic = \"abort\"\nthe program's own hook ran\n"
    );
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.signal, Some(libc::SIGABRT), "{outcome:?}");
}

#[test]
fn a_hook_installed_after_that_chains_keeps_the_handlers() {
    let outcome = play("hook_after_chains");
    assert_eq!(
        outcome.stdout,
        format!("built with panic = \"abort\"\nthe program's own hook ran\n{HANDLERS_RAN}")
    );
    assert_eq!(the_panic(&outcome).1, "main gave up");
    assert_eq!(outcome.signal, Some(libc::SIGABRT), "{outcome:?}");
}

#[test]
fn the_deadline_applies_and_the_process_still_aborts() {
    let outcome = play("deadline");
    assert_eq!(
        outcome.stdout,
        "built with panic = \"abort\"\nstuck hook started\n"
    );
    assert_eq!(outcome.panic_messages().len(), 1, "{outcome:?}");
    let rest = outcome.stderr_without_panics();
    assert_eq!(rest.len(), 1, "{outcome:?}");
    assert!(
        rest[0].starts_with(
            "atexit: exit deadline of 200ms exceeded while running exit handler `stuck`"
        ),
        "{rest:?}"
    );
    assert_eq!(outcome.signal, Some(libc::SIGABRT), "{outcome:?}");
}

#[test]
fn without_a_panic_nothing_changes() {
    let outcome = play("return");
    assert_eq!(
        outcome.stdout,
        format!(
            "built with panic = \"abort\"\nnewest ran, reason {}\noldest ran\n",
            common::exit_reason(0)
        )
    );
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
}

#[test]
#[cfg(target_os = "linux")]
fn after_its_handlers_ran_a_panic_is_a_clean_ending_for_the_guardian() {
    let outcome = play("guardian");
    let field = |name: &str| {
        outcome
            .stdout
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} in {outcome:?}"))
            .to_owned()
    };
    let dir = PathBuf::from(field("dir "));
    let guardian: u32 = field("guardian ").parse().unwrap();
    assert!(outcome.stdout.ends_with(HANDLERS_RAN), "{outcome:?}");
    assert_eq!(outcome.signal, Some(libc::SIGABRT), "{outcome:?}");
    // The guardian goes without acting.
    let started = std::time::Instant::now();
    while std::path::Path::new(&format!("/proc/{guardian}/cmdline")).exists()
        && !std::fs::read_to_string(format!("/proc/{guardian}/stat"))
            .unwrap_or_default()
            .contains(") Z")
        && started.elapsed() < std::time::Duration::from_secs(2)
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let kept = dir.exists();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        kept,
        "the guardian removed the directory after a clean ending"
    );
}

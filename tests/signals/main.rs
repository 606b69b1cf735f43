//! Process tests of signal handling and of the controls over the exit run
//! (deadline, reason, fork policy, failure status), and of the
//! `graceful_shutdown` and `deadline` examples.
//!
//! One binary without libtest: run plainly, it runs every test (or those
//! whose name contains an argument); each test re-executes this binary with
//! `ATEXIT_SIGNALS_SCENARIO` naming a scenario, and checks how that child
//! ends. Signal tests wait for the child's `READY` line before signalling.

#[path = "../common/mod.rs"]
mod common;

mod control;
mod examples;
#[cfg(feature = "signal")]
mod handling;
#[cfg(feature = "signal")]
mod shutdown;
mod trace;

use std::io::{self, Write};
use std::panic;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

const MARKER: &str = "ATEXIT_SIGNALS_SCENARIO";

/// What a child runs: its argument is the part of the scenario name after
/// `:`, if any. Returning `Err` makes `main` return it.
pub use common::Scenario;

/// A check run in this process: it panics on failure.
pub type Test = (&'static str, fn());

/// How long a scenario child may live, whatever happens: a hang before
/// `READY` would otherwise block the test reading its stdout.
const CHILD_ALARM_SECS: u32 = 25;

fn main() -> Result<(), String> {
    if let Ok(name) = std::env::var(MARKER) {
        return run_scenario(&name);
    }
    run_tests()
}

fn run_scenario(full_name: &str) -> Result<(), String> {
    common::play(full_name, scenarios(), CHILD_ALARM_SECS)
}

fn scenarios() -> Vec<(&'static str, Scenario)> {
    let mut all = Vec::new();
    all.extend_from_slice(control::SCENARIOS);
    all.extend_from_slice(trace::SCENARIOS);
    #[cfg(feature = "signal")]
    all.extend_from_slice(handling::SCENARIOS);
    #[cfg(feature = "signal")]
    all.extend_from_slice(shutdown::SCENARIOS);
    all
}

fn tests() -> Vec<Test> {
    let mut all = Vec::new();
    all.extend_from_slice(control::TESTS);
    all.extend_from_slice(examples::TESTS);
    all.extend_from_slice(trace::TESTS);
    #[cfg(feature = "signal")]
    all.extend_from_slice(handling::TESTS);
    #[cfg(feature = "signal")]
    all.extend_from_slice(shutdown::TESTS);
    all
}

/// Runs the selected tests on a few threads (the children mostly wait, for
/// a signal or a deadline), then reports like libtest.
fn run_tests() -> Result<(), String> {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let selected: Vec<Test> = tests()
        .into_iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f)))
        .collect();
    println!("running {} tests", selected.len());
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(name, test)) = selected.get(index) else {
                    break;
                };
                let result = panic::catch_unwind(test);
                let verdict = if result.is_ok() { "ok" } else { "FAILED" };
                let _ = writeln!(io::stdout(), "test {name} ... {verdict}");
                if result.is_err() {
                    failed.lock().unwrap().push(name);
                }
            });
        }
    });
    let failed = failed.into_inner().unwrap();
    common::summary(selected.len(), &failed, started)
}

/// This binary, as a child running scenario `name` (`name:arg` passes an
/// argument).
pub fn child(name: &str) -> Command {
    common::scenario(MARKER, name)
}

/// One line on stdout from a scenario, also from exit handlers, where
/// stdout may be gone: never panics.
pub fn say(line: impl std::fmt::Display) {
    let _ = writeln!(io::stdout(), "{line}");
}

/// Tells the test that the child is set up and may be signalled.
pub fn ready() {
    say("READY");
}

/// After `handle_signals`, says `READY` and waits for the test's signal.
#[cfg(feature = "signal")]
pub fn handle_signals_and_wait() -> ! {
    atexit::handle_signals().expect("handle_signals");
    ready();
    wait_forever()
}

/// Waits for a signal to end the process.
pub fn wait_forever() -> ! {
    loop {
        thread::park();
    }
}

/// A hook that takes far longer than any test: only a deadline, a second
/// signal or the child alarm ends it.
pub fn hang() {
    thread::sleep(Duration::from_secs(3600));
}

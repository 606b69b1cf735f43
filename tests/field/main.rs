//! The programs that really stop processes, used for real: coreutils
//! `timeout`, a terminal closed under `tmux` (an interactive bash in the
//! pane), a double Ctrl-C typed into that terminal, and `tini` as a
//! container's init. Each sends what it sends in the field — `timeout` and a
//! closed terminal deliver one stop request as two signals — and the test
//! checks that every line of every handler was written, many times in a
//! row.
//!
//! One binary without libtest: run plainly, it runs every test (or those
//! whose name contains an argument). The program being stopped is this
//! binary again, with `ATEXIT_FIELD_SCENARIO` naming what it does; since a
//! closed terminal takes stdout with it, the scenarios write their lines to
//! a log file named in the scenario's argument.
//!
//! `timeout` is in coreutils; `tmux` and `tini` are installed with
//! `apt-get` when missing and this runs as root (CI does); otherwise the
//! test fails and says what to install.

#[path = "../common/mod.rs"]
mod common;
mod senders;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

const MARKER: &str = "ATEXIT_FIELD_SCENARIO";

/// How long a scenario child may live, whatever happens.
const CHILD_ALARM_SECS: u32 = 60;

type Test = (&'static str, fn());

const TESTS: &[Test] = &[
    (
        "timeout_50_times_runs_every_handler",
        senders::timeout_50_times,
    ),
    (
        "terminal_close_30_times_runs_every_handler",
        senders::terminal_close_30_times,
    ),
    (
        "double_ctrl_c_400ms_apart_force_quits",
        senders::double_ctrl_c,
    ),
    ("tini_forwards_one_request", senders::tini_forwards),
];

fn main() -> Result<(), String> {
    if let Ok(name) = std::env::var(MARKER) {
        return common::play(&name, senders::SCENARIOS.to_vec(), CHILD_ALARM_SECS);
    }
    common::run_tests_in_turn(TESTS)
}

/// `wrapper ARGS.. THIS_BINARY`, this binary playing `scenario` (`name:arg`)
/// as the program that the wrapper runs and stops.
fn wrapped(wrapper: &str, args: &[&str], scenario: &str) -> Command {
    let mut command = Command::new(wrapper);
    command
        .args(args)
        .arg(std::env::current_exe().expect("test binary path"))
        .env(MARKER, scenario)
        .env("RUST_BACKTRACE", "0");
    command
}

/// The shell command line that runs this binary in `scenario`.
fn this_program_line(scenario: &str) -> String {
    let exe = std::env::current_exe().expect("test binary path");
    format!("RUST_BACKTRACE=0 {MARKER}='{scenario}' '{}'", exe.display())
}

/// Appends one line to the log at `path`, in one write, never panicking:
/// at exit the log is the only witness.
fn log(path: &str, line: impl std::fmt::Display) {
    if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = file.write_all(format!("{line}\n").as_bytes());
    }
}

/// A fresh, empty directory for one test's logs and sockets.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("atexit-field-{}-{test}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Waits until `path` holds a line equal to `line` (or `deadline` passes);
/// returns the file's text.
fn wait_for_line(path: &Path, line: &str, deadline: Duration) -> String {
    let started = Instant::now();
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if text.lines().any(|l| l == line) || started.elapsed() > deadline {
            return text;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Makes sure `program` is on the PATH, installing Debian's `package` if it
/// is not and this runs as root with `apt-get`; fails loudly otherwise.
fn require(program: &str, package: &str) {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    if found(program) {
        return;
    }
    // SAFETY: geteuid(2) has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root && found("apt-get") {
        let install = || {
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", package])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|status| status.success())
        };
        if !install() {
            let _ = Command::new("apt-get").arg("update").status();
            install();
        }
    }
    assert!(
        found(program),
        "`{program}` is needed by this test and is not installed: \
         run `apt-get install {package}` (as root), or `bash .ci/setup`"
    );
}

fn found(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|out| out.status.success())
}

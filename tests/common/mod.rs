//! Shared by the test binaries that run real child processes: start a
//! child, wait for it with a deadline (a hang fails fast), and read what it
//! printed, how it ended, and of which signal it died.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
#[cfg(unix)]
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long any child may take before the test calls it hung.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// What a finished child did.
#[derive(Debug)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    /// The exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that killed it, if one did (never on Windows, which has
    /// no death by signal).
    pub signal: Option<i32>,
}

impl Outcome {
    /// stderr without the lines of Rust's default panic message (`thread
    /// '..' panicked at ..`, the message, the backtrace note), which carry
    /// thread ids that change from run to run. See `panic_messages`.
    pub fn stderr_without_panics(&self) -> Vec<String> {
        stderr_without_panics(&self.stderr)
    }

    /// The `(location, message)` of every panic message on stderr, in order.
    pub fn panic_messages(&self) -> Vec<(String, String)> {
        let mut found = Vec::new();
        let mut lines = self.stderr.lines();
        while let Some(line) = lines.next() {
            if let Some(at) = panic_header(line) {
                let location = at.trim_end_matches(':').to_owned();
                let message = lines.next().unwrap_or_default().to_owned();
                found.push((location, message));
            }
        }
        found
    }
}

/// A command for a built example (`target/<profile>/examples/<name>`).
pub fn example(name: &str) -> Command {
    let mut dir: PathBuf = std::env::current_exe().expect("test binary path");
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "example {name} is not built at {}; `cargo test` builds examples",
        path.display()
    );
    let mut command = Command::new(path);
    quiet_panics(&mut command);
    command
}

/// The same binary as this test, in scenario `name` (it re-executes itself).
pub fn scenario(marker: &str, name: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("test binary path"));
    command.env(marker, name);
    quiet_panics(&mut command);
    command
}

/// No backtraces and no exit-run trace in children (a test that wants the
/// trace sets `ATEXIT_TRACE` again): their stderr is compared exactly.
fn quiet_panics(command: &mut Command) {
    command
        .env("RUST_BACKTRACE", "0")
        .env_remove("RUST_LIB_BACKTRACE")
        .env_remove("ATEXIT_TRACE");
}

/// Runs `command` to completion (or kills it at `DEADLINE` and panics).
pub fn run(mut command: Command) -> Outcome {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().expect("spawn child");
    finish(child, None)
}

/// Waits for a child spawned by the caller (with piped stdout/stderr, or
/// with them already taken) and collects what it printed.
pub fn finish_child(child: Child) -> Outcome {
    finish(child, None)
}

/// A child that has said `READY` on stdout and waits for the test to act.
pub struct Running {
    pub child: Child,
    stdout: BufReader<ChildStdout>,
    /// stdout up to and including the `READY` line.
    before_ready: String,
}

impl Running {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` to the child.
    #[cfg(unix)]
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on a pid we own and have not reaped yet.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({}, {signal})", self.pid());
    }

    /// Reads one more stdout line (blocking), without its newline.
    pub fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read child stdout");
        line.trim_end_matches('\n').to_owned()
    }

    /// Waits for the child to end (or kills it at `DEADLINE` and panics).
    pub fn finish(self) -> Outcome {
        let Running {
            mut child,
            stdout,
            before_ready,
        } = self;
        child.stdout = None;
        let mut outcome = finish(child, Some(stdout));
        outcome.stdout.insert_str(0, &before_ready);
        outcome
    }
}

/// Starts `command`, waits for its `READY` line, sends `signal`, and waits
/// for it to end.
#[cfg(unix)]
pub fn signalled(command: Command, signal: i32) -> Outcome {
    let running = start(command);
    running.signal(signal);
    running.finish()
}

/// Starts `command` and waits for its `READY` line.
pub fn start(mut command: Command) -> Running {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn child");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut before_ready = String::new();
    let started = Instant::now();
    loop {
        let mut line = String::new();
        let read = stdout.read_line(&mut line).expect("read child stdout");
        if read == 0 {
            let outcome = finish(child, None);
            panic!("child ended before READY: {outcome:?}; stdout so far {before_ready:?}");
        }
        before_ready.push_str(&line);
        if line.trim_end() == "READY" {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "no READY within {DEADLINE:?}");
    }
    Running {
        child,
        stdout,
        before_ready,
    }
}

fn reader<R: Read + Send + 'static>(source: Option<R>) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut source) = source {
            let mut bytes = Vec::new();
            let _ = source.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

fn finish(mut child: Child, stdout: Option<BufReader<ChildStdout>>) -> Outcome {
    let out = match stdout {
        Some(stdout) => reader(Some(stdout)),
        None => reader(child.stdout.take()),
    };
    let err = reader(child.stderr.take());
    let status = wait_with_deadline(&mut child);
    Outcome {
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
        code: status.code(),
        signal: signal_of(status),
    }
}

#[cfg(unix)]
fn signal_of(status: ExitStatus) -> Option<i32> {
    status.signal()
}

#[cfg(not(unix))]
fn signal_of(_status: ExitStatus) -> Option<i32> {
    None
}

fn wait_with_deadline(child: &mut Child) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            return status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child {} hung: killed after {DEADLINE:?}", child.id());
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// The `LOCATION:` part of a panic message's first line, in both of Rust's
/// forms: `thread 'main' panicked at ..` and, in newer toolchains, with the
/// thread id: `thread 'main' (12345) panicked at ..`.
pub fn panic_header(line: &str) -> Option<&str> {
    if !line.starts_with("thread '") {
        return None;
    }
    line.split_once("' panicked at ")
        .or_else(|| line.split_once(") panicked at "))
        .map(|(_, at)| at)
}

/// A scenario played by a child: its argument (after `name:`) in, an error
/// out if it went wrong.
pub type Scenario = fn(&str) -> Result<(), String>;

/// Plays `full_name` (`name` or `name:arg`) from `scenarios`, in a child
/// that ends by SIGALRM after `alarm_secs` whatever happens: a hang before
/// `READY` would otherwise block the test that reads its stdout.
pub fn play(
    full_name: &str,
    scenarios: Vec<(&'static str, Scenario)>,
    alarm_secs: u32,
) -> Result<(), String> {
    hang_limit(alarm_secs);
    let (name, arg) = full_name.split_once(':').unwrap_or((full_name, ""));
    let scenario = scenarios
        .into_iter()
        .find(|(known, _)| *known == name)
        .map(|(_, scenario)| scenario)
        .unwrap_or_else(|| panic!("no scenario named {name:?}"));
    scenario(arg)
}

/// Ends this process after `secs` whatever happens: by SIGALRM on Unix.
#[cfg(unix)]
fn hang_limit(secs: u32) {
    // SAFETY: alarm(2) only schedules a SIGALRM for this process; its
    // default action ends a child that hangs.
    unsafe {
        libc::alarm(secs);
    }
}

/// Ends this process after `secs` whatever happens: Windows has no alarm,
/// so a watchdog thread aborts it (status 0xC0000409, never a scenario's).
#[cfg(not(unix))]
fn hang_limit(secs: u32) {
    thread::spawn(move || {
        thread::sleep(Duration::from_secs(u64::from(secs)));
        let _ = std::io::Write::write_all(&mut std::io::stderr(), b"hung: alarm\n");
        std::process::abort();
    });
}

/// `stderr` without the lines of Rust's default panic messages (header,
/// message, backtrace note) and without blank lines.
pub fn stderr_without_panics(stderr: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut skip = 0;
    for line in stderr.lines() {
        if panic_header(line).is_some() {
            skip = 1; // the message line follows
            continue;
        }
        if skip > 0 {
            skip -= 1;
            continue;
        }
        if line.starts_with("note: run with `RUST_BACKTRACE=1`") || line.is_empty() {
            continue;
        }
        lines.push(line.to_owned());
    }
    lines
}

/// Prints a libtest-style closing line for a hand-rolled runner and turns
/// the failures into its result.
pub fn summary(ran: usize, failed: &[&str], started: Instant) -> Result<(), String> {
    println!(
        "\ntest result: {}. {} passed; {} failed; finished in {:.2}s",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("failed: {}", failed.join(", ")))
    }
}

/// Whether the C library tells the crate the exit status (glibc's
/// `on_exit`). Elsewhere (musl, macOS, the BSDs) only an exit through
/// `atexit::exit(n)` has a known status.
pub const STATUS_KNOWN: bool = cfg!(all(target_os = "linux", target_env = "gnu"));

/// What `atexit::reason()` says during a normal exit with `code` that did
/// not go through `atexit::exit` (`main` returning, `std::process::exit`).
pub fn exit_reason(code: i32) -> String {
    if STATUS_KNOWN {
        format!("Some(Exit(Some({code})))")
    } else {
        "Some(Exit(None))".to_owned()
    }
}

/// The status a missed deadline gives an exit that was ending with `code`
/// not through `atexit::exit`: that code where it is known, else 1.
pub fn deadline_status(code: i32) -> Option<i32> {
    Some(if STATUS_KNOWN { code } else { 1 })
}

/// Whether the exiting thread's thread-locals with destructors are gone
/// when the handlers run: glibc's `exit` runs their destructors first;
/// with musl they are still alive.
pub const THREAD_LOCALS_GONE_IN_HANDLERS: bool = cfg!(all(target_os = "linux", target_env = "gnu"));

/// Runs the tests whose names contain an argument of this binary (all of
/// them without one), one after another, and reports like libtest.
pub fn run_tests_in_turn(tests: &[(&'static str, fn())]) -> Result<(), String> {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let selected: Vec<&(&str, fn())> = tests
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f)))
        .collect();
    println!("running {} tests", selected.len());
    let started = Instant::now();
    let mut failed = Vec::new();
    for &&(name, test) in &selected {
        let passed = std::panic::catch_unwind(test).is_ok();
        println!("test {name} ... {}", if passed { "ok" } else { "FAILED" });
        if !passed {
            failed.push(name);
        }
    }
    summary(selected.len(), &failed, started)
}

/// A tmux server of a test's own, on its own socket.
pub struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    pub fn new(socket: PathBuf) -> Tmux {
        Tmux { socket }
    }

    /// `tmux -S SOCKET ARGS..`; panics if tmux fails.
    pub fn run(&self, args: &[&str]) {
        let status = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .env("TERM", "xterm")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux {args:?}: {status}");
    }
}

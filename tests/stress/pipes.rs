//! Scenario 5, stdout and stderr closed or full during the exit run: a
//! handler that prints then fails (`println!` panics, `writeln!` returns an
//! error) or blocks, and older handlers must still run; the crate itself
//! never panics or aborts, and the process ends as it would have.
//!
//! Handlers record what they did in a file: stdout is not there to tell.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::child::{self, Ended};
use crate::{describe, record, recorded, say, Group, Plan, Scenario, Scratch};

pub const SCENARIOS: &[(&str, Scenario)] = &[
    ("closed-pipes", closed_pipes),
    ("full-nonblocking", full_nonblocking),
    ("full-blocking-deadline", full_blocking_deadline),
    #[cfg(feature = "signal")]
    ("full-blocking-signal", full_blocking_signal),
];
/// How long a child here may take once it should end: these end in
/// milliseconds, and a blocked one never does.
const END: Duration = Duration::from_secs(5);

pub const GROUPS: &[Group] = &[
    ("closed stdout and stderr", closed_group),
    ("full stdout and stderr", full_group),
];

/// A line in the log file of this scenario child.
fn log(line: &str) {
    let dir = crate::scratch_dir().expect("scratch dir");
    record(&dir.join("log"), line);
}

/// The three handlers every scenario here registers, oldest first: one
/// that records, one that prints with the panicking macros, one that
/// prints with `writeln!` and records whether that worked.
fn register_handlers() {
    atexit::register(|| log("older"));
    atexit::register(|| {
        log("printing");
        println!("to stdout");
        eprintln!("to stderr");
        log("printed");
    });
    atexit::register(|| {
        let written = writeln!(io::stdout(), "newer").and_then(|()| io::stdout().flush());
        log(&format!("newer {}", written.is_ok()));
    });
}

/// `arg`: `exit` (main returns) or `signal` (SIGTERM after
/// `handle_signals`). The test closes this child's pipes after READY, then
/// closes its stdin (or sends SIGTERM).
fn closed_pipes(arg: &str) -> Result<(), String> {
    register_handlers();
    #[cfg(feature = "signal")]
    if arg == "signal" {
        atexit::handle_signals().map_err(|err| err.to_string())?;
    }
    say("READY");
    let mut rest = Vec::new();
    let _ = io::stdin().read_to_end(&mut rest);
    if arg == "signal" {
        crate::park_forever();
    }
    Ok(())
}

fn set_nonblocking(fd: i32, on: bool) {
    // SAFETY: fcntl on one of this process's standard descriptors, changing
    // only its O_NONBLOCK flag.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        let flags = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        libc::fcntl(fd, libc::F_SETFL, flags);
    }
}

/// Fills the pipe behind `fd` (made non-blocking for that) until it takes
/// no more; Rust's own stdout buffer stays empty.
fn fill(fd: i32) {
    set_nonblocking(fd, true);
    let chunk = [b'x'; 4096];
    loop {
        // SAFETY: writes from a live buffer of the given length.
        let written = unsafe { libc::write(fd, chunk.as_ptr().cast(), chunk.len()) };
        if written <= 0 {
            break;
        }
    }
}

/// stdout and stderr full and non-blocking: every write fails at once.
fn full_nonblocking(_: &str) -> Result<(), String> {
    register_handlers();
    fill(1);
    fill(2);
    Ok(())
}

/// stdout full and blocking: the newest handler blocks writing to it; the
/// deadline ends the process with the exit code it was going to have.
fn full_blocking_deadline(_: &str) -> Result<(), String> {
    atexit::set_deadline(Duration::from_millis(300));
    atexit::register(|| log("older"));
    atexit::register(|| {
        log("blocking");
        let _ = writeln!(io::stdout(), "never read");
        log("unblocked");
    });
    fill(1);
    set_nonblocking(1, false);
    atexit::exit(6)
}

/// SIGTERM while the main thread is blocked writing to a full stdout (and
/// so holds Rust's stdout lock). `arg`: `quiet` (the handler does not print)
/// or `printing` (it prints too, and a deadline is set).
#[cfg(feature = "signal")]
fn full_blocking_signal(arg: &str) -> Result<(), String> {
    atexit::handle_signals().map_err(|err| err.to_string())?;
    atexit::register(|| log("older"));
    if arg == "printing" {
        atexit::set_deadline(Duration::from_millis(300));
        atexit::register(|| {
            log("printing");
            let _ = writeln!(io::stdout(), "from the handler");
            log("printed");
        });
    }
    say("READY");
    fill(1);
    set_nonblocking(1, false);
    let _ = writeln!(io::stderr(), "FULL");
    let mut stdout = io::stdout().lock();
    loop {
        let _ = stdout.write_all(b"more\n");
    }
}

/// Starts `name` with stdin, stdout and stderr piped, and waits for READY
/// on stdout; returns the child and the unread pipes.
fn start_piped(name: &str, dir: &Path) -> Option<std::process::Child> {
    let mut command: Command = crate::scenario(name);
    command
        .env("ATEXIT_STRESS_DIR", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut spawned = command.spawn().expect("spawn scenario child");
    let stdout = spawned.stdout.take().expect("piped stdout");
    let (sender, receiver) = mpsc::channel();
    // The READY line is read on a thread so that a silent child cannot
    // block the test; that thread keeps the pipe until it hangs up.
    let (back, pipe) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let ready = reader.read_line(&mut line).is_ok() && line.trim_end() == "READY";
        let _ = sender.send(ready);
        let _ = back.send(reader);
    });
    let ready = receiver.recv_timeout(child::HANG).unwrap_or(false);
    spawned.stdout = pipe
        .recv_timeout(Duration::from_secs(1))
        .ok()
        .map(BufReader::into_inner);
    if ready {
        Some(spawned)
    } else {
        let _ = spawned.kill();
        let _ = spawned.wait();
        None
    }
}

/// One closed-pipe run: `both` closes stderr too.
fn closed_run(how: &str, both: bool) -> Result<String, String> {
    let scratch = Scratch::new("closed");
    let Some(mut spawned) = start_piped(&format!("closed-pipes:{how}"), scratch.path()) else {
        return Err(format!("closed-pipes:{how}: no READY"));
    };
    drop(spawned.stdout.take());
    let stderr = if both {
        drop(spawned.stderr.take());
        None
    } else {
        Some(child::text_reader(spawned.stderr.take()))
    };
    if how == "signal" {
        // SAFETY: kill on our own unreaped child.
        unsafe { libc::kill(spawned.id() as i32, libc::SIGTERM) };
    }
    drop(spawned.stdin.take());
    let (status, hung) = child::wait_within(&mut spawned, END);
    let stderr = stderr.map(|reader| reader.join().unwrap_or_default());
    let ended = Ended {
        code: std::os::unix::process::ExitStatusExt::signal(&status)
            .map_or(status.code(), |_| None),
        signal: std::os::unix::process::ExitStatusExt::signal(&status),
        hung,
        stderr: stderr.clone().unwrap_or_default(),
        ..Ended::default()
    };
    let log = recorded(&scratch.path().join("log"));
    let label = format!(
        "{} closed, {}",
        if both { "stdout and stderr" } else { "stdout" },
        if how == "signal" {
            "SIGTERM"
        } else {
            "main returns"
        }
    );
    // `println!` panics before `eprintln!` is reached, so "printed" never is.
    let want_log = ["newer false", "printing", "older"];
    let death_ok = match how {
        "signal" => ended.signal == Some(libc::SIGTERM),
        _ => ended.code == Some(0),
    };
    let mut wrong = Vec::new();
    if !death_ok || hung {
        wrong.push(describe(&ended));
    }
    if log != want_log {
        wrong.push(format!("handlers recorded {log:?}, want {want_log:?}"));
    }
    if let Some(stderr) = &stderr {
        // The println! panic is reported, and nothing else: no internal
        // error, no abort.
        let panics: Vec<String> = ended.stderr_without_panics();
        let reported = panics.len() == 1
            && panics[0].starts_with("atexit: exit handler registered at tests/stress/pipes.rs:")
            && panics[0].ends_with(" panicked");
        if !reported || !stderr.contains("failed printing to stdout: Broken pipe") {
            wrong.push(format!("stderr {stderr:?}"));
        }
    }
    if wrong.is_empty() {
        Ok(label)
    } else {
        Err(format!("{label}: {}", wrong.join("; ")))
    }
}

fn closed_group(_: &Plan) -> Vec<String> {
    let mut problems = Vec::new();
    let mut passed = Vec::new();
    let mut hows = vec!["exit"];
    if cfg!(feature = "signal") {
        hows.push("signal");
    }
    for how in hows {
        for both in [false, true] {
            match closed_run(how, both) {
                Ok(label) => passed.push(label),
                Err(problem) => problems.push(problem),
            }
        }
    }
    println!(
        "closed stdout and stderr: {} of {} cases ran every handler and ended as expected",
        passed.len(),
        passed.len() + problems.len()
    );
    problems
}

/// Runs `name` with stdout (and stderr unless `read_stderr`) never read.
fn run_unread(name: &str, dir: &Path, read_stderr: bool) -> Ended {
    let mut command: Command = crate::scenario(name);
    command
        .env("ATEXIT_STRESS_DIR", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut spawned = command.spawn().expect("spawn scenario child");
    let stdout = spawned.stdout.take();
    let stderr_pipe = spawned.stderr.take();
    let (stderr, kept) = if read_stderr {
        (Some(child::text_reader(stderr_pipe)), None)
    } else {
        (None, stderr_pipe)
    };
    let (status, hung) = child::wait_within(&mut spawned, END);
    drop((stdout, kept));
    Ended {
        code: status.code(),
        signal: std::os::unix::process::ExitStatusExt::signal(&status),
        hung,
        stderr: stderr
            .map(|r| r.join().unwrap_or_default())
            .unwrap_or_default(),
        ..Ended::default()
    }
}

/// SIGTERM to a child whose main thread is blocked on a full stdout.
#[cfg(feature = "signal")]
fn blocked_signal_run(arg: &str, dir: &Path) -> (Ended, Duration) {
    let mut command: Command = crate::scenario(&format!("full-blocking-signal:{arg}"));
    command
        .env("ATEXIT_STRESS_DIR", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut spawned = command.spawn().expect("spawn scenario child");
    let stdout = spawned.stdout.take().expect("piped stdout");
    let stderr = spawned.stderr.take().expect("piped stderr");
    let (sender, receiver) = mpsc::channel();
    let stderr_reader = thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line == "FULL" {
                let _ = sender.send(());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    // stdout is kept open and never read past READY's pipe contents.
    let full = receiver.recv_timeout(child::HANG).is_ok();
    // Let the main thread reach its blocked write.
    thread::sleep(Duration::from_millis(50));
    let signalled = Instant::now();
    if full {
        // SAFETY: kill on our own unreaped child.
        unsafe { libc::kill(spawned.id() as i32, libc::SIGTERM) };
    }
    let (status, hung) = child::wait_within(&mut spawned, END);
    let took = signalled.elapsed();
    drop(stdout);
    let ended = Ended {
        code: status.code(),
        signal: std::os::unix::process::ExitStatusExt::signal(&status),
        hung,
        stderr: stderr_reader.join().unwrap_or_default(),
        ..Ended::default()
    };
    (ended, took)
}

fn full_group(_: &Plan) -> Vec<String> {
    let mut problems = Vec::new();
    let mut cases = 0;

    cases += 1;
    let scratch = Scratch::new("full");
    let ended = run_unread("full-nonblocking", scratch.path(), false);
    let log = recorded(&scratch.path().join("log"));
    if ended.code != Some(0) || log != ["newer false", "printing", "older"] {
        problems.push(format!(
            "full non-blocking stdout and stderr: {}, handlers recorded {log:?}",
            describe(&ended)
        ));
    }

    cases += 1;
    let scratch = Scratch::new("full");
    let started = Instant::now();
    let ended = run_unread("full-blocking-deadline", scratch.path(), true);
    let took = started.elapsed();
    let log = recorded(&scratch.path().join("log"));
    let lines = ended.stderr_without_panics();
    let named = lines.len() == 1
        && lines[0].starts_with(
            "atexit: exit deadline of 300ms exceeded while running exit handler registered at \
             tests/stress/pipes.rs:",
        )
        && lines[0].ends_with("; skipping the remaining handlers");
    if ended.code != Some(6) || log != ["blocking"] || !named {
        problems.push(format!(
            "full blocking stdout with a 300 ms deadline: {} after {took:?}, handlers recorded \
             {log:?}, stderr {:?}",
            describe(&ended),
            ended.stderr
        ));
    }

    #[cfg(feature = "signal")]
    {
        cases += 1;
        let scratch = Scratch::new("full");
        let (ended, took) = blocked_signal_run("quiet", scratch.path());
        let log = recorded(&scratch.path().join("log"));
        if ended.signal != Some(libc::SIGTERM) || log != ["older"] {
            problems.push(format!(
                "SIGTERM while main is blocked on a full stdout: {} {took:.1?} after the \
                 signal, handlers recorded {log:?} (want death by SIGTERM, [\"older\"])",
                describe(&ended)
            ));
        }

        cases += 1;
        let scratch = Scratch::new("full");
        let (ended, took) = blocked_signal_run("printing", scratch.path());
        let log = recorded(&scratch.path().join("log"));
        if ended.signal != Some(libc::SIGTERM) || log != ["printing"] {
            problems.push(format!(
                "SIGTERM while main is blocked on a full stdout, a handler printing too, \
                 300 ms deadline: {} {took:.1?} after the signal, handlers recorded {log:?} \
                 (want death by SIGTERM, [\"printing\"])",
                describe(&ended)
            ));
        }
    }

    println!(
        "full stdout and stderr: {} of {cases} cases ended as expected",
        cases - problems.len()
    );
    problems
}

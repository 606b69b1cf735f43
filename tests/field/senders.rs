//! The stopped program's scenarios, and one test per real sender.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{self, Scenario};
use crate::{log, require, scratch, this_program_line, wait_for_line, wrapped};

pub const SCENARIOS: &[(&str, Scenario)] = &[
    ("slow_cleanup", slow_cleanup),
    ("hanging_cleanup", hanging_cleanup),
];

/// The handlers of `slow_cleanup` and how long each takes: 200 ms in all,
/// far longer than the gap between duplicate deliveries.
const HANDLERS: [&str; 3] = ["oldest", "middle", "newest"];
const HANDLER_TIME: Duration = Duration::from_millis(67);

/// `slow_cleanup:LOG`: after `handle_signals`, three handlers that each log
/// when they start (with the reason) and when they are done; then waits.
fn slow_cleanup(log_path: &str) -> Result<(), String> {
    atexit::handle_signals().map_err(|err| err.to_string())?;
    for name in HANDLERS {
        let log_path = log_path.to_owned();
        atexit::register(move || {
            log(
                &log_path,
                format_args!("{name} started, reason {:?}", atexit::reason()),
            );
            thread::sleep(HANDLER_TIME);
            log(&log_path, format_args!("{name} done"));
        });
    }
    announce(log_path)
}

/// What the log of `slow_cleanup` holds after a stop by `signal`.
fn every_handler_line(signal: i32) -> String {
    let mut text = String::from("READY\n");
    for name in HANDLERS.iter().rev() {
        text.push_str(&format!(
            "{name} started, reason Some(Signal({signal}))\n{name} done\n"
        ));
    }
    text
}

/// `hanging_cleanup:LOG`: a handler that takes 30 s, so only a second
/// request ends the process in time, and an older one that must not run.
fn hanging_cleanup(log_path: &str) -> Result<(), String> {
    atexit::handle_signals().map_err(|err| err.to_string())?;
    let older = log_path.to_owned();
    atexit::register(move || log(&older, "oldest ran"));
    let newest = log_path.to_owned();
    atexit::register(move || {
        log(&newest, "newest started");
        thread::sleep(Duration::from_secs(30));
        log(&newest, "newest done");
    });
    announce(log_path)
}

/// Logs this process's id and `READY`, then waits to be stopped.
fn announce(log_path: &str) -> Result<(), String> {
    log(log_path, format_args!("pid {}", std::process::id()));
    log(log_path, "READY");
    loop {
        thread::park();
    }
}

/// The log without its `pid` line, and that pid.
fn split_pid(text: &str) -> (Option<i32>, String) {
    let mut pid = None;
    let mut rest = String::new();
    for line in text.lines() {
        match line.strip_prefix("pid ") {
            Some(number) => pid = number.parse().ok(),
            None => {
                rest.push_str(line);
                rest.push('\n');
            }
        }
    }
    (pid, rest)
}

/// Whether process `pid` is still running (not gone, not a zombie).
fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// Runs `runs` rounds of `round` on `lanes` threads; panics listing the
/// rounds that went wrong.
fn repeat(
    runs: usize,
    lanes: usize,
    what: &str,
    round: impl Fn(usize) -> Result<(), String> + Sync,
) {
    let next = AtomicUsize::new(0);
    let bad = Mutex::new(Vec::new());
    thread::scope(|scope| {
        for _ in 0..lanes {
            scope.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= runs {
                    break;
                }
                if let Err(problem) = round(n) {
                    bad.lock().unwrap().push(format!("run {n}: {problem}"));
                }
            });
        }
    });
    let bad = bad.into_inner().unwrap();
    println!("{what}: {runs} runs, {} cut short or wrong", bad.len());
    assert!(bad.is_empty(), "{what}:\n{}", bad.join("\n"));
}

/// `timeout 0.5 PROGRAM`: SIGTERM to the program, then to its process
/// group, microseconds apart.
pub fn timeout_50_times() {
    require("timeout", "coreutils");
    let dir = scratch("timeout");
    repeat(50, 5, "timeout 0.5", |n| {
        let log_path = dir.join(format!("timeout-{n}.log"));
        let scenario = format!("slow_cleanup:{}", log_path.display());
        let outcome = common::run(wrapped("timeout", &["0.5"], &scenario));
        let (_, text) = split_pid(&fs::read_to_string(&log_path).unwrap_or_default());
        if text != every_handler_line(libc::SIGTERM) || outcome.code != Some(124) {
            return Err(format!("timeout status {:?}, log {text:?}", outcome.code));
        }
        Ok(())
    });
}

/// A tmux server on its own socket with an interactive bash in its pane.
struct Terminal {
    tmux: common::Tmux,
}

impl Terminal {
    fn open(socket: PathBuf) -> Terminal {
        let terminal = Terminal {
            tmux: common::Tmux::new(socket),
        };
        terminal.tmux(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "100",
            "-y",
            "30",
            "bash --norc --noprofile -i",
        ]);
        terminal
    }

    fn tmux(&self, args: &[&str]) {
        self.tmux.run(args);
    }

    /// Types `line` and Enter at the shell's prompt.
    fn type_line(&self, line: &str) {
        self.tmux(&["send-keys", "-l", line]);
        self.tmux(&["send-keys", "Enter"]);
    }

    fn ctrl_c(&self) {
        self.tmux(&["send-keys", "C-c"]);
    }

    /// Closes the terminal: the server goes, and the pane's pseudo-terminal
    /// with it.
    fn close(self) {
        self.tmux(&["kill-server"]);
    }
}

/// Starts `scenario:LOG` in a fresh terminal and waits for its `READY`.
fn start_in_terminal(
    dir: &Path,
    name: &str,
    scenario: &str,
    after: &str,
) -> (Terminal, PathBuf, i32) {
    let log_path = dir.join(format!("{name}.log"));
    let terminal = Terminal::open(dir.join(format!("{name}.sock")));
    let program = this_program_line(&format!("{scenario}:{}", log_path.display()));
    terminal.type_line(&format!("{program}{after}"));
    let text = wait_for_line(&log_path, "READY", common::DEADLINE);
    let (pid, rest) = split_pid(&text);
    assert_eq!(
        rest, "READY\n",
        "{name}: the program did not start in the terminal"
    );
    (terminal, log_path, pid.expect("the program logged its pid"))
}

/// Closing the terminal the program runs in: SIGHUP from the shell to its
/// job, and from the kernel to the terminal's foreground group.
pub fn terminal_close_30_times() {
    require("tmux", "tmux");
    let dir = scratch("close");
    repeat(30, 3, "terminal close", |n| {
        let (terminal, log_path, pid) =
            start_in_terminal(&dir, &format!("close-{n}"), "slow_cleanup", "");
        terminal.close();
        let text = wait_for_line(&log_path, "oldest done", Duration::from_secs(5));
        let ended = Instant::now();
        while alive(pid) && ended.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(5));
        }
        let (_, text) = split_pid(&text);
        if text != every_handler_line(libc::SIGHUP) {
            return Err(format!("log {text:?}"));
        }
        if alive(pid) {
            return Err(format!("process {pid} still running after its handlers"));
        }
        Ok(())
    });
}

/// Ctrl-C typed twice, 400 ms apart, in a terminal: the first starts the
/// handlers, the second is a deliberate second request and ends the
/// process at once, by SIGINT (status 130 in the shell).
pub fn double_ctrl_c() {
    require("tmux", "tmux");
    let dir = scratch("ctrl-c");
    let log_path = dir.join("ctrl-c.log");
    let terminal = Terminal::open(dir.join("ctrl-c.sock"));
    // The shell's status for the program, from its next prompt: a job
    // killed by SIGINT makes an interactive bash drop the rest of the line.
    let program = this_program_line(&format!("hanging_cleanup:{}", log_path.display()));
    terminal.type_line(&format!(
        "PROMPT_COMMAND='echo \"status $?\" >> {}'; {program}",
        log_path.display()
    ));
    let text = wait_for_line(&log_path, "READY", common::DEADLINE);
    assert!(
        text.ends_with("READY\n"),
        "the program did not start: {text:?}"
    );

    terminal.ctrl_c();
    let first = Instant::now();
    let text = wait_for_line(&log_path, "newest started", common::DEADLINE);
    assert!(
        text.ends_with("newest started\n"),
        "the first Ctrl-C ran no handler: {text:?}"
    );
    thread::sleep((first + Duration::from_millis(400)).saturating_duration_since(Instant::now()));
    let second = Instant::now();
    terminal.ctrl_c();
    let text = wait_for_line(&log_path, "status 130", common::DEADLINE);
    let took = second.elapsed();
    terminal.close();

    let (_, text) = split_pid(&text);
    assert_eq!(text, "READY\nnewest started\nstatus 130\n");
    // "At once": the time tmux and the shell take, far below the 30 s
    // the handler would have taken.
    assert!(
        took < Duration::from_secs(2),
        "ended {took:?} after the second Ctrl-C"
    );
    println!("double Ctrl-C: ended {took:?} after the second press");
}

/// `tini` (as a container's init) forwards SIGTERM to the program (`-g`:
/// to its process group); tini then exits 128 + the signal the program
/// died of.
pub fn tini_forwards() {
    require("tini", "tini");
    let dir = scratch("tini");
    for group in [false, true] {
        let what = if group { "tini -g" } else { "tini" };
        repeat(10, 2, what, |n| {
            let log_path = dir.join(format!("tini-{group}-{n}.log"));
            let args: &[&str] = if group { &["-g", "--"] } else { &["--"] };
            let scenario = format!("slow_cleanup:{}", log_path.display());
            let mut command = wrapped("tini", args, &scenario);
            command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let tini = command.spawn().expect("spawn tini");
            let ready = wait_for_line(&log_path, "READY", common::DEADLINE);
            assert!(ready.ends_with("READY\n"), "{what}: no READY: {ready:?}");
            // SAFETY: kill(2) on our own child, not yet reaped.
            unsafe { libc::kill(tini.id() as i32, libc::SIGTERM) };
            let outcome = common::finish_child(tini);
            let (_, text) = split_pid(&fs::read_to_string(&log_path).unwrap_or_default());
            if text != every_handler_line(libc::SIGTERM)
                || outcome.code != Some(128 + libc::SIGTERM)
            {
                return Err(format!(
                    "tini status {:?}, log {text:?}, stderr {:?}",
                    outcome.code, outcome.stderr
                ));
            }
            Ok(())
        });
    }
}

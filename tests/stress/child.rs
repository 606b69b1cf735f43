//! Running scenario children for the stress suite: unlike `common::run`, a
//! hang is counted rather than fatal, so one bad run does not hide the
//! figures of the others.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long one child may take before it counts as hung: far above what any
/// scenario needs, even on two busy cores.
pub const HANG: Duration = Duration::from_secs(10);

/// How a child ended and what it printed.
#[derive(Debug, Default)]
pub struct Ended {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// It outlived its deadline and was killed.
    pub hung: bool,
}

impl Ended {
    /// The stdout lines, without newlines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// stderr lines that are not part of Rust's default panic message.
    pub fn stderr_without_panics(&self) -> Vec<String> {
        crate::common::stderr_without_panics(&self.stderr)
    }
}

/// Runs `command` to its end, reading stdout and stderr meanwhile.
pub fn run(command: Command) -> Ended {
    run_within(command, HANG)
}

/// Like `run`, with a deadline of its own.
pub fn run_within(command: Command, deadline: Duration) -> Ended {
    let mut live = spawn(command);
    live.finish_within(deadline)
}

/// A running child whose stdout arrives line by line.
pub struct Live {
    pub child: Child,
    lines: Receiver<String>,
    /// The stdout lines received so far.
    pub seen: Vec<String>,
    stdout: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<String>>,
}

/// Starts `command` with piped stdout and stderr, both read by threads, in
/// a process group of its own so that a hang can be killed with whatever
/// it forked.
pub fn spawn(mut command: Command) -> Live {
    command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn scenario child");
    let (lines, stdout) = line_reader(child.stdout.take().expect("piped stdout"));
    let stderr = text_reader(child.stderr.take());
    Live {
        child,
        lines,
        seen: Vec::new(),
        stdout: Some(stdout),
        stderr: Some(stderr),
    }
}

impl Live {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for a stdout line equal to `want`; false if the child ended or
    /// the deadline passed first.
    pub fn wait_for(&mut self, want: &str) -> bool {
        let end = Instant::now() + HANG;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line == want;
                    self.seen.push(line);
                    if found {
                        return true;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    /// Sends `signal`; false if the child is already gone.
    pub fn signal(&self, signal: i32) -> bool {
        // SAFETY: kill(2) on our own child, which is not reaped before
        // `finish`, so the pid cannot have been reused.
        unsafe { libc::kill(self.pid(), signal) == 0 }
    }

    /// Waits for the end (killing the child at the deadline), then collects
    /// all output.
    pub fn finish(&mut self) -> Ended {
        self.finish_within(HANG)
    }

    /// Like `finish`, with a deadline of its own.
    pub fn finish_within(&mut self, deadline: Duration) -> Ended {
        let (status, hung) = wait_within(&mut self.child, deadline);
        // A process the child forked may still hold the pipes; it gets a
        // moment to end, then is killed with its group.
        let end = Instant::now() + Duration::from_secs(2);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    // SAFETY: kill(2) of the group our child led; every
                    // process in it is one of ours.
                    unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
                }
            }
        }
        if let Some(reader) = self.stdout.take() {
            reader.join().expect("stdout reader");
        }
        let mut stdout = String::new();
        for line in &self.seen {
            stdout.push_str(line);
            stdout.push('\n');
        }
        let stderr = match self.stderr.take() {
            Some(reader) => reader.join().expect("stderr reader"),
            None => String::new(),
        };
        Ended {
            stdout,
            stderr,
            code: status.code(),
            signal: status.signal(),
            hung,
        }
    }
}

/// Waits for `child`, killing it if it outlives `deadline` (with its
/// process group when it leads one); tells whether it had to be killed.
pub fn wait_within(child: &mut Child, deadline: Duration) -> (ExitStatus, bool) {
    let started = Instant::now();
    let mut pause = Duration::from_micros(200);
    loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            return (status, false);
        }
        if started.elapsed() > deadline {
            // SAFETY: kill(2) of our unreaped child's group, if it leads
            // one (else ESRCH, harmless), then of the child itself.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.kill();
            return (child.wait().expect("wait for killed child"), true);
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

fn line_reader(stdout: ChildStdout) -> (Receiver<String>, JoinHandle<()>) {
    let (sender, receiver) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut bytes = Vec::new();
        loop {
            bytes.clear();
            match stdout.read_until(b'\n', &mut bytes) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&bytes);
                    let line = line.strip_suffix('\n').unwrap_or(&line).to_owned();
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    (receiver, reader)
}

pub fn text_reader(source: Option<ChildStderr>) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut source) = source {
            let _ = source.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

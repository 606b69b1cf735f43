//! A terminal left in raw mode by a program killed with SIGKILL, in a real
//! terminal (a tmux pane that stays open after its program dies), restored
//! by the guardian: `stty -a` of the pane's terminal before and after.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use atexit::Guardian;

use crate::MARKER;

fn log(path: &str, line: &str) {
    if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = file.write_all(format!("{line}\n").as_bytes());
    }
}

/// `stty -a` of the terminal on stdin.
fn stty_here() -> String {
    Command::new("stty")
        .arg("-a")
        .stdin(Stdio::inherit())
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .replace('\n', " ")
        })
        .unwrap_or_default()
}

/// `raw_terminal:LOG`, run as a tmux pane's program: declares the
/// terminal's restoration, puts it in raw mode, and waits to be killed.
pub fn raw_terminal_program(log_path: &str) -> Result<(), String> {
    let guardian = Guardian::start().map_err(|e| e.to_string())?;
    guardian.restore_terminal().map_err(|e| e.to_string())?;
    log(log_path, &format!("before {}", stty_here()));
    let stdin = std::io::stdin();
    // SAFETY: tcgetattr/cfmakeraw/tcsetattr on this process's terminal,
    // with a termios that tcgetattr filled.
    unsafe {
        let mut raw: libc::termios = std::mem::zeroed();
        libc::tcgetattr(stdin.as_raw_fd(), &mut raw);
        libc::cfmakeraw(&mut raw);
        libc::tcsetattr(stdin.as_raw_fd(), libc::TCSANOW, &raw);
    }
    log(log_path, &format!("raw {}", stty_here()));
    log(log_path, &format!("pid {}", std::process::id()));
    log(log_path, "READY");
    loop {
        thread::park();
    }
}

fn field<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|line| line.strip_prefix(name).map(str::trim))
        .unwrap_or_else(|| panic!("no {name:?} in {text:?}"))
}

pub fn restored_after_sigkill() {
    assert!(
        Command::new("tmux").arg("-V").output().is_ok(),
        "tmux is needed: run `bash .ci/setup` (or `apt-get install tmux`)"
    );
    let dir = std::env::temp_dir().join(format!("atexit-guardian-tty-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let log_path = dir.join("log");
    let socket = dir.join("tmux.sock");
    let exe = std::env::current_exe().unwrap();
    let after_path = dir.join("after");
    // The shell reads the terminal once the guardian has had time to act;
    // a non-interactive shell leaves the terminal's modes alone.
    let program = format!(
        "{MARKER}='raw_terminal:{}' RUST_BACKTRACE=0 '{}'; sleep 0.5; stty -a > '{}'",
        log_path.display(),
        exe.display(),
        after_path.display()
    );
    let tmux = crate::common::Tmux::new(socket);
    // The pane outlives its program, so its terminal can be read after.
    tmux.run(&[
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-x",
        "80",
        "-y",
        "24",
        "sleep 600",
    ]);
    tmux.run(&["set-option", "-wg", "remain-on-exit", "on"]);
    tmux.run(&["new-window", "-d", &program]);
    let started = Instant::now();
    let text = loop {
        let text = fs::read_to_string(&log_path).unwrap_or_default();
        if text.ends_with("READY\n") || started.elapsed() > Duration::from_secs(20) {
            break text;
        }
        thread::sleep(Duration::from_millis(5));
    };
    assert!(
        text.ends_with("READY\n"),
        "the program did not start: {text:?}"
    );
    let before = field(&text, "before").to_owned();
    let raw = field(&text, "raw").to_owned();
    let pid: i32 = field(&text, "pid").parse().unwrap();
    // SAFETY: kill(2) of the program this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let waited = Instant::now();
    let after = loop {
        let after = fs::read_to_string(&after_path).unwrap_or_default();
        if after.ends_with('\n') || waited.elapsed() > Duration::from_secs(10) {
            break after.trim().replace('\n', " ");
        }
        thread::sleep(Duration::from_millis(10));
    };
    tmux.run(&["kill-server"]);
    let _ = fs::remove_dir_all(&dir);
    assert_ne!(raw, before, "raw mode changed nothing");
    assert_eq!(after, before, "the terminal was not restored");
}

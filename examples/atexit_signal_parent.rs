//! Twin of PyMOTW's `atexit_signal_parent.py`: starts `atexit_signal_child`,
//! lets it register its handler, then kills it with SIGTERM. The child's
//! handler does not run: a signal the program does not handle ends it at
//! once (`atexit::handle_signals()` changes that).
//!
//! The child's two lines come through a pipe and are echoed here before the
//! parent's own, so the output order never depends on timing. Exits 0 only
//! if the child died of SIGTERM.
//!
//! The child is the sibling binary, so build both first:
//! `cargo build --examples && target/debug/examples/atexit_signal_parent`.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::Duration;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("PARENT: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|err| format!("cannot find myself: {err}"))?;
    let child_path = exe.with_file_name("atexit_signal_child");
    let mut child = Command::new(&child_path)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|err| {
            format!(
                "cannot start {} ({err}); build it with `cargo build --example atexit_signal_child`",
                child_path.display()
            )
        })?;

    // Wait until the child has registered its handler and is pausing.
    let mut child_out = BufReader::new(child.stdout.take().expect("stdout is piped"));
    for _ in 0..2 {
        let mut line = String::new();
        match child_out.read_line(&mut line) {
            Ok(0) | Err(_) => return Err("the child ended before it was ready".into()),
            Ok(_) => print!("{line}"),
        }
    }

    println!("PARENT: Pausing before sending signal...");
    thread::sleep(Duration::from_millis(100));
    println!("PARENT: Signaling child");
    let pid = libc::pid_t::try_from(child.id()).map_err(|_| "child pid out of range")?;
    // SAFETY: kill(2) with a valid signal, on our own child, which has not
    // been waited for yet and so cannot have been replaced by another process.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        return Err(format!("kill failed: {}", std::io::Error::last_os_error()));
    }

    // Anything more from the child would be its handler's output.
    let mut rest = String::new();
    let _ = child_out.read_to_string(&mut rest);
    print!("{rest}");

    let status = child
        .wait()
        .map_err(|err| format!("cannot reap the child: {err}"))?;
    match status.signal() {
        Some(libc::SIGTERM) => Ok(()),
        _ => Err(format!("the child was not killed by SIGTERM: {status}")),
    }
}

//! The guardian process's one job: collect the program's declarations
//! until its end of the pipe closes (the kernel closes it when the program
//! dies, however it dies), then carry out what is still declared, newest
//! first, unless the program said its exit run finished.

use std::fs;
use std::io::{self, ErrorKind, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};

use super::protocol::{Decoder, Message, MAX_FRAME};
use super::NoControllingTerminal;

/// Reads `pipe` until the program is gone, then acts. Returns when done.
pub(crate) fn watch(socket: OwnedFd) {
    let mut decoder = Decoder::default();
    // Each action with the descriptor that came with it (a terminal).
    let mut declared: Vec<(Message, Option<OwnedFd>)> = Vec::new();
    let mut buffer = vec![0u8; MAX_FRAME];
    loop {
        let fd = match super::receive(socket.as_raw_fd(), &mut buffer) {
            Ok((0, _)) => break,
            Ok((read, fd)) => {
                decoder.push(&buffer[..read]);
                fd
            }
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) => {
                report(format_args!("reading from the program failed: {err}"));
                break;
            }
        };
        // One packet is one message, so a descriptor belongs to it.
        while let Some(message) = decoder.next_message() {
            match message {
                Ok(Message::Clean) => return,
                Ok(Message::Cancel { id }) => {
                    declared.retain(|(action, _)| id_of(action) != Some(id))
                }
                Ok(action) => declared.push((action, None)),
                Err(err) => report(format_args!("ignored {err}")),
            }
        }
        if let (Some(fd), Some((_, slot))) = (fd, declared.last_mut()) {
            *slot = Some(fd);
        }
    }
    for (action, fd) in declared.iter().rev() {
        carry_out(action, fd.as_ref());
    }
}

fn id_of(message: &Message) -> Option<u64> {
    match message {
        Message::RemovePath { id, .. }
        | Message::KillGroup { id, .. }
        | Message::RestoreTerminal { id, .. }
        | Message::RunCommand { id, .. } => Some(*id),
        Message::Cancel { .. } | Message::Clean => None,
    }
}

fn carry_out(action: &Message, fd: Option<&OwnedFd>) {
    match action {
        Message::RemovePath { path, .. } => {
            let removed = match fs::symlink_metadata(path) {
                Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
                Ok(_) => fs::remove_file(path),
                Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
                Err(err) => Err(err),
            };
            if let Err(err) = removed {
                report(format_args!("could not remove {}: {err}", path.display()));
            }
        }
        Message::KillGroup { pgid, .. } => {
            if let Err(err) = super::kill_group(*pgid) {
                // Already gone is what was wanted.
                if err.raw_os_error() != Some(libc::ESRCH) {
                    report(format_args!("could not kill process group {pgid}: {err}"));
                }
            }
        }
        Message::RestoreTerminal { tty, termios, .. } => {
            let restored = match fd {
                Some(terminal) => super::set_terminal(terminal.as_raw_fd(), termios),
                None => fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags_noctty()
                    .open(tty)
                    .and_then(|terminal| super::set_terminal(terminal.as_raw_fd(), termios)),
            };
            if let Err(err) = restored {
                report(format_args!("could not restore {}: {err}", tty.display()));
            }
        }
        Message::RunCommand {
            program,
            args,
            env,
            dir,
            ..
        } => {
            let mut command = Command::new(program);
            command
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null());
            for (key, value) in env {
                match value {
                    Some(value) => command.env(key, value),
                    None => command.env_remove(key),
                };
            }
            if let Some(dir) = dir {
                command.current_dir(dir);
            }
            match command.status() {
                Ok(status) if status.success() => {}
                Ok(status) => report(format_args!("{program:?} ended with {status}")),
                Err(err) => report(format_args!("could not run {program:?}: {err}")),
            }
        }
        Message::Cancel { .. } | Message::Clean => {}
    }
}

/// A line on the guardian's stderr (the program's original stderr).
fn report(what: std::fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr(), "atexit guardian: {what}");
}

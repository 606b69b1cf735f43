//! Problem: with `tracing-appender`'s non-blocking writer, a worker thread
//! writes the log lines, and only dropping its `WorkerGuard` waits for the
//! lines still queued. `std::process::exit` drops nothing, so a program
//! that exits from deep inside loses its last lines, and its exit line.
//!
//! Fix: move the guard into an exit handler, which logs the exit line and
//! drops the guard: every queued line is written before the process ends.
//! (The guard waits at most one second for the worker: `tracing-appender`'s
//! own limit.)
//!
//! Usage: `exit_log DIR [--no-handler] [--slow-disk]`. Logs to
//! `DIR/app.log`. `--no-handler` keeps the guard in `main`, as a program
//! without the crate would; `--slow-disk` makes every write take a
//! millisecond, like a busy disk or a network share, so that lines are
//! still queued when the process exits.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use tracing_appender::non_blocking::WorkerGuard;

/// How many lines the program logs before it exits.
const LINES: usize = 100;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: exit_log DIR [--no-handler] [--slow-disk]");
        std::process::exit(2);
    };
    let flags: Vec<String> = args.collect();
    let with_handler = !flags.iter().any(|flag| flag == "--no-handler");
    let slow_disk = flags.iter().any(|flag| flag == "--slow-disk");

    let guard = init_logging(&dir, slow_disk);
    if with_handler {
        // On a new thread: the exiting thread's thread-locals are already
        // destroyed, and `tracing-subscriber` formats each event in one.
        atexit::Hook::new(move || {
            tracing::info!("exiting");
            drop(guard); // waits for the worker to write every queued line
        })
        .on_new_thread()
        .register();
        run()
    } else {
        // Dropped when `main` returns, which it never does.
        let _guard = guard;
        run()
    }
}

fn init_logging(dir: &Path, slow_disk: bool) -> WorkerGuard {
    let file = tracing_appender::rolling::never(dir, "app.log");
    let (writer, guard) = if slow_disk {
        tracing_appender::non_blocking(SlowDisk(file))
    } else {
        tracing_appender::non_blocking(file)
    };
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .without_time()
        .init();
    guard
}

fn run() -> ! {
    for record in 0..LINES {
        tracing::info!(record, "processed");
    }
    println!("logged {LINES} lines");
    std::process::exit(0)
}

/// A writer whose every write takes a millisecond.
struct SlowDisk<W>(W);

impl<W: Write> Write for SlowDisk<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        thread::sleep(Duration::from_millis(1));
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

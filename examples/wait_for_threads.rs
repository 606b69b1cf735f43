//! Problem: Rust waits for no thread when the process exits (CPython at
//! least joins its non-daemon threads): a background worker is cut off
//! wherever it is, its last batch never written. Joining it at exit needs
//! the worker told to stop first, and a worker that never stops must not
//! hang the exit.
//!
//! Fix: `atexit::join_at_exit(worker, timeout)` waits for a worker at exit,
//! at most `timeout`, and reports on stderr one that is still running. A
//! handler registered after the joins tells the workers to stop; handlers
//! run newest first, so it runs before them.
//!
//! Usage: `wait_for_threads [--no-handler]`. Two workers: `flusher` stops
//! when told to, `stuck` waits for a reply that never comes.
//! `--no-handler` registers nothing: the flusher is cut off silently.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

fn main() {
    let with_handler = std::env::args().nth(1).as_deref() != Some("--no-handler");
    let stop = Arc::new(AtomicBool::new(false));
    let (started, each_started) = mpsc::channel();

    let flusher = thread::Builder::new()
        .name("flusher".into())
        .spawn({
            let stop = Arc::clone(&stop);
            let started = started.clone();
            move || {
                println!("[flusher] started");
                started.send(()).unwrap();
                while !stop.load(Ordering::Acquire) {
                    thread::sleep(Duration::from_millis(2)); // a batch of work
                }
                let _ = writeln!(io::stdout(), "[flusher] last batch written");
            }
        })
        .unwrap();
    each_started.recv().unwrap();

    let stuck = thread::Builder::new()
        .name("stuck".into())
        .spawn(move || {
            println!("[stuck] waiting for a reply");
            started.send(()).unwrap();
            // Stands for a blocking read from a peer that hung: it ignores
            // the stop flag and never returns.
            loop {
                thread::park();
            }
        })
        .unwrap();
    each_started.recv().unwrap();

    if with_handler {
        atexit::join_at_exit(stuck, Duration::from_millis(300));
        atexit::join_at_exit(flusher, Duration::from_millis(300));
        // Registered last, so it runs first.
        atexit::register(move || {
            let _ = writeln!(io::stdout(), "[atexit] telling the workers to stop");
            stop.store(true, Ordering::Release);
        });
    }
    println!("[main] done");
}

//! Twin of PyMOTW's `atexit_signal_child.py`, started by
//! `atexit_signal_parent`: it registers a handler, then waits to be killed.
//!
//! Without `atexit::handle_signals()`, SIGTERM ends the process at once and
//! the handler never runs.

use std::thread;
use std::time::Duration;

fn not_called() {
    println!("CHILD: atexit handler should not have been called");
}

fn main() {
    // Rust's stdout is flushed at every newline, even into a pipe, so the
    // parent sees each line as soon as it is printed.
    println!("CHILD: Registering atexit handler");
    atexit::register(not_called);

    println!("CHILD: Pausing to wait for signal");
    thread::sleep(Duration::from_secs(5));
}

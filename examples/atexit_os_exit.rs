//! Twin of PyMOTW's `atexit_os_exit.py`: `libc::_exit`, Python's
//! `os._exit`, ends the process at once and runs no exit handler.
//!
//! Prints `Registering`, `Registered`, `Exiting...` and nothing more. Rust's
//! stdout is flushed at every newline, so unlike Python (which needs `-u`
//! here) no output is lost.

fn not_called() {
    println!("This should not be called");
}

fn main() {
    println!("Registering");
    atexit::register(not_called);
    println!("Registered");

    println!("Exiting...");
    // SAFETY: `_exit` ends the process without running anything; nothing
    // here relies on destructors or exit handlers having run.
    unsafe { libc::_exit(0) }
}

//! `set_deadline` cuts off a hung exit handler.
//!
//! The `upload-logs` hook stands for a network call that never returns. With
//! a 300 ms budget for the whole exit run, the process does not hang: the
//! crate names the hook on stderr, skips what is left, and exits with the
//! status `main` would have given (0 here; where the C library does not
//! report the status, as with musl or on macOS, 1).
//!
//! ```text
//! $ cargo run --example deadline
//! main is done
//! database closed
//! uploading logs
//! atexit: exit deadline of 300ms exceeded while running exit handler `upload-logs` (registered at examples/deadline.rs:33:6); skipping the remaining handlers
//! ```
//!
//! `temporary files removed` never appears: handlers run newest first, so
//! register what matters most last, and it runs before anything can hang.

use std::thread;
use std::time::Duration;

fn main() {
    atexit::set_deadline(Duration::from_millis(300));

    atexit::register(|| println!("temporary files removed"));
    atexit::Hook::new(|| {
        println!("uploading logs");
        // A server that never answers.
        thread::sleep(Duration::from_secs(3600));
        println!("logs uploaded");
    })
    .name("upload-logs")
    .register();
    atexit::register(|| println!("database closed"));

    println!("main is done");
}

//! Twin of the counter in Python's `atexit` documentation: the count is read
//! from the file `counterfile` (in the current directory) at start, and an
//! exit handler saves it, so it persists from run to run without `main`
//! having to remember to save it.
//!
//! `cargo run --example counter` adds 1; `cargo run --example counter -- 5`
//! adds 5. Each run prints the count it saved.

use std::error::Error;
use std::fs;
use std::io::{self, ErrorKind, Write};
use std::sync::atomic::{AtomicI64, Ordering};

const COUNTER_FILE: &str = "counterfile";

static COUNT: AtomicI64 = AtomicI64::new(0);

fn incrcounter(n: i64) {
    COUNT.fetch_add(n, Ordering::Relaxed);
}

fn savecounter() {
    let count = COUNT.load(Ordering::Relaxed);
    match fs::write(COUNTER_FILE, count.to_string()) {
        Ok(()) => println!("[saved] counter = {count}"),
        // Nobody is left to return an error to: say it on stderr.
        Err(err) => {
            let _ = writeln!(io::stderr(), "could not save {COUNTER_FILE}: {err}");
        }
    }
}

/// Loads the saved count (0 if there is none yet) and arranges for it to be
/// saved at exit, like the module body of the Python original.
fn load() -> Result<(), Box<dyn Error>> {
    let count = match fs::read_to_string(COUNTER_FILE) {
        Ok(text) => text.trim().parse()?,
        Err(err) if err.kind() == ErrorKind::NotFound => 0,
        Err(err) => return Err(err.into()),
    };
    COUNT.store(count, Ordering::Relaxed);
    atexit::register(savecounter);
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    load()?;
    let n = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 1,
    };
    incrcounter(n);
    Ok(())
}

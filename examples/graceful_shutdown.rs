//! A long-running loop that saves its state when stopped with Ctrl-C,
//! SIGTERM or SIGHUP, then dies of that signal as if it had not caught it.
//!
//! ```text
//! cargo run --example graceful_shutdown -- /tmp/counter
//! ```
//!
//! It counts up every 100 ms. Stop it with Ctrl-C (or `kill PID`): it
//! prints `saved N to /tmp/counter` and the shell reports the signal. Run it
//! again and it carries on from N.
//!
//! The count is saved atomically: written to `/tmp/counter.tmp`, synced,
//! then renamed over `/tmp/counter`. A process killed mid-save, even by
//! SIGKILL, leaves the old count or the new one, never half a file.

use std::error::Error;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

struct Counter {
    count: u64,
    /// Set by the exit handler: the loop counts no further, so the count
    /// saved is the last one printed.
    stopped: bool,
}

fn main() -> Result<(), Box<dyn Error>> {
    let path = match std::env::args_os().nth(1) {
        Some(path) => PathBuf::from(path),
        None => std::env::temp_dir().join("graceful_shutdown.count"),
    };
    let start = load(&path)?;
    println!("starting at {start}; state file {}", path.display());
    let counter = Arc::new(Mutex::new(Counter {
        count: start,
        stopped: false,
    }));

    atexit::handle_signals()?;
    let shared = Arc::clone(&counter);
    atexit::register(move || {
        let mut counter = shared.lock().unwrap_or_else(PoisonError::into_inner);
        counter.stopped = true;
        // The process may be ending because stdout is gone: never panic here.
        match save(&path, counter.count) {
            Ok(()) => {
                let _ = writeln!(
                    io::stdout(),
                    "saved {} to {}",
                    counter.count,
                    path.display()
                );
            }
            Err(err) => {
                let _ = writeln!(io::stderr(), "could not save the count: {err}");
            }
        }
    });
    // Scripts (and this example's tests) wait for this line before signalling.
    println!("READY");

    loop {
        {
            let mut counter = counter.lock().unwrap_or_else(PoisonError::into_inner);
            if counter.stopped {
                break;
            }
            counter.count += 1;
            // Printed under the lock, so it comes before any "saved" line.
            println!("count {}", counter.count);
        }
        thread::sleep(Duration::from_millis(100));
    }
    // The handler has saved the count; the signal ends the process.
    loop {
        thread::park();
    }
}

fn load(path: &Path) -> Result<u64, Box<dyn Error>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(text
            .trim()
            .parse()
            .map_err(|err| format!("{} holds no count: {err}", path.display()))?),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(err) => Err(err.into()),
    }
}

/// Replaces the state file in one step: readers never see a partial write.
fn save(path: &Path, count: u64) -> io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = File::create(&temporary)?;
    writeln!(file, "{count}")?;
    // On disk before the name points at it, so a crash cannot leave an
    // empty file under the real name.
    file.sync_all()?;
    fs::rename(&temporary, path)
}

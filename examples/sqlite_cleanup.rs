//! Problem: rows written inside a SQLite transaction are kept only if the
//! transaction commits, and a temporary file is removed only if someone
//! removes it. A program that ends with `std::process::exit` from deep
//! inside runs no destructor: the open transaction is rolled back when the
//! database is next opened, and the `NamedTempFile` stays on disk.
//!
//! Fix: keep the connection where an exit handler can reach it (here a
//! `static Mutex<Option<Connection>>`), and move the temporary file into
//! the handler. At exit the handler commits (or rolls back unless the
//! process is ending with status 0), closes the connection and removes
//! the temporary file: the guide's `cleanup()`, with real components. The
//! program ends with `atexit::exit`, whose status the crate knows on every
//! C library.
//!
//! Usage: `sqlite_cleanup DIR [--fail] [--no-handler]`. The database is
//! `DIR/app.db`. `--fail` exits with status 1 instead of 0; `--no-handler`
//! registers nothing, to show what is lost without the crate.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use atexit::ExitReason;
use rusqlite::Connection;
use tempfile::NamedTempFile;

/// The connection, with its transaction open, reachable from the exit handler.
static DB: Mutex<Option<Connection>> = Mutex::new(None);

fn db() -> MutexGuard<'static, Option<Connection>> {
    DB.lock().unwrap_or_else(PoisonError::into_inner)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or("usage: sqlite_cleanup DIR [--fail] [--no-handler]")?,
    );
    let flags: Vec<String> = args.collect();
    let with_handler = !flags.iter().any(|flag| flag == "--no-handler");
    let fail = flags.iter().any(|flag| flag == "--fail");

    let conn = Connection::open(dir.join("app.db"))?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         BEGIN;",
    )?;
    *db() = Some(conn);

    // Deleted when dropped, and an exit drops nothing.
    let mut scratch = tempfile::Builder::new()
        .prefix("scratch-")
        .tempfile_in(&dir)?;
    writeln!(scratch, "intermediate results")?;

    // Without the handler the file stays with `main`, whose locals
    // an exit never drops.
    let _kept = if with_handler {
        atexit::register(move || cleanup(scratch));
        None
    } else {
        Some(scratch)
    };

    import(&["alpha", "beta", "gamma"], if fail { 1 } else { 0 })
}

fn import(names: &[&str], code: i32) -> ! {
    for name in names {
        record(name);
    }
    finish(code)
}

fn record(name: &str) {
    let guard = db();
    let conn = guard.as_ref().expect("database is open");
    conn.execute("INSERT INTO events (name) VALUES (?1)", [name])
        .expect("insert");
    println!("recorded {name}");
    // The lock is released here: the exit handler needs it.
}

fn finish(code: i32) -> ! {
    println!("exiting with status {code}");
    // Like `std::process::exit`, this drops nothing; unlike it, the crate
    // always knows the status it ends with, also where the C library does
    // not report it (musl, macOS, the BSDs), so the handler can tell a
    // failure from a success there too.
    atexit::exit(code)
}

/// The exit handler: commit or roll back, close, remove the temporary file.
fn cleanup(scratch: NamedTempFile) {
    let _ = writeln!(
        io::stdout(),
        "[cleanup] Closing DB and removing temp file..."
    );
    if let Some(conn) = db().take() {
        // Keep the work only on a success the crate knows of. A failure, a
        // signal, and an unknown status roll back: `Exit(None)` is what
        // `std::process::exit` or a return from `main` gives on C libraries
        // that do not report the status, so end with `atexit::exit` there.
        let succeeded = atexit::reason() == Some(ExitReason::Exit(Some(0)));
        let end = if succeeded { "COMMIT" } else { "ROLLBACK" };
        if !conn.is_autocommit() {
            match conn.execute_batch(end) {
                Ok(()) => {
                    let _ = writeln!(io::stdout(), "[cleanup] {end}");
                }
                Err(err) => {
                    let _ = writeln!(io::stderr(), "[cleanup] {end} failed: {err}");
                }
            }
        }
        if let Err((_, err)) = conn.close() {
            let _ = writeln!(io::stderr(), "[cleanup] closing the database failed: {err}");
        }
    }
    if let Err(err) = scratch.close() {
        let _ = writeln!(
            io::stderr(),
            "[cleanup] removing the temp file failed: {err}"
        );
    }
}

//! Problem: an exit handler often needs arguments: which file to delete,
//! how loudly. Python passes them with `atexit.register(func, *args)` or
//! `functools.partial(delete_file, path, verbose=True)`.
//!
//! Fix: `atexit::register_with(delete_file, (path, true))` keeps the
//! arguments with the function until exit; a `move` closure does the same
//! and can pass anything. Keyword arguments become positional ones.
//!
//! Usage: `partial_args DIR`. Creates `DIR/output.log` and `DIR/cache.tmp`;
//! both are deleted at exit, the first verbosely, the second quietly.

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

fn delete_file(path: PathBuf, verbose: bool) {
    if verbose {
        let _ = writeln!(io::stdout(), "Deleting {}", path.display());
    }
    if let Err(err) = fs::remove_file(&path) {
        let _ = writeln!(io::stderr(), "could not delete {}: {err}", path.display());
    }
}

fn main() -> io::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: partial_args DIR"));
    let output = dir.join("output.log");
    let cache = dir.join("cache.tmp");
    fs::write(&output, "results\n")?;
    fs::write(&cache, "cached\n")?;

    // functools.partial(delete_file, output, verbose=True)
    atexit::register_with(delete_file, (output, true));
    // The same with a closure; it runs first (newest first).
    atexit::register(move || delete_file(cache, false));

    println!("wrote output.log and cache.tmp");
    Ok(())
}

//! Problem: settings changed while a program runs should be on disk when it
//! ends, however it ends: `main` returning, `std::process::exit`, or
//! SIGTERM from a supervisor. And a crash or power loss in the middle of
//! the save must not leave a half-written config file behind.
//!
//! Fix: one exit handler saves the settings as JSON by write-then-rename:
//! write a temporary file in the same directory, `fsync` it, rename it
//! over the config file (readers see the old file or the new one, never
//! half of one), `fsync` the directory. `atexit::handle_signals()` makes
//! SIGTERM run the same handler; the process still dies of SIGTERM.
//!
//! Usage: `save_config DIR [--wait] [--pause-mid-save]`. The settings live
//! in `DIR/config.json`. `--wait` handles signals, prints `READY` and waits
//! for one. `--pause-mid-save` stops the save halfway through writing (it
//! prints `SAVING`) so that a test can kill the process there, as a power
//! loss would.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use serde::{Deserialize, Serialize};

const CONFIG: &str = "config.json";
/// Temporary files are `.config.json.XXXXXX.tmp`, beside the config file.
const TEMP_PREFIX: &str = ".config.json.";
const TEMP_SUFFIX: &str = ".tmp";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct Settings {
    theme: String,
    runs: u32,
    recent: Vec<String>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or("usage: save_config DIR [--wait] [--pause-mid-save]")?,
    );
    let flags: Vec<String> = args.collect();
    let wait = flags.iter().any(|flag| flag == "--wait");
    let pause_mid_save = flags.iter().any(|flag| flag == "--pause-mid-save");

    remove_interrupted_saves(&dir)?;
    let settings = Arc::new(Mutex::new(load(&dir.join(CONFIG))?));
    atexit::register({
        let settings = Arc::clone(&settings);
        move || {
            let settings = settings.lock().unwrap_or_else(PoisonError::into_inner);
            match save(&settings, &dir.join(CONFIG), pause_mid_save) {
                Ok(()) => {
                    let _ = writeln!(
                        io::stdout(),
                        "[saved] runs={} theme={}",
                        settings.runs,
                        settings.theme
                    );
                }
                Err(err) => {
                    let _ = writeln!(io::stderr(), "[save failed] {err}");
                }
            }
        }
    });

    {
        let mut settings = settings.lock().unwrap_or_else(PoisonError::into_inner);
        settings.runs += 1;
        settings.theme = "dark".to_owned();
        let session = format!("session {}", settings.runs);
        settings.recent.push(session);
    }

    if wait {
        atexit::handle_signals()?;
        println!("READY");
        loop {
            thread::park(); // until a signal ends the process
        }
    }
    Ok(())
}

fn load(path: &Path) -> Result<Settings, Box<dyn std::error::Error>> {
    match fs::read(path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes)?),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Settings::default()),
        Err(err) => Err(err.into()),
    }
}

/// Replaces `path` with `settings` as a whole, or not at all.
fn save(settings: &Settings, path: &Path, pause_mid_save: bool) -> io::Result<()> {
    let mut json = serde_json::to_vec_pretty(settings)?;
    json.push(b'\n');
    let dir = path.parent().unwrap_or(Path::new("."));
    // Same directory: the rename stays on one file system, so it is atomic.
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)?;
    if pause_mid_save {
        let (first, rest) = json.split_at(json.len() / 2);
        temp.write_all(first)?;
        temp.flush()?;
        let _ = writeln!(io::stdout(), "SAVING");
        let _ = io::stdout().flush();
        thread::sleep(Duration::from_secs(60));
        temp.write_all(rest)?;
    } else {
        temp.write_all(&json)?;
    }
    // The bytes are on disk before the name points at them...
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|err| err.error)?;
    // ...and the new name itself survives a power loss.
    File::open(dir)?.sync_all()
}

/// A save cut short by a crash leaves its temporary file; the config file
/// itself is whole. Remove such leftovers.
fn remove_interrupted_saves(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX) {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

//! The `graceful_shutdown` and `deadline` examples, run as users would.

use crate::common::{self, Outcome};
use crate::Test;

pub const TESTS: &[Test] = &[
    #[cfg(feature = "signal")]
    ("example_graceful_shutdown", graceful_shutdown),
    ("example_deadline", deadline),
];

#[cfg(feature = "signal")]
fn graceful_shutdown() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("count");
    let shown = path.display().to_string();
    // A fresh start, stopped by SIGTERM; then a resumed run, stopped by
    // Ctrl-C's SIGINT.
    let first = stop_counter(&path, 0, libc::SIGTERM);
    let second = stop_counter(&path, first, libc::SIGINT);
    assert!(second > first, "{first} then {second}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{second}\n")
    );
    // The rename left no temporary file behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["count"], "files beside {shown}");
}

/// Runs the example until it has counted once, stops it with `signal`, and
/// returns the count it saved.
#[cfg(feature = "signal")]
fn stop_counter(path: &std::path::Path, start: u64, signal: i32) -> u64 {
    let mut command = common::example("graceful_shutdown");
    command.arg(path);
    let mut running = common::start(command);
    let first = running.read_line();
    assert_eq!(first, format!("count {}", start + 1));
    running.signal(signal);
    let outcome = running.finish();
    assert_eq!(
        outcome.stdout.lines().next(),
        Some(format!("starting at {start}; state file {}", path.display()).as_str()),
        "{outcome:?}"
    );
    // After READY (and the count read above): further counts in order,
    // then the save of the last one.
    let mut lines: Vec<&str> = outcome.stdout.lines().skip(2).collect();
    let saved = lines.pop().unwrap_or_default();
    let mut count = start + 1;
    for line in lines {
        count += 1;
        assert_eq!(line, format!("count {count}"), "{outcome:?}");
    }
    assert_eq!(
        saved,
        format!("saved {count} to {}", path.display()),
        "{outcome:?}"
    );
    assert_eq!(std::fs::read_to_string(path).unwrap(), format!("{count}\n"));
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.signal, Some(signal), "{outcome:?}");
    count
}

fn deadline() {
    let outcome: Outcome = common::run(common::example("deadline"));
    assert_eq!(
        outcome.stdout, "main is done\ndatabase closed\nuploading logs\n",
        "{outcome:?}"
    );
    let prefix = "atexit: exit deadline of 300ms exceeded while running \
                  exit handler `upload-logs` (registered at examples/deadline.rs:";
    let suffix = "); skipping the remaining handlers\n";
    assert!(
        outcome.stderr.starts_with(prefix) && outcome.stderr.ends_with(suffix),
        "{outcome:?}"
    );
    assert_eq!(outcome.stderr.lines().count(), 1, "{outcome:?}");
    assert_eq!(outcome.code, common::deadline_status(0), "{outcome:?}");
}

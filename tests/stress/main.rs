//! The reliability suite: races, forks, signal storms, kill -9,
//! closed pipes and bad input, each run many times in real child processes
//! and summed up as counts ("1000 runs, 0 lost, 0 doubled, 0 hung").
//!
//! One binary without libtest. Run plainly, it runs every group (or those
//! whose name contains an argument); each group re-executes this binary with
//! `ATEXIT_STRESS_SCENARIO` naming a scenario, many times, and fails if any
//! count that must be zero is not.
//!
//! How many runs: `ATEXIT_STRESS_SCALE` is the fraction of the full counts
//! (1000 racing exits, 200 forks, 100 storms, 500 crash runs). Unset, it is
//! 0.25, what CI runs; `ATEXIT_STRESS_SCALE=full` (or 1) runs the full counts,
//! and a larger number a soak (`ATEXIT_STRESS_SCALE=10`):
//!
//! ```text
//! ATEXIT_STRESS_SCALE=full cargo test --release --test stress
//! ```
//!
//! Random moments come from a seed printed at the start; set
//! `ATEXIT_STRESS_SEED` to replay one.

// Without the `signal` feature the signal scenarios are left out, and some
// helpers they share with the rest go unused.
#![cfg_attr(not(feature = "signal"), allow(dead_code))]

#[path = "../common/mod.rs"]
mod common;

mod child;
#[cfg(feature = "signal")]
mod crash;
mod fork;
mod input;
mod pipes;
mod racing;
#[cfg(feature = "signal")]
mod storm;

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const MARKER: &str = "ATEXIT_STRESS_SCENARIO";

/// The fraction of the full counts that CI runs.
const DEFAULT_SCALE: f64 = 0.25;

/// How long a scenario child may live whatever happens: the last resort if
/// the parent's own deadline fails.
const CHILD_ALARM_SECS: u32 = 60;

/// What a child runs; its argument is the part of the scenario name after
/// `:`. Returning `Err` makes `main` return it.
pub use common::Scenario;

/// A group of runs in the parent: it prints its counts and returns the
/// problems found (empty when all is well).
pub type Group = (&'static str, fn(&Plan) -> Vec<String>);

fn main() -> Result<(), String> {
    if let Ok(name) = std::env::var(MARKER) {
        return run_scenario(&name);
    }
    run_groups()
}

fn run_scenario(full_name: &str) -> Result<(), String> {
    common::play(full_name, scenarios(), CHILD_ALARM_SECS)
}

fn scenarios() -> Vec<(&'static str, Scenario)> {
    let mut all = Vec::new();
    all.extend_from_slice(racing::SCENARIOS);
    all.extend_from_slice(fork::SCENARIOS);
    #[cfg(feature = "signal")]
    all.extend_from_slice(storm::SCENARIOS);
    #[cfg(feature = "signal")]
    all.extend_from_slice(crash::SCENARIOS);
    all.extend_from_slice(pipes::SCENARIOS);
    all.extend_from_slice(input::SCENARIOS);
    all
}

fn groups() -> Vec<Group> {
    let mut all = Vec::new();
    all.extend_from_slice(racing::GROUPS);
    all.extend_from_slice(fork::GROUPS);
    #[cfg(feature = "signal")]
    all.extend_from_slice(storm::GROUPS);
    #[cfg(feature = "signal")]
    all.extend_from_slice(crash::GROUPS);
    all.extend_from_slice(pipes::GROUPS);
    all.extend_from_slice(input::GROUPS);
    all
}

/// How many runs, and the randomness behind the random moments.
pub struct Plan {
    pub scale: f64,
    seed: u64,
    /// Distinct streams for groups running side by side.
    streams: AtomicU64,
}

impl Plan {
    /// `full` scaled, at least 1.
    pub fn runs(&self, full: usize) -> usize {
        ((full as f64 * self.scale).round() as usize).max(1)
    }

    /// A random generator of its own for one run or worker.
    pub fn rng(&self) -> Rng {
        let stream = self.streams.fetch_add(1, Ordering::Relaxed);
        Rng::new(self.seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }
}

fn plan() -> Result<Plan, String> {
    let scale = match std::env::var("ATEXIT_STRESS_SCALE") {
        Err(_) => DEFAULT_SCALE,
        Ok(text) if text == "full" => 1.0,
        Ok(text) => match text.parse::<f64>() {
            Ok(scale) if scale > 0.0 && scale.is_finite() => scale,
            _ => {
                return Err(format!(
                "ATEXIT_STRESS_SCALE={text:?}: want `full` or a positive number (1 = full counts)"
            ))
            }
        },
    };
    let seed = match std::env::var("ATEXIT_STRESS_SEED") {
        Ok(text) => text
            .parse()
            .map_err(|_| format!("ATEXIT_STRESS_SEED={text:?}: want an integer"))?,
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |now| now.as_nanos() as u64),
    };
    Ok(Plan {
        scale,
        seed,
        streams: AtomicU64::new(0),
    })
}

fn run_groups() -> Result<(), String> {
    let plan = plan()?;
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let selected: Vec<Group> = groups()
        .into_iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f)))
        .collect();
    println!(
        "stress suite: scale {} (ATEXIT_STRESS_SCALE=full runs the full counts), seed {} \
         (ATEXIT_STRESS_SEED replays it), {} groups",
        plan.scale,
        plan.seed,
        selected.len()
    );
    let started = Instant::now();
    let mut failed = Vec::new();
    for (name, group) in &selected {
        let group_started = Instant::now();
        let problems = group(&plan);
        let elapsed = group_started.elapsed().as_secs_f64();
        if problems.is_empty() {
            println!("  ok: {name} ({elapsed:.2}s)");
        } else {
            println!("  FAILED: {name} ({elapsed:.2}s)");
            for problem in problems.iter().take(8) {
                println!("    {problem}");
            }
            if problems.len() > 8 {
                println!("    ... and {} more", problems.len() - 8);
            }
            failed.push(*name);
        }
    }
    common::summary(selected.len(), &failed, started)
}

/// This binary, as a child running scenario `name` (`name:arg` passes an
/// argument).
pub fn scenario(name: &str) -> Command {
    common::scenario(MARKER, name)
}

/// Runs `count` jobs on two threads (the machine has two cores, and two
/// children at once add the load that races need); results in job order.
pub fn parallel<T: Send>(count: usize, job: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(count));
    thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    break;
                }
                let result = job(index);
                results.lock().unwrap().push((index, result));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).collect()
}

/// One stdout line from a child, also from exit handlers, where stdout may
/// be gone: never panics.
pub fn say(line: impl std::fmt::Display) {
    let _ = writeln!(io::stdout(), "{line}");
}

/// Appends one line to `path` in a single write, so that lines from
/// several processes never mix.
pub fn record(path: &Path, line: &str) {
    let written = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(format!("{line}\n").as_bytes()));
    if let Err(err) = written {
        let _ = writeln!(io::stderr(), "could not record {line:?} in {path:?}: {err}");
    }
}

/// The lines recorded in `path` (none if it does not exist).
pub fn recorded(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .map(|text| text.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A fresh empty directory for one run's files, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("atexit-stress-{}-{tag}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create scratch directory");
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The directory a scenario child was given (`ATEXIT_STRESS_DIR`).
pub fn scratch_dir() -> Result<PathBuf, String> {
    std::env::var_os("ATEXIT_STRESS_DIR")
        .map(PathBuf::from)
        .ok_or_else(|| "ATEXIT_STRESS_DIR is not set".to_owned())
}

/// A small, fast, seedable generator (xorshift64*): random moments must be
/// replayable from the printed seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    /// A duration in `0..max`.
    pub fn duration(&mut self, max: Duration) -> Duration {
        Duration::from_nanos(self.below(max.as_nanos() as u64))
    }
}

/// Waits for a signal, an exit from another thread, or the alarm.
pub fn park_forever() -> ! {
    loop {
        thread::park();
    }
}

/// How `ended` ended, for messages.
pub fn describe(ended: &child::Ended) -> String {
    if ended.hung {
        return "hung (killed at the deadline)".to_owned();
    }
    match (ended.code, ended.signal) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "unknown status".to_owned(),
    }
}

//! Scenario 4, crash consistency: a counter like the one in the docs, whose
//! exit handler saves the count by writing a temporary file and renaming
//! it over the old one, killed at random moments by SIGTERM (handled), by
//! SIGKILL, and by SIGTERM followed closely by SIGKILL (a kill during the
//! save). The saved file must never be torn, must hold the last count the
//! program printed after every SIGTERM, and must be left alone by SIGKILL.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use crate::child::{self, Ended};
use crate::{describe, park_forever, say, Group, Plan, Scenario, Scratch};

pub const SCENARIOS: &[(&str, Scenario)] = &[("counter", counter)];
pub const GROUPS: &[Group] = &[("crash consistency", crash_group)];

const FULL_RUNS: usize = 500;
/// Lines of padding in the saved file: large enough (256 KiB) that a kill
/// can land in the middle of writing it.
const PAD_LINES: usize = 12_000;

/// The count, and whether the exit handler has taken it for saving (the
/// program stops counting then, so the saved value is the last printed).
static COUNT: Mutex<(u64, bool)> = Mutex::new((0, false));

fn state_text(value: u64) -> String {
    let mut text = format!("counter {value}\n");
    let line = format!("{value:020}\n");
    text.reserve(line.len() * PAD_LINES + 32);
    for _ in 0..PAD_LINES {
        text.push_str(&line);
    }
    text.push_str(&format!("end {value}\n"));
    text
}

/// The value in a saved file, or `None` if the file is torn or corrupt.
fn parse_state(text: &str) -> Option<u64> {
    let mut lines = text.lines();
    let value: u64 = lines.next()?.strip_prefix("counter ")?.parse().ok()?;
    let pad = format!("{value:020}");
    for _ in 0..PAD_LINES {
        if lines.next()? != pad {
            return None;
        }
    }
    if lines.next()? != format!("end {value}") || lines.next().is_some() {
        return None;
    }
    Some(value)
}

enum Saved {
    Missing,
    Value(u64),
    Torn,
}

fn load(path: &Path) -> Saved {
    match fs::read_to_string(path) {
        Err(err) if err.kind() == ErrorKind::NotFound => Saved::Missing,
        Err(_) => Saved::Torn,
        Ok(text) => parse_state(&text).map_or(Saved::Torn, Saved::Value),
    }
}

/// The exit handler: stop counting, write the temporary file, rename it.
fn save() {
    let dir = crate::scratch_dir().expect("scratch dir");
    let mut count = COUNT.lock().unwrap_or_else(|p| p.into_inner());
    count.1 = true;
    let value = count.0;
    let tmp = dir.join("state.tmp");
    let result =
        fs::write(&tmp, state_text(value)).and_then(|()| fs::rename(&tmp, dir.join("state")));
    match result {
        Ok(()) => say(format!("SAVED {value}")),
        Err(err) => say(format!("SAVE FAILED {err}")),
    }
}

fn counter(_: &str) -> Result<(), String> {
    let dir = crate::scratch_dir()?;
    let start = match load(&dir.join("state")) {
        Saved::Missing => 0,
        Saved::Value(value) => value,
        Saved::Torn => return Err("the saved state is torn".into()),
    };
    COUNT.lock().unwrap().0 = start;
    atexit::handle_signals().map_err(|err| err.to_string())?;
    atexit::register(save);
    say(format!("START {start}"));
    say("READY");
    loop {
        let mut count = COUNT.lock().unwrap();
        if count.1 {
            drop(count);
            park_forever();
        }
        count.0 += 1;
        say(count.0);
        drop(count);
        thread::sleep(Duration::from_micros(50));
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    Sigterm,
    Sigkill,
    SigtermThenSigkill,
}

#[derive(Default)]
struct Tally {
    runs: [usize; 3],
    torn: usize,
    stale: usize,
    hung: usize,
    bad_death: usize,
    /// SIGTERM then SIGKILL: the new value was saved / the old one kept.
    saved_new: usize,
    kept_old: usize,
    /// A temporary file was left: the SIGKILL landed during the save.
    mid_save: usize,
    problems: Vec<String>,
}

fn one_run(dir: &Path, kill: Ending, rng: &mut crate::Rng, tally: &mut Tally) {
    let state = dir.join("state");
    let tmp = dir.join("state.tmp");
    let _ = fs::remove_file(&tmp);
    let before = match load(&state) {
        Saved::Missing => 0,
        Saved::Value(value) => value,
        Saved::Torn => {
            // Counted when it was found torn; start the chain afresh.
            let _ = fs::remove_file(&state);
            0
        }
    };
    let mut command = crate::scenario("counter");
    command.env("ATEXIT_STRESS_DIR", dir);
    let mut live = child::spawn(command);
    let ready = live.wait_for("READY");
    if ready {
        thread::sleep(rng.duration(Duration::from_millis(8)));
        match kill {
            Ending::Sigterm => {
                live.signal(libc::SIGTERM);
            }
            Ending::Sigkill => {
                live.signal(libc::SIGKILL);
            }
            Ending::SigtermThenSigkill => {
                live.signal(libc::SIGTERM);
                thread::sleep(rng.duration(Duration::from_micros(1500)));
                live.signal(libc::SIGKILL);
            }
        }
    }
    let ended = live.finish();
    let problem = check_run(&ended, ready, kill, before, &state, &tmp, tally);
    if let Some(problem) = problem {
        tally.problems.push(problem);
    }
}

fn check_run(
    ended: &Ended,
    ready: bool,
    kill: Ending,
    before: u64,
    state: &Path,
    tmp: &Path,
    tally: &mut Tally,
) -> Option<String> {
    if ended.hung || !ready {
        tally.hung += usize::from(ended.hung);
        return Some(format!("{} (READY seen: {ready})", describe(ended)));
    }
    let lines = ended.lines();
    if lines.first().copied() != Some(format!("START {before}").as_str()) {
        tally.stale += 1;
        return Some(format!(
            "started from {:?}, saved was {before}",
            lines.first()
        ));
    }
    let last = lines
        .iter()
        .rev()
        .find_map(|line| line.parse::<u64>().ok())
        .unwrap_or(before);
    let after = match load(state) {
        Saved::Value(value) => value,
        Saved::Missing if before == 0 => 0,
        Saved::Missing | Saved::Torn => {
            tally.torn += 1;
            return Some(format!("state torn or gone after {}", describe(ended)));
        }
    };
    let signal = ended.signal;
    let (death_ok, value_ok) = match kill {
        Ending::Sigterm => (
            signal == Some(libc::SIGTERM),
            after == last && lines.contains(&format!("SAVED {last}").as_str()),
        ),
        Ending::Sigkill => (signal == Some(libc::SIGKILL), after == before),
        Ending::SigtermThenSigkill => {
            if after == last && after != before {
                tally.saved_new += 1;
            } else {
                tally.kept_old += 1;
            }
            if tmp.exists() {
                tally.mid_save += 1;
            }
            (
                matches!(signal, Some(libc::SIGKILL | libc::SIGTERM)),
                after == last || (after == before && signal == Some(libc::SIGKILL)),
            )
        }
    };
    if !death_ok {
        tally.bad_death += 1;
    }
    if !value_ok {
        tally.stale += 1;
    }
    (!death_ok || !value_ok).then(|| {
        format!(
            "{}: saved {after}, before {before}, last printed {last}, stderr {:?}",
            describe(ended),
            ended.stderr
        )
    })
}

fn crash_group(plan: &Plan) -> Vec<String> {
    let runs = plan.runs(FULL_RUNS);
    // Two chains of runs side by side, each on its own saved file.
    let tallies = crate::parallel(2, |chain| {
        let scratch = Scratch::new("crash");
        let mut rng = plan.rng();
        let mut tally = Tally::default();
        for run in (chain..runs).step_by(2) {
            let kill = [Ending::Sigterm, Ending::Sigkill, Ending::SigtermThenSigkill][run % 3];
            tally.runs[run % 3] += 1;
            one_run(scratch.path(), kill, &mut rng, &mut tally);
        }
        if let Saved::Value(value) = load(&scratch.path().join("state")) {
            println!("  crash chain {chain}: the count reached {value}");
        }
        tally
    });
    let mut total = Tally::default();
    for tally in tallies {
        for kind in 0..3 {
            total.runs[kind] += tally.runs[kind];
        }
        total.torn += tally.torn;
        total.stale += tally.stale;
        total.hung += tally.hung;
        total.bad_death += tally.bad_death;
        total.saved_new += tally.saved_new;
        total.kept_old += tally.kept_old;
        total.mid_save += tally.mid_save;
        total.problems.extend(tally.problems);
    }
    println!(
        "crash consistency: {runs} runs ({} SIGTERM, {} SIGKILL, {} SIGTERM then SIGKILL), \
         {} torn, {} stale, {} hung, {} wrong death; SIGTERM then SIGKILL: {} saved the new \
         count, {} kept the old one, {} killed during the save",
        total.runs[0],
        total.runs[1],
        total.runs[2],
        total.torn,
        total.stale,
        total.hung,
        total.bad_death,
        total.saved_new,
        total.kept_old,
        total.mid_save
    );
    total.problems
}

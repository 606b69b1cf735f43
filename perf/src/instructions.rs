//! Instruction counts under callgrind (`valgrind --tool=callgrind`): the
//! figures to design against, because unlike times they do not change with
//! the machine or its load.
//!
//! Each child runs at two sizes, and the difference of the two totals over
//! the difference in handlers is the cost per handler: start-up, the loader
//! and the exit machinery cost the same at both sizes and cancel. A
//! `register-only` child registers as `lifecycle` does and then `_exit`s,
//! so the exit run is what `lifecycle` executes beyond it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::thread;

use crate::{fail, median, note, run_child, Plan, Tools};

/// Whose registrations a child makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    CrateFn,
    /// A closure capturing 8 bytes.
    CrateClosure,
    Glibc,
}

/// One child under callgrind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Run {
    subject: Subject,
    /// Ends with `_exit` after registering: no exit run.
    register_only: bool,
    handlers: usize,
    repeat: usize,
}

impl Run {
    /// `valgrind --tool=callgrind` of the child, writing its profile to
    /// `out`; `None` when the subject's program is missing.
    fn command(&self, tools: &Tools, out: &Path) -> Option<Command> {
        let mode = if self.register_only {
            "register-only"
        } else {
            "lifecycle"
        };
        let handlers = self.handlers.to_string();
        let mut out_flag = OsString::from("--callgrind-out-file=");
        out_flag.push(out);
        let mut command = Command::new("valgrind");
        command.args(["--tool=callgrind", "-q"]).arg(out_flag);
        match self.subject {
            Subject::Glibc => command.arg(tools.glibc.as_ref()?).args([mode, &handlers]),
            Subject::CrateFn => command
                .arg(&tools.exe)
                .args(["--child", mode, "global", "fn", &handlers]),
            Subject::CrateClosure => command
                .arg(&tools.exe)
                .args(["--child", mode, "global", "closure", &handlers]),
        };
        Some(command)
    }

    /// The instructions the whole child executed.
    fn total(&self, tools: &Tools, dir: &Path) -> Option<f64> {
        let what = format!("callgrind {self:?}");
        let out = dir.join(format!(
            "callgrind-{:?}-{}-{}-{}.out",
            self.subject, self.register_only, self.handlers, self.repeat
        ));
        let figures = run_child(&what, self.command(tools, &out)?);
        // Counts of a child that skipped its handlers, or ran them when it
        // should not have, would be counts of the wrong work.
        let expected = (!self.register_only).then(|| (self.handlers - 2) as f64);
        if figures.get("ran").copied() != expected {
            fail(&format!(
                "{what}: ran {:?} handlers, {expected:?} expected",
                figures.get("ran")
            ));
        }
        let profile =
            fs::read_to_string(&out).unwrap_or_else(|err| fail(&format!("{what}: {err}")));
        let _ = fs::remove_file(&out);
        let total = profile
            .lines()
            .find_map(|line| line.strip_prefix("totals:"))
            .and_then(|value| value.split_whitespace().next()?.parse().ok());
        Some(total.unwrap_or_else(|| fail(&format!("{what}: no totals line in {out:?}"))))
    }
}

/// Instructions per handler.
#[derive(Clone, Copy, Debug)]
pub struct PerHandler {
    pub register: f64,
    /// Of the exit run.
    pub run: f64,
}

pub struct Counts {
    /// What `valgrind --version` says.
    pub valgrind: String,
    pub sizes: [usize; 2],
    pub repeats: usize,
    /// The widest gap between repeats of any per-handler figure.
    pub spread: f64,
    per_handler: BTreeMap<Subject, PerHandler>,
}

impl Counts {
    pub fn get(&self, subject: Subject) -> Option<PerHandler> {
        self.per_handler.get(&subject).copied()
    }
}

/// All counts; `None`, after one line saying so, without valgrind.
pub fn measure(plan: &Plan, tools: &Tools, dir: &Path) -> Option<Counts> {
    let valgrind = match Command::new("valgrind").arg("--version").output() {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        }
        _ => {
            note("no valgrind: instruction counts skipped");
            return None;
        }
    };
    let sizes = plan.callgrind_sizes;
    let subjects = [Subject::CrateFn, Subject::CrateClosure, Subject::Glibc];
    let mut runs = Vec::new();
    for repeat in 0..plan.callgrind_repeats {
        for subject in subjects {
            for register_only in [false, true] {
                for handlers in sizes {
                    runs.push(Run {
                        subject,
                        register_only,
                        handlers,
                        repeat,
                    });
                }
            }
        }
    }
    let totals = run_all(&runs, tools, dir);

    let mut spread: f64 = 0.0;
    let mut per_handler = BTreeMap::new();
    for subject in subjects {
        // A subject whose program is missing (glibc without cc) has none.
        let Some(repeats) = (0..plan.callgrind_repeats)
            .map(|repeat| per_handler_of(&totals, subject, repeat, sizes))
            .collect::<Option<Vec<PerHandler>>>()
        else {
            continue;
        };
        let registers: Vec<f64> = repeats.iter().map(|each| each.register).collect();
        let runs: Vec<f64> = repeats.iter().map(|each| each.run).collect();
        spread = spread.max(width(&registers)).max(width(&runs));
        per_handler.insert(
            subject,
            PerHandler {
                register: median(&registers),
                run: median(&runs),
            },
        );
    }
    Some(Counts {
        valgrind,
        sizes,
        repeats: plan.callgrind_repeats,
        spread,
        per_handler,
    })
}

/// Every run, on as many threads as there are cores: the count of
/// instructions a child executes does not depend on what else runs.
fn run_all(runs: &[Run], tools: &Tools, dir: &Path) -> BTreeMap<Run, f64> {
    let workers = thread::available_parallelism().map_or(1, usize::from);
    let _ = writeln!(
        io::stderr(),
        "atexit-perf: counting instructions under callgrind, {workers} at a time"
    );
    let next = AtomicUsize::new(0);
    let totals = Mutex::new(BTreeMap::new());
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while let Some(run) = runs.get(next.fetch_add(1, Relaxed)) {
                    if let Some(total) = run.total(tools, dir) {
                        totals.lock().expect("no worker panics").insert(*run, total);
                    }
                }
            });
        }
    });
    totals.into_inner().expect("no worker panics")
}

/// Register and exit-run instructions per handler, from one repeat's
/// totals at the two sizes.
fn per_handler_of(
    totals: &BTreeMap<Run, f64>,
    subject: Subject,
    repeat: usize,
    sizes: [usize; 2],
) -> Option<PerHandler> {
    let growth = |register_only| {
        let at = |handlers| {
            totals
                .get(&Run {
                    subject,
                    register_only,
                    handlers,
                    repeat,
                })
                .copied()
        };
        Some(at(sizes[1])? - at(sizes[0])?)
    };
    let added = (sizes[1] - sizes[0]) as f64;
    let register = growth(true)?;
    Some(PerHandler {
        register: register / added,
        run: (growth(false)? - register) / added,
    })
}

fn width(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    max - min
}

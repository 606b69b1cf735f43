//! Scenario 1, racing exits: 8 threads call `atexit::exit`, 2 call
//! `std::process::exit`, and `main` returns, all released at once. Every
//! handler must run exactly once, on one thread, and the process must end
//! with one of the racers' codes.

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::thread;

use crate::child::{self, Ended};
use crate::{common, describe, say, Group, Plan, Scenario};

pub const SCENARIOS: &[(&str, Scenario)] = &[("racing-exits", racing_exits)];
pub const GROUPS: &[Group] = &[("racing exits", racing_group)];

const FULL_RUNS: usize = 1000;
const ATEXIT_THREADS: i32 = 8;
const STD_THREADS: i32 = 2;
/// Handlers registered by `main` before any racer exists: they run last.
const MAIN_HANDLERS: usize = 4;

/// The codes: `main` returns 0, `atexit::exit` racers 10.., `std` racers 20...
fn is_racer_code(code: i32) -> bool {
    code == 0 || (10..10 + ATEXIT_THREADS).contains(&code) || (20..20 + STD_THREADS).contains(&code)
}

/// Each handler prints its token and the exit code `atexit::reason` gives.
fn token(name: String) -> impl FnOnce() + Send + 'static {
    move || {
        let code = match atexit::reason() {
            Some(atexit::ExitReason::Exit(Some(code))) => code.to_string(),
            other => format!("{other:?}"),
        };
        say(format!("ran {name} {code}"));
    }
}

fn racing_exits(_: &str) -> Result<(), String> {
    for k in 0..MAIN_HANDLERS {
        atexit::register(token(format!("main-{k}")));
    }
    let racers = (ATEXIT_THREADS + STD_THREADS + 1) as usize;
    let barrier = Arc::new(Barrier::new(racers));
    for i in 0..ATEXIT_THREADS {
        let barrier = Arc::clone(&barrier);
        thread::spawn(move || {
            atexit::register(token(format!("atexit-{i}")));
            barrier.wait();
            atexit::exit(10 + i);
        });
    }
    for i in 0..STD_THREADS {
        let barrier = Arc::clone(&barrier);
        thread::spawn(move || {
            atexit::register(token(format!("std-{i}")));
            barrier.wait();
            std::process::exit(20 + i);
        });
    }
    barrier.wait();
    Ok(())
}

/// What one run did wrong, by kind.
#[derive(Default)]
struct Verdict {
    lost: usize,
    doubled: usize,
    hung: bool,
    bad_status: bool,
    misordered: bool,
    problems: Vec<String>,
}

fn check(ended: &Ended) -> Verdict {
    let mut verdict = Verdict {
        hung: ended.hung,
        ..Verdict::default()
    };
    let mut expected: Vec<String> = (0..MAIN_HANDLERS).map(|k| format!("main-{k}")).collect();
    expected.extend((0..ATEXIT_THREADS).map(|i| format!("atexit-{i}")));
    expected.extend((0..STD_THREADS).map(|i| format!("std-{i}")));
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut order = Vec::new();
    for line in ended.lines() {
        let Some(rest) = line.strip_prefix("ran ") else {
            verdict.problems.push(format!("stray stdout line {line:?}"));
            continue;
        };
        let (name, code) = rest.split_once(' ').unwrap_or((rest, ""));
        *seen.entry(name).or_default() += 1;
        order.push(name);
        // Where the C library does not report the status, only an
        // `atexit::exit` winner's code is known to the handlers.
        let unknown_is_right = !common::STATUS_KNOWN
            && code == "Some(Exit(None))"
            && ended
                .code
                .is_some_and(|c| !(10..10 + ATEXIT_THREADS).contains(&c));
        if ended.code.map(|c| c.to_string()).as_deref() != Some(code) && !unknown_is_right {
            verdict.bad_status = true;
            verdict.problems.push(format!(
                "handler {name} saw exit code {code}, the process ended with {}",
                describe(ended)
            ));
        }
    }
    for name in &expected {
        match seen.get(name.as_str()).copied().unwrap_or(0) {
            0 => verdict.lost += 1,
            1 => {}
            _ => verdict.doubled += 1,
        }
    }
    // `main`'s handlers are the oldest: they run last, newest first.
    let tail: Vec<String> = (0..MAIN_HANDLERS)
        .rev()
        .map(|k| format!("main-{k}"))
        .collect();
    if order.len() >= MAIN_HANDLERS && order[order.len() - MAIN_HANDLERS..] != tail[..] {
        verdict.misordered = true;
        verdict
            .problems
            .push(format!("main's handlers out of order: {order:?}"));
    }
    if !ended.hung && !ended.code.is_some_and(is_racer_code) {
        verdict.bad_status = true;
    }
    if !ended.stderr.is_empty() {
        verdict
            .problems
            .push(format!("stderr not empty: {:?}", ended.stderr));
    }
    if verdict.lost + verdict.doubled > 0 || verdict.hung || verdict.bad_status {
        verdict.problems.push(format!(
            "{}: {} lost, {} doubled, stdout {:?}",
            describe(ended),
            verdict.lost,
            verdict.doubled,
            ended.stdout
        ));
    }
    verdict
}

fn racing_group(plan: &Plan) -> Vec<String> {
    let runs = plan.runs(FULL_RUNS);
    let results = crate::parallel(runs, |_| {
        let ended = child::run(crate::scenario("racing-exits"));
        let winner = match ended.code {
            Some(0) => "main",
            Some(code) if (10..20).contains(&code) => "atexit::exit",
            Some(code) if (20..30).contains(&code) => "std::process::exit",
            _ => "none",
        };
        (check(&ended), winner)
    });
    let (mut lost, mut doubled, mut hung, mut bad_status, mut misordered) = (0, 0, 0, 0, 0);
    let mut winners: BTreeMap<&str, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for (verdict, winner) in results {
        lost += verdict.lost;
        doubled += verdict.doubled;
        hung += usize::from(verdict.hung);
        bad_status += usize::from(verdict.bad_status);
        misordered += usize::from(verdict.misordered);
        *winners.entry(winner).or_default() += 1;
        problems.extend(verdict.problems);
    }
    let winners: Vec<String> = winners
        .iter()
        .map(|(winner, count)| format!("{winner} {count}"))
        .collect();
    println!(
        "racing exits: {runs} runs, {lost} lost, {doubled} doubled, {hung} hung, \
         {bad_status} bad status, {misordered} misordered (exit won by: {})",
        winners.join(", ")
    );
    problems
}

//! Scenario 3, signal storms: after `handle_signals`, 20 SIGTERMs and
//! SIGINTs sent 1 ms apart. What is promised: each handler runs at most
//! once, in order (newest first); the run may be cut short by a later
//! signal, never resumed; the process dies of one of the signals sent.

use std::thread;
use std::time::Duration;

use crate::child::{self, Ended};
use crate::{describe, park_forever, say, Group, Plan, Scenario};

pub const SCENARIOS: &[(&str, Scenario)] = &[("storm", storm)];
pub const GROUPS: &[Group] = &[("signal storms", storm_group)];

const FULL_RUNS: usize = 100;
const SIGNALS: usize = 20;
const HANDLERS: usize = 5;

/// Each handler prints its number and then takes `arg` milliseconds, so
/// that in some runs the storm arrives while handlers are running.
fn storm(arg: &str) -> Result<(), String> {
    let pause = Duration::from_millis(arg.parse().map_err(|_| format!("bad pause {arg:?}"))?);
    atexit::handle_signals().map_err(|err| err.to_string())?;
    for k in 0..HANDLERS {
        atexit::register(move || {
            say(format!("ran {k}"));
            thread::sleep(pause);
        });
    }
    say("READY");
    park_forever()
}

#[derive(Default)]
struct Verdict {
    doubled: bool,
    out_of_order: bool,
    hung: bool,
    bad_death: bool,
    complete: bool,
    problems: Vec<String>,
}

fn check(ended: &Ended) -> Verdict {
    let mut verdict = Verdict {
        hung: ended.hung,
        ..Verdict::default()
    };
    let ran: Vec<&str> = ended
        .lines()
        .into_iter()
        .filter_map(|line| line.strip_prefix("ran "))
        .collect();
    let expected: Vec<String> = (0..HANDLERS).rev().map(|k| k.to_string()).collect();
    let mut sorted = ran.clone();
    sorted.sort_unstable();
    sorted.dedup();
    verdict.doubled = sorted.len() != ran.len();
    // What ran is a prefix of the full run order.
    verdict.out_of_order =
        ran.len() > expected.len() || ran.iter().zip(&expected).any(|(a, b)| a != b);
    verdict.complete = ran.len() == HANDLERS;
    verdict.bad_death = !matches!(ended.signal, Some(libc::SIGTERM | libc::SIGINT)) || ended.hung;
    if verdict.doubled || verdict.out_of_order || verdict.bad_death || !ended.stderr.is_empty() {
        verdict.problems.push(format!(
            "{}: handlers ran {ran:?}, stderr {:?}",
            describe(ended),
            ended.stderr
        ));
    }
    verdict
}

fn storm_group(plan: &Plan) -> Vec<String> {
    let runs = plan.runs(FULL_RUNS);
    let results = crate::parallel(runs, |run| {
        let pause = ["0", "1", "3"][run % 3];
        let mut live = child::spawn(crate::scenario(&format!("storm:{pause}")));
        if !live.wait_for("READY") {
            let ended = live.finish();
            let mut verdict = check(&ended);
            verdict
                .problems
                .push(format!("no READY: {}", describe(&ended)));
            return verdict;
        }
        for n in 0..SIGNALS {
            let signal = if n % 2 == 0 {
                libc::SIGTERM
            } else {
                libc::SIGINT
            };
            if !live.signal(signal) {
                break;
            }
            thread::sleep(Duration::from_millis(1));
        }
        check(&live.finish())
    });
    let (mut doubled, mut out_of_order, mut hung, mut bad_death, mut complete) = (0, 0, 0, 0, 0);
    let mut problems = Vec::new();
    for verdict in results {
        doubled += usize::from(verdict.doubled);
        out_of_order += usize::from(verdict.out_of_order);
        hung += usize::from(verdict.hung);
        bad_death += usize::from(verdict.bad_death);
        complete += usize::from(verdict.complete);
        problems.extend(verdict.problems);
    }
    if complete == 0 {
        problems.push("no run ran all its handlers: are signals handled at all?".into());
    }
    println!(
        "signal storms: {runs} runs of {SIGNALS} SIGTERM/SIGINT 1 ms apart, {doubled} doubled, \
         {out_of_order} out of order, {hung} hung, {bad_death} not killed by a sent signal \
         ({complete} ran all {HANDLERS} handlers, {} were cut short by a later signal)",
        runs - complete
    );
    problems
}

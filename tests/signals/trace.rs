//! `ATEXIT_TRACE=1`: a stderr line per hook of the exit run and the run's
//! total, on a normal exit, a handled SIGTERM, in a forked child and when
//! the deadline cuts the run off; nothing at all without the variable.

use std::process::Command;
use std::thread;
use std::time::Duration;

use atexit::{Hook, InChild};

use crate::common::{self, Outcome};
use crate::control::{described, fork_child_exiting_7, hook_at, site_line};
use crate::{child, say, Scenario, Test};

pub const SCENARIOS: &[(&str, Scenario)] = &[
    ("three_hooks", three_hooks),
    ("fork_skip", fork_skip),
    #[cfg(feature = "signal")]
    ("exit_in_hook", exit_in_hook),
];

pub const TESTS: &[Test] = &[
    ("trace_normal_exit", || {
        let outcome = common::run(traced(child("three_hooks:return")));
        check_three_hooks(&outcome, "", &normal_exit_reason(0));
        assert_eq!(outcome.code, Some(0), "{outcome:?}");
    }),
    ("trace_unset_prints_nothing", || untraced(None)),
    ("trace_0_prints_nothing", || untraced(Some("0"))),
    #[cfg(feature = "signal")]
    ("trace_handled_sigterm", || {
        let outcome = common::signalled(traced(child("three_hooks:signal")), libc::SIGTERM);
        check_three_hooks(&outcome, "READY\n", "Signal(15)");
        assert_eq!(outcome.signal, Some(libc::SIGTERM), "{outcome:?}");
    }),
    #[cfg(feature = "signal")]
    (
        "trace_exit_in_hook_after_sigterm",
        trace_exit_in_hook_after_sigterm,
    ),
    ("trace_forked_child_skips", trace_forked_child_skips),
    ("trace_deadline_cut_off", trace_deadline_cut_off),
];

const SLEEP: Duration = Duration::from_millis(100);

/// `command` with the trace on.
fn traced(mut command: Command) -> Command {
    command.env("ATEXIT_TRACE", "1");
    command
}

/// The reason a trace shows for a normal exit with `code`.
fn normal_exit_reason(code: i32) -> String {
    if common::STATUS_KNOWN {
        format!("Exit(Some({code}))")
    } else {
        "Exit(None)".to_owned()
    }
}

/// Matches `line` against `pattern`, in which `{took}` stands for one
/// duration as the trace prints it (`Duration`'s `Debug`, three decimals);
/// returns that duration.
fn took(line: &str, pattern: &str) -> Duration {
    let (before, after) = pattern.split_once("{took}").expect("{took} in pattern");
    let text = line
        .strip_prefix(before)
        .and_then(|rest| rest.strip_suffix(after))
        .unwrap_or_else(|| panic!("{line:?} does not match {pattern:?}"));
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or_else(|| panic!("no unit in {text:?}"));
    let (number, unit) = text.split_at(unit_at);
    let (whole, decimals) = number.split_once('.').unwrap_or(("", ""));
    assert!(
        !whole.is_empty() && decimals.len() == 3,
        "three decimals: {text:?}"
    );
    let value: f64 = number.parse().unwrap_or_else(|_| panic!("{text:?}"));
    let scale = match unit {
        "s" => 1.0,
        "ms" => 1e-3,
        "µs" => 1e-6,
        "ns" => 1e-9,
        _ => panic!("unit {unit:?} in {text:?}"),
    };
    Duration::from_secs_f64(value * scale)
}

/// Three hooks, oldest first: `flush-db` (returns), one that panics, one
/// that sleeps 100 ms; the run starts by `how` (`return` or `signal`).
fn three_hooks(how: &str) -> Result<(), String> {
    let named = hook_at(Some("flush-db"), || say("flush-db ran"));
    let panics = hook_at(None, || panic!("disk full"));
    let sleeps = hook_at(None, || thread::sleep(SLEEP));
    say(format_args!("sites {named} {panics} {sleeps}"));
    match how {
        "return" => Ok(()),
        #[cfg(feature = "signal")]
        "signal" => crate::handle_signals_and_wait(),
        other => panic!("unknown ending {other:?}"),
    }
}

/// The three sites `three_hooks` printed first.
fn three_sites(outcome: &Outcome) -> [String; 3] {
    let first = outcome.stdout.lines().next().unwrap_or_default();
    let sites: Vec<String> = first
        .strip_prefix("sites ")
        .unwrap_or_else(|| panic!("{outcome:?}"))
        .split(' ')
        .map(str::to_owned)
        .collect();
    sites.try_into().unwrap_or_else(|_| panic!("{outcome:?}"))
}

fn check_three_hooks(outcome: &Outcome, ready: &str, reason: &str) {
    let [named, panics, sleeps] = three_sites(outcome);
    assert_eq!(
        outcome.stdout,
        format!("sites {named} {panics} {sleeps}\n{ready}flush-db ran\n"),
        "{outcome:?}"
    );
    let panics = described(None, &panics);
    let lines = outcome.stderr_without_panics();
    assert_eq!(lines.len(), 5, "{outcome:?}");
    let slept = took(
        &lines[0],
        &format!("atexit: trace: {} took {{took}}", described(None, &sleeps)),
    );
    assert!(
        slept >= SLEEP,
        "{slept:?} for a {SLEEP:?} sleep: {outcome:?}"
    );
    assert_eq!(
        lines[1],
        format!("atexit: {panics} panicked"),
        "{outcome:?}"
    );
    took(
        &lines[2],
        &format!("atexit: trace: {panics} panicked after {{took}}"),
    );
    let flushed = took(
        &lines[3],
        &format!(
            "atexit: trace: {} took {{took}}",
            described(Some("flush-db"), &named)
        ),
    );
    assert!(flushed < SLEEP, "{flushed:?}: {outcome:?}");
    let total = took(
        &lines[4],
        &format!("atexit: trace: exit run of 3 handlers took {{took}} (reason: {reason})"),
    );
    assert!(total >= slept, "{total:?} < {slept:?}: {outcome:?}");
    assert_eq!(outcome.panic_messages().len(), 1, "{outcome:?}");
}

/// Without the variable (or with `0`) the same run prints only the panic.
fn untraced(value: Option<&str>) {
    let mut command = child("three_hooks:return");
    if let Some(value) = value {
        command.env("ATEXIT_TRACE", value);
    }
    let outcome = common::run(command);
    let [_, panics, _] = three_sites(&outcome);
    assert_eq!(
        outcome.stderr_without_panics(),
        [format!("atexit: {} panicked", described(None, &panics))],
        "{outcome:?}"
    );
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
}

/// An `InChild::Skip` hook and a plain one, then a fork: the child exits
/// with 7 (its trace shows the skip), the parent waits and returns.
fn fork_skip(_: &str) -> Result<(), String> {
    let plain = hook_at(None, || say("plain ran"));
    let skip = parent_only_hook();
    say(format_args!("sites {plain} {skip}"));
    say(format_args!("forked child {}", fork_child_exiting_7()));
    Ok(())
}

/// Registers `parent-only` with `InChild::Skip`; returns its site.
#[track_caller]
fn parent_only_hook() -> String {
    let site = std::panic::Location::caller().to_string();
    Hook::new(|| say("parent-only ran"))
        .name("parent-only")
        .in_child(InChild::Skip)
        .register();
    site
}

fn trace_forked_child_skips() {
    let outcome = common::run(traced(child("fork_skip")));
    let first = outcome.stdout.lines().next().unwrap_or_default();
    let sites = first.strip_prefix("sites ").unwrap_or_default();
    let (plain, skip) = sites
        .split_once(' ')
        .unwrap_or_else(|| panic!("{outcome:?}"));
    assert_eq!(
        outcome.stdout,
        format!("{first}\nplain ran\nforked child exited with 7\nparent-only ran\nplain ran\n"),
        "{outcome:?}"
    );
    let plain_line = format!("atexit: trace: {} took {{took}}", described(None, plain));
    let skip = described(Some("parent-only"), skip);
    let lines = outcome.stderr_without_panics();
    assert_eq!(lines.len(), 6, "{outcome:?}");
    // The child: its own run, with its own reason.
    assert_eq!(
        lines[0],
        format!("atexit: trace: {skip} skipped (InChild::Skip in a forked child)"),
        "{outcome:?}"
    );
    took(&lines[1], &plain_line);
    took(
        &lines[2],
        &format!(
            "atexit: trace: exit run of 2 handlers took {{took}} (reason: {})",
            normal_exit_reason(7)
        ),
    );
    // The parent runs both.
    took(&lines[3], &format!("atexit: trace: {skip} took {{took}}"));
    took(&lines[4], &plain_line);
    took(
        &lines[5],
        &format!(
            "atexit: trace: exit run of 2 handlers took {{took}} (reason: {})",
            normal_exit_reason(0)
        ),
    );
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
}

/// The deadline cuts a traced run off: the hook that finished has its
/// line, the deadline's line names the one cut off, and the trace says how
/// long the run went on instead of a total.
fn trace_deadline_cut_off() {
    let outcome = common::run(traced(child("slow_hook:exit3")));
    let site = site_line(&outcome);
    let lines = outcome.stderr_without_panics();
    assert_eq!(lines.len(), 3, "{outcome:?}");
    assert!(
        lines[0].starts_with("atexit: trace: exit handler registered at tests/signals/control.rs:")
            && lines[0].contains(" took "),
        "{outcome:?}"
    );
    assert_eq!(
        lines[1],
        format!(
            "atexit: exit deadline of {:?} exceeded while running {}; \
             skipping the remaining handlers",
            crate::control::BUDGET,
            described(Some("slow-flush"), &site)
        ),
        "{outcome:?}"
    );
    let ran = took(
        &lines[2],
        &format!(
            "atexit: trace: exit run cut off by the deadline after {{took}}, \
             1 handler finished (reason: {})",
            normal_exit_reason(3)
        ),
    );
    assert!(ran >= crate::control::BUDGET, "{ran:?}: {outcome:?}");
    assert_eq!(outcome.code, common::deadline_status(3), "{outcome:?}");
}

/// A handled SIGTERM whose newest hook calls `atexit::exit(9)`: the older
/// hook still runs and is traced, the exiting one has no line (it never
/// returns), and the total names both reasons.
#[cfg(feature = "signal")]
fn exit_in_hook(_: &str) -> Result<(), String> {
    let older = hook_at(None, || say("older ran"));
    atexit::register(|| atexit::exit(9));
    say(format_args!("site {older}"));
    atexit::handle_signals().expect("handle_signals");
    crate::ready();
    crate::wait_forever()
}

#[cfg(feature = "signal")]
fn trace_exit_in_hook_after_sigterm() {
    let outcome = common::signalled(traced(child("exit_in_hook")), libc::SIGTERM);
    let older = outcome
        .stdout
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("site "))
        .unwrap_or_else(|| panic!("{outcome:?}"))
        .to_owned();
    assert_eq!(
        outcome.stdout,
        format!("site {older}\nREADY\nolder ran\n"),
        "{outcome:?}"
    );
    let lines = outcome.stderr_without_panics();
    assert_eq!(lines.len(), 2, "{outcome:?}");
    took(
        &lines[0],
        &format!("atexit: trace: {} took {{took}}", described(None, &older)),
    );
    took(
        &lines[1],
        "atexit: trace: exit run of 1 handler took {took} \
         (reason: Signal(15), then Exit(Some(9)))",
    );
    assert_eq!(
        (outcome.code, outcome.signal),
        (Some(9), None),
        "{outcome:?}"
    );
}

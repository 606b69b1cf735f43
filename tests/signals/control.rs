//! Control of the exit run: `Hook` names in reports, the fork policy,
//! `set_deadline`, `reason()` on every path, `set_failure_code`.

use std::panic::Location;
use std::time::{Duration, Instant};

use atexit::{Hook, InChild};

use crate::common::{self, Outcome};
use crate::{child, hang, say, Scenario, Test};

pub const SCENARIOS: &[(&str, Scenario)] = &[
    ("named_hook_panics", named_hook_panics),
    ("fork_policy", fork_policy),
    ("slow_hook", slow_hook),
    ("quick_hooks_with_deadline", quick_hooks_with_deadline),
    ("reason", reason),
    ("failure_code", failure_code),
];

pub const TESTS: &[Test] = &[
    ("hook_name_in_panic_report", hook_name_in_panic_report),
    ("fork_child_skips_skip_hooks", fork_child_skips_skip_hooks),
    ("deadline_names_hook_keeps_exit_code", || {
        deadline_cuts_off("exit3", Some("slow-flush"), common::deadline_status(3))
    }),
    ("deadline_names_site_keeps_status_0", || {
        deadline_cuts_off("return", None, common::deadline_status(0))
    }),
    (
        "deadline_in_time_changes_nothing",
        deadline_in_time_changes_nothing,
    ),
    ("reason_none_outside_and_in_run_now", || {
        reason_is("return", &common::exit_reason(0), Some(0))
    }),
    ("reason_process_exit_4", || {
        reason_is("exit4", &common::exit_reason(4), Some(4))
    }),
    ("reason_atexit_exit_5", || {
        reason_is("atexit_exit5", "Some(Exit(Some(5)))", Some(5))
    }),
    ("reason_panic_in_main", || {
        reason_is("panic", &common::exit_reason(101), Some(101))
    }),
    ("reason_main_returns_err", || {
        reason_is("err", &common::exit_reason(1), Some(1))
    }),
    ("failure_code_turns_0_into_70", || {
        // Where the C library does not report the status, a return from
        // `main` has none, and so nothing to turn into 70.
        failure_code_gives("70:return", Some(if common::STATUS_KNOWN { 70 } else { 0 }))
    }),
    ("failure_code_turns_atexit_exit_0_into_70", || {
        failure_code_gives("70:atexit_exit0", Some(70))
    }),
    ("failure_code_keeps_exit_3", || {
        failure_code_gives("70:exit3", Some(3))
    }),
    ("failure_code_default_keeps_0", || {
        failure_code_gives("none:return", Some(0))
    }),
    ("failure_code_needs_a_failure", || {
        failure_code_gives("70:no_failure", Some(0))
    }),
    #[cfg(feature = "signal")]
    ("deadline_names_hook_keeps_signal", || {
        deadline_cuts_off("signal", Some("slow-flush"), None)
    }),
    #[cfg(feature = "signal")]
    ("reason_handled_sigterm", reason_handled_sigterm),
    #[cfg(feature = "signal")]
    (
        "failure_code_keeps_signal_death",
        failure_code_keeps_signal_death,
    ),
];

/// Registers a hook named `name` (or unnamed) and returns its registration
/// site as reports print it: `Hook::register` records this function's
/// caller too, since both track the caller.
#[track_caller]
pub fn hook_at(name: Option<&'static str>, f: impl FnOnce() + Send + 'static) -> String {
    let site = Location::caller().to_string();
    match name {
        Some(name) => Hook::new(f).name(name).register(),
        None => Hook::new(f).register(),
    };
    site
}

/// How a report names a hook.
pub fn described(name: Option<&str>, site: &str) -> String {
    match name {
        Some(name) => format!("exit handler `{name}` (registered at {site})"),
        None => format!("exit handler registered at {site}"),
    }
}

/// The child's first stdout line is `site FILE:LINE:COL`; returns the site.
pub fn site_line(outcome: &Outcome) -> String {
    let first = outcome.stdout.lines().next().unwrap_or_default();
    let site = first
        .strip_prefix("site ")
        .unwrap_or_else(|| panic!("{outcome:?}"));
    assert!(site.starts_with("tests/signals/control.rs:"), "{outcome:?}");
    site.to_owned()
}

fn named_hook_panics(_: &str) -> Result<(), String> {
    let site = hook_at(Some("flush-db"), || panic!("disk full"));
    atexit::register(|| say("newer handler ran"));
    say(format_args!("site {site}"));
    Ok(())
}

fn hook_name_in_panic_report() {
    let outcome = common::run(child("named_hook_panics"));
    let site = site_line(&outcome);
    assert_eq!(
        outcome.stdout,
        format!("site {site}\nnewer handler ran\n"),
        "{outcome:?}"
    );
    assert_eq!(
        outcome.stderr_without_panics(),
        [format!(
            "atexit: {} panicked",
            described(Some("flush-db"), &site)
        )],
        "{outcome:?}"
    );
    let messages: Vec<String> = outcome
        .panic_messages()
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert_eq!(messages, ["disk full"], "{outcome:?}");
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
}

/// Forks a child that ends with `std::process::exit(7)` (running, or not,
/// what it inherited) and says how it ended. Call it while this process is
/// single-threaded.
pub fn fork_child_exiting_7() -> String {
    // SAFETY: callers are single-threaded here, so the forked child
    // inherits no lock held by another thread.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        std::process::exit(7);
    }
    assert!(pid > 0, "fork failed");
    wait_child(pid)
}

/// Waits for the forked child `pid`; says how it ended.
pub fn wait_child(pid: libc::pid_t) -> String {
    let mut status = 0;
    // SAFETY: waitpid(2) on our own child, with a valid status pointer.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid, "waitpid");
    if libc::WIFEXITED(status) {
        format!("exited with {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("ended with raw status {status}")
    }
}

/// Three hooks (default policy, `InChild::Run`, `InChild::Skip`), then a
/// fork: the forked child exits with 7, the parent waits and returns.
fn fork_policy(_: &str) -> Result<(), String> {
    let parent = std::process::id();
    let hook = move |name: &'static str| {
        move || {
            let who = if std::process::id() == parent {
                "parent"
            } else {
                "forked child"
            };
            say(format_args!("{who}: {name} ran"));
        }
    };
    atexit::register(hook("plain"));
    Hook::new(hook("run-hook"))
        .in_child(InChild::Run)
        .register();
    Hook::new(hook("skip-hook"))
        .in_child(InChild::Skip)
        .register();
    say(format_args!("forked child {}", fork_child_exiting_7()));
    Ok(())
}

fn fork_child_skips_skip_hooks() {
    let outcome = common::run(child("fork_policy"));
    assert_eq!(
        outcome.stdout,
        "forked child: run-hook ran\n\
         forked child: plain ran\n\
         forked child exited with 7\n\
         parent: skip-hook ran\n\
         parent: run-hook ran\n\
         parent: plain ran\n",
        "{outcome:?}"
    );
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
}

pub const BUDGET: Duration = Duration::from_millis(100);

/// A hook that hangs between a newer one (runs) and an older one (must be
/// skipped); the run ends by `how`: `exit3`, `return` (slow hook unnamed)
/// or `signal` (a handled SIGTERM).
fn slow_hook(how: &str) -> Result<(), String> {
    atexit::set_deadline(BUDGET);
    atexit::register(|| say("older handler ran"));
    let name = (how != "return").then_some("slow-flush");
    let site = hook_at(name, || {
        say("slow hook started");
        hang();
    });
    atexit::register(|| say("newer handler ran"));
    say(format_args!("site {site}"));
    match how {
        "exit3" => std::process::exit(3),
        "return" => Ok(()),
        #[cfg(feature = "signal")]
        "signal" => crate::handle_signals_and_wait(),
        other => panic!("unknown ending {other:?}"),
    }
}

fn deadline_cuts_off(how: &str, name: Option<&str>, code: Option<i32>) {
    let command = child(&format!("slow_hook:{how}"));
    let outcome = if code.is_some() {
        common::run(command)
    } else {
        let running = common::start(command);
        running.signal(libc::SIGTERM);
        running.finish()
    };
    let site = site_line(&outcome);
    let ready = if code.is_some() { "" } else { "READY\n" };
    assert_eq!(
        outcome.stdout,
        format!("site {site}\n{ready}newer handler ran\nslow hook started\n"),
        "{outcome:?}"
    );
    assert_eq!(
        outcome.stderr,
        format!(
            "atexit: exit deadline of {BUDGET:?} exceeded while running {}; \
             skipping the remaining handlers\n",
            described(name, &site)
        ),
        "{outcome:?}"
    );
    assert_eq!(outcome.code, code, "{outcome:?}");
    let signal = code.is_none().then_some(libc::SIGTERM);
    assert_eq!(outcome.signal, signal, "{outcome:?}");
}

/// A generous budget and quick hooks: every hook runs, the exit code stays,
/// and the watchdog does not hold the exit up.
fn quick_hooks_with_deadline(_: &str) -> Result<(), String> {
    atexit::set_deadline(Duration::from_secs(10));
    atexit::register(|| say("first ran"));
    atexit::register(|| say("second ran"));
    std::process::exit(3)
}

fn deadline_in_time_changes_nothing() {
    let started = Instant::now();
    let outcome = common::run(child("quick_hooks_with_deadline"));
    assert!(started.elapsed() < Duration::from_secs(5), "{outcome:?}");
    assert_eq!(outcome.stdout, "second ran\nfirst ran\n", "{outcome:?}");
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.code, Some(3), "{outcome:?}");
}

fn say_reason(when: &str) {
    say(format_args!(
        "{when}: reason {:?}, exiting {}",
        atexit::reason(),
        atexit::is_exiting()
    ));
}

/// Reports `reason()` in `main`, during `run_now`, and in a handler of the
/// exit run that `how` starts.
fn reason(how: &str) -> Result<(), String> {
    say_reason("main");
    atexit::register(|| say_reason("run_now"));
    atexit::run_now().map_err(|err| err.to_string())?;
    atexit::register(|| say_reason("exit run"));
    match how {
        "return" => Ok(()),
        "exit4" => std::process::exit(4),
        "atexit_exit5" => atexit::exit(5),
        "panic" => panic!("main failed"),
        "err" => Err("main failed".to_owned()),
        #[cfg(feature = "signal")]
        "signal" => crate::handle_signals_and_wait(),
        other => panic!("unknown ending {other:?}"),
    }
}

fn reason_lines(exit_run: &str, ready: &str) -> String {
    format!(
        "main: reason None, exiting false\n\
         run_now: reason None, exiting false\n\
         {ready}exit run: reason {exit_run}, exiting true\n"
    )
}

fn reason_is(how: &str, expected: &str, code: Option<i32>) {
    let outcome = common::run(child(&format!("reason:{how}")));
    assert_eq!(outcome.stdout, reason_lines(expected, ""), "{outcome:?}");
    let stderr: &[&str] = match how {
        "err" => &["Error: \"main failed\""],
        _ => &[],
    };
    assert_eq!(outcome.stderr_without_panics(), stderr, "{outcome:?}");
    let panics = outcome.panic_messages().len();
    assert_eq!(panics, usize::from(how == "panic"), "{outcome:?}");
    assert_eq!(outcome.code, code, "{outcome:?}");
}

#[cfg(feature = "signal")]
fn reason_handled_sigterm() {
    let outcome = common::signalled(child("reason:signal"), libc::SIGTERM);
    assert_eq!(
        outcome.stdout,
        reason_lines("Some(Signal(15))", "READY\n"),
        "{outcome:?}"
    );
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.signal, Some(libc::SIGTERM), "{outcome:?}");
}

/// `failure_code:SETTING:ENDING`: SETTING is `70` or `none`; ENDING is
/// `return`, `exit3`, `atexit_exit0`, `no_failure` (returns, no handler
/// fails) or `signal`.
fn failure_code(arg: &str) -> Result<(), String> {
    let (setting, ending) = arg.split_once(':').expect("SETTING:ENDING");
    if setting == "70" {
        atexit::set_failure_code(Some(70));
    }
    atexit::register(|| say("older handler ran"));
    let site = if ending == "no_failure" {
        hook_at(None, || say("handler did not fail"))
    } else {
        hook_at(None, || panic!("handler failed"))
    };
    say(format_args!("site {site}"));
    match ending {
        "return" | "no_failure" => Ok(()),
        "exit3" => std::process::exit(3),
        "atexit_exit0" => atexit::exit(0),
        #[cfg(feature = "signal")]
        "signal" => crate::handle_signals_and_wait(),
        other => panic!("unknown ending {other:?}"),
    }
}

fn check_failure_run(outcome: &Outcome, ready: &str, failed: bool) {
    let site = site_line(outcome);
    let middle = if failed { "" } else { "handler did not fail\n" };
    assert_eq!(
        outcome.stdout,
        format!("site {site}\n{ready}{middle}older handler ran\n"),
        "{outcome:?}"
    );
    let report: Vec<String> = if failed {
        vec![format!("atexit: {} panicked", described(None, &site))]
    } else {
        Vec::new()
    };
    assert_eq!(outcome.stderr_without_panics(), report, "{outcome:?}");
}

fn failure_code_gives(arg: &str, code: Option<i32>) {
    let outcome = common::run(child(&format!("failure_code:{arg}")));
    check_failure_run(&outcome, "", !arg.ends_with("no_failure"));
    assert_eq!(outcome.code, code, "{outcome:?}");
}

#[cfg(feature = "signal")]
fn failure_code_keeps_signal_death() {
    let outcome = common::signalled(child("failure_code:70:signal"), libc::SIGTERM);
    check_failure_run(&outcome, "READY\n", true);
    assert_eq!(outcome.signal, Some(libc::SIGTERM), "{outcome:?}");
}

//! Scenario 8, bad input: signal numbers that must be refused, extreme
//! deadlines, exit codes outside 0..=255, a million handlers, and panics
//! with payloads that are not strings. Each gives a clear error or its
//! documented result, never a hang, an abort or a lost handler.

use std::panic::panic_any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::child;
use crate::{common, describe, say, Group, Plan, Scenario};

pub const SCENARIOS: &[(&str, Scenario)] = &[
    #[cfg(feature = "signal")]
    ("bad-signals", bad_signals),
    ("deadline", deadline),
    ("exit-code", exit_code),
    ("failure-code", failure_code),
    ("million", million),
    ("panic-payloads", panic_payloads),
];
pub const GROUPS: &[Group] = &[("bad input", bad_input_group)];

// ---- signal numbers ----

/// Numbers `handle_signals_for` must refuse, each with the reason the
/// error gives when the reason is worth pinning down.
#[cfg(feature = "signal")]
fn bad_signal_numbers() -> Vec<(i32, Option<&'static str>)> {
    let mut numbers = vec![
        (0, Some("signal numbers start at 1")),
        (-1, Some("signal numbers start at 1")),
        (9999, Some("there is no signal with that number on this system")),
        (libc::SIGKILL, Some("it cannot be caught")),
        (libc::SIGSTOP, Some("it cannot be caught")),
        (
            libc::SIGSEGV,
            Some("a fault signal means the process state may be corrupt, so no handler should run on it"),
        ),
        (libc::SIGBUS, None),
        (libc::SIGILL, None),
        (libc::SIGFPE, None),
        (libc::SIGABRT, None),
        (libc::SIGCHLD, None),
        (libc::SIGWINCH, None),
    ];
    if cfg!(target_os = "linux") {
        // Between the classic signals and SIGRTMIN: the C library's own.
        numbers.push((32, None));
    }
    numbers
}

#[cfg(feature = "signal")]
fn sigusr1_is_default() -> bool {
    // SAFETY: sigaction with a null new action only reads the current one
    // into `old`, a zeroed, valid `sigaction`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGUSR1, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_DFL
    }
}

#[cfg(feature = "signal")]
fn bad_signals(_: &str) -> Result<(), String> {
    for (signal, _) in bad_signal_numbers() {
        match atexit::handle_signals_for(&[signal]) {
            Err(err) => say(format!("refused {signal}: {err}")),
            Ok(()) => say(format!("ACCEPTED {signal}")),
        }
    }
    // A refused list changes nothing, not even its good members.
    let mixed = atexit::handle_signals_for(&[libc::SIGUSR1, libc::SIGKILL]);
    say(format!(
        "mixed refused {}, SIGUSR1 untouched {}",
        mixed.is_err(),
        sigusr1_is_default()
    ));
    say(format!("empty {:?}", atexit::handle_signals_for(&[])));
    atexit::handle_signals().map_err(|err| err.to_string())?;
    atexit::register(|| say("handler ran"));
    say("READY");
    crate::park_forever()
}

#[cfg(feature = "signal")]
fn check_bad_signals() -> Result<String, String> {
    let mut live = child::spawn(crate::scenario("bad-signals"));
    let ready = live.wait_for("READY");
    if ready {
        live.signal(libc::SIGTERM);
    }
    let ended = live.finish();
    let lines = ended.lines();
    let mut wrong = Vec::new();
    let numbers = bad_signal_numbers();
    for (index, (signal, reason)) in numbers.iter().enumerate() {
        let line = lines.get(index).copied().unwrap_or_default();
        let prefix = format!("refused {signal}: refused to handle signal {signal} (");
        let reason_ok = match reason {
            Some(reason) => line.ends_with(&format!("): {reason}; no signal handling was changed")),
            None => line.ends_with("; no signal handling was changed"),
        };
        if !line.starts_with(&prefix) || !reason_ok {
            wrong.push(format!("signal {signal}: {line:?}"));
        }
    }
    let rest = &lines[numbers.len().min(lines.len())..];
    let want_rest = [
        "mixed refused true, SIGUSR1 untouched true",
        "empty Ok(())",
        "READY",
        "handler ran",
    ];
    if rest != want_rest {
        wrong.push(format!("then {rest:?}, want {want_rest:?}"));
    }
    if ended.signal != Some(libc::SIGTERM) || !ended.stderr.is_empty() {
        wrong.push(format!("{}, stderr {:?}", describe(&ended), ended.stderr));
    }
    verdict("signal numbers", numbers.len() + 2, wrong)
}

// ---- deadlines ----

/// `arg`: which budget. The newest handler takes `SLOW`; exit code 7.
fn deadline(arg: &str) -> Result<(), String> {
    match arg {
        "zero" => atexit::set_deadline(Duration::ZERO),
        "max" => atexit::set_deadline(Duration::MAX),
        "secs-max" => atexit::set_deadline(Duration::from_secs(u64::MAX)),
        "zero-then-max" => {
            atexit::set_deadline(Duration::ZERO);
            atexit::set_deadline(Duration::MAX);
        }
        other => return Err(format!("unknown deadline {other:?}")),
    }
    let slow = if arg == "zero" {
        Duration::from_secs(5)
    } else {
        Duration::from_millis(100)
    };
    atexit::register(|| say("older"));
    atexit::register(move || {
        say("newer");
        thread::sleep(slow);
        say("newer done");
    });
    atexit::exit(7)
}

fn check_deadlines() -> Result<String, String> {
    let mut wrong = Vec::new();
    let started = Instant::now();
    let ended = child::run(crate::scenario("deadline:zero"));
    let took = started.elapsed();
    let stderr = ended.stderr_without_panics();
    let message_ok = stderr.len() == 1
        && stderr[0].starts_with("atexit: exit deadline of 0ns exceeded while running ")
        && stderr[0].ends_with("; skipping the remaining handlers");
    // The watchdog may fire before the first handler starts.
    let ran_ok = matches!(ended.lines()[..], [] | ["newer"]);
    if ended.code != Some(7) || !message_ok || !ran_ok || took > Duration::from_secs(3) {
        wrong.push(format!(
            "Duration::ZERO: {} after {took:.1?}, stdout {:?}, stderr {:?}",
            describe(&ended),
            ended.stdout,
            ended.stderr
        ));
    }
    for budget in ["max", "secs-max", "zero-then-max"] {
        let ended = child::run(crate::scenario(&format!("deadline:{budget}")));
        if ended.code != Some(7)
            || ended.lines() != ["newer", "newer done", "older"]
            || !ended.stderr.is_empty()
        {
            wrong.push(format!(
                "{budget}: {}, stdout {:?}, stderr {:?}",
                describe(&ended),
                ended.stdout,
                ended.stderr
            ));
        }
    }
    verdict("deadlines", 4, wrong)
}

// ---- exit codes ----

/// `arg`: `CODE:atexit` or `CODE:std`.
fn exit_code(arg: &str) -> Result<(), String> {
    let (code, how) = arg.split_once(':').ok_or("want CODE:HOW")?;
    let code: i32 = code.parse().map_err(|_| format!("bad code {code:?}"))?;
    atexit::register(|| say(format!("reason {:?}", atexit::reason())));
    match how {
        "atexit" => atexit::exit(code),
        _ => std::process::exit(code),
    }
}

/// `arg`: `CODE:FAILURE`: exit with CODE after a handler panicked, with
/// `set_failure_code(Some(FAILURE))`.
fn failure_code(arg: &str) -> Result<(), String> {
    let (code, failure) = arg.split_once(':').ok_or("want CODE:FAILURE")?;
    let code: i32 = code.parse().map_err(|_| format!("bad code {code:?}"))?;
    let failure: i32 = failure
        .parse()
        .map_err(|_| format!("bad code {failure:?}"))?;
    atexit::set_failure_code(Some(failure));
    atexit::register(|| panic!("handler failed"));
    atexit::exit(code)
}

fn check_exit_codes() -> Result<String, String> {
    let mut wrong = Vec::new();
    let mut cases = 0;
    for code in [256, -1, 1000, 255, i32::MIN, i32::MAX] {
        for how in ["atexit", "std"] {
            cases += 1;
            let ended = child::run(crate::scenario(&format!("exit-code:{code}:{how}")));
            let want = code & 0xff;
            let reason = match how {
                "atexit" => format!("reason Some(Exit(Some({code})))"),
                _ => format!("reason {}", common::exit_reason(code)),
            };
            if ended.code != Some(want) || ended.lines() != [reason.as_str()] {
                wrong.push(format!(
                    "{how} exit({code}): {} (want {want}), stdout {:?}",
                    describe(&ended),
                    ended.stdout
                ));
            }
        }
    }
    // set_failure_code: the status the parent would have seen decides.
    for (code, failure, want) in [
        (0, 1000, 1000 & 0xff),
        (0, -1, 255),
        (256, 70, 70),
        (3, 70, 3),
    ] {
        cases += 1;
        let ended = child::run(crate::scenario(&format!("failure-code:{code}:{failure}")));
        if ended.code != Some(want) {
            wrong.push(format!(
                "exit({code}) after a panic with set_failure_code(Some({failure})): {} (want \
                 {want}: the parent sees status {})",
                describe(&ended),
                code & 0xff
            ));
        }
    }
    verdict("exit codes", cases, wrong)
}

// ---- a million handlers ----

const MILLION: usize = 1_000_000;
static NEXT: AtomicUsize = AtomicUsize::new(0);
static RAN: AtomicUsize = AtomicUsize::new(0);
static MISORDERED: AtomicUsize = AtomicUsize::new(0);
static TICKS: AtomicUsize = AtomicUsize::new(0);

fn tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

fn million(_: &str) -> Result<(), String> {
    // A local registry: a million registrations of one function, removed in
    // one call; a million handles, every other one unregistered.
    let registry = atexit::Registry::new();
    for _ in 0..MILLION {
        registry.register(tick);
    }
    say(format!(
        "unregister(f) removed {}",
        registry.unregister(tick)
    ));
    let handles: Vec<atexit::Handle> = (0..MILLION).map(|_| registry.register(tick)).collect();
    let removed = handles
        .into_iter()
        .step_by(2)
        .filter(|handle| handle.clone().unregister())
        .count();
    registry.run().map_err(|err| err.to_string())?;
    say(format!(
        "handles removed {removed}, ran {}, pending {}",
        TICKS.load(Ordering::Relaxed),
        registry.pending()
    ));
    // The process registry: a million handlers, each checking it runs in
    // its place, and one reporter that runs last.
    atexit::register(|| {
        say(format!(
            "ran {} at exit, {} out of order",
            RAN.load(Ordering::Relaxed),
            MISORDERED.load(Ordering::Relaxed)
        ));
    });
    for i in 0..MILLION {
        atexit::register(move || {
            if NEXT.load(Ordering::Relaxed) != i {
                MISORDERED.fetch_add(1, Ordering::Relaxed);
            }
            NEXT.store(i.wrapping_sub(1), Ordering::Relaxed);
            RAN.fetch_add(1, Ordering::Relaxed);
        });
    }
    NEXT.store(MILLION - 1, Ordering::Relaxed);
    say(format!("pending {}", atexit::pending()));
    Ok(())
}

fn check_million() -> Result<String, String> {
    let started = Instant::now();
    let ended = child::run(crate::scenario("million"));
    let took = started.elapsed();
    let want = [
        format!("unregister(f) removed {MILLION}"),
        format!(
            "handles removed {}, ran {}, pending 0",
            MILLION / 2,
            MILLION / 2
        ),
        format!("pending {}", MILLION + 1),
        format!("ran {MILLION} at exit, 0 out of order"),
    ];
    let mut wrong = Vec::new();
    if ended.code != Some(0) || ended.lines() != want || !ended.stderr.is_empty() {
        wrong.push(format!(
            "{}, stdout {:?}, stderr {:?}",
            describe(&ended),
            ended.stdout,
            ended.stderr
        ));
    }
    println!("  a million handlers: registered, unregistered and run in {took:.2?}");
    verdict("a million handlers", 4, wrong)
}

// ---- panic payloads ----

/// A panic payload whose own drop panics.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("payload drop");
    }
}

/// Registers, oldest first: a recorder, four handlers panicking with odd
/// payloads, and another recorder.
fn register_panickers(register: &dyn Fn(Box<dyn FnOnce() + Send>), tag: &'static str) {
    register(Box::new(move || say(format!("{tag} first registered ran"))));
    register(Box::new(|| panic_any(42_i32)));
    register(Box::new(|| panic_any(PanicsOnDrop)));
    register(Box::new(|| panic_any(String::from("owned message"))));
    register(Box::new(|| panic!("formatted {}", 7)));
    register(Box::new(move || say(format!("{tag} last registered ran"))));
}

fn panic_payloads(_: &str) -> Result<(), String> {
    let registry = atexit::Registry::new();
    register_panickers(&|f| drop(registry.register(f)), "registry");
    match registry.run() {
        Ok(()) => say("run Ok"),
        Err(err) => {
            for failure in err.failures() {
                say(format!("failure {}", failure.message()));
            }
        }
    }
    register_panickers(&|f| drop(atexit::register(f)), "exit");
    Ok(())
}

fn check_panic_payloads() -> Result<String, String> {
    let ended = child::run(crate::scenario("panic-payloads"));
    let want = [
        "registry last registered ran",
        "registry first registered ran",
        "failure formatted 7",
        "failure owned message",
        "failure non-string panic payload",
        "failure non-string panic payload",
        "exit last registered ran",
        "exit first registered ran",
    ];
    let reports: Vec<String> = ended.stderr_without_panics();
    let reports_ok = reports.len() == 4
        && reports.iter().all(|line| {
            line.starts_with("atexit: exit handler registered at tests/stress/input.rs:")
                && line.ends_with(" panicked")
        });
    let mut wrong = Vec::new();
    if ended.code != Some(0) || ended.lines() != want || !reports_ok {
        wrong.push(format!(
            "{}, stdout {:?}, stderr {:?}",
            describe(&ended),
            ended.stdout,
            ended.stderr
        ));
    }
    verdict("panic payloads", 2, wrong)
}

// ---- the group ----

fn verdict(what: &str, cases: usize, wrong: Vec<String>) -> Result<String, String> {
    if wrong.is_empty() {
        Ok(format!("{what} {cases}/{cases}"))
    } else {
        Err(format!("{what}: {}", wrong.join("; ")))
    }
}

fn bad_input_group(_: &Plan) -> Vec<String> {
    let checks: Vec<fn() -> Result<String, String>> = vec![
        #[cfg(feature = "signal")]
        check_bad_signals,
        check_deadlines,
        check_exit_codes,
        check_million,
        check_panic_payloads,
    ];
    let results = crate::parallel(checks.len(), |index| checks[index]());
    let mut passed = Vec::new();
    let mut problems = Vec::new();
    for result in results {
        match result {
            Ok(line) => passed.push(line),
            Err(problem) => problems.push(problem),
        }
    }
    println!(
        "bad input: {} of {} checks gave the documented result ({})",
        passed.len(),
        passed.len() + problems.len(),
        passed.join(", ")
    );
    problems
}

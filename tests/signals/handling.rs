//! `handle_signals` and `handle_signals_for`: handlers run on the
//! `atexit-signals` thread, then the process dies of the signal; refused
//! signals; a second signal; a storm; other handlers of the same signal
//! (`signal-hook` flags, plain C handlers); a forked child.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use libc::{c_int, SIGHUP, SIGINT, SIGTERM, SIGUSR1};

use crate::common::{self, Outcome};
use crate::{child, ready, say, wait_forever, Scenario, Test};

pub const SCENARIOS: &[(&str, Scenario)] = &[
    ("two_handlers", two_handlers),
    ("refusals", refusals),
    ("second_signal", second_signal),
    ("slow_handlers", slow_handlers),
    ("exit_while_main_exits", exit_while_main_exits),
    ("blocked_normal_exit", blocked_normal_exit),
    ("storm", storm),
    ("with_signal_hook_flags", with_signal_hook_flags),
    ("with_raw_handler", with_raw_handler),
    ("fork_after_handle_signals", fork_after_handle_signals),
];

pub const TESTS: &[Test] = &[
    ("sigint_runs_handlers_then_kills", || handled("all", SIGINT)),
    ("sigterm_runs_handlers_then_kills", || {
        handled("all", SIGTERM)
    }),
    ("sighup_runs_handlers_then_kills", || handled("all", SIGHUP)),
    ("sigint_without_handle_signals_runs_nothing", || {
        unhandled("none", SIGINT)
    }),
    ("sigterm_without_handle_signals_runs_nothing", || {
        unhandled("none", SIGTERM)
    }),
    ("sighup_without_handle_signals_runs_nothing", || {
        unhandled("none", SIGHUP)
    }),
    ("handle_signals_twice_runs_handlers_once", || {
        handled("twice", SIGTERM)
    }),
    ("handle_signals_for_usr1_handles_usr1", || {
        handled("usr1", SIGUSR1)
    }),
    #[cfg(any(target_os = "linux", target_os = "android"))]
    ("handle_signals_for_sigrtmin_handles_it", || {
        handled("rtmin", libc::SIGRTMIN())
    }),
    ("handle_signals_for_usr1_leaves_sigterm_alone", || {
        unhandled("usr1", SIGTERM)
    }),
    ("refused_calls_change_nothing", refused_calls_change_nothing),
    ("good_call_after_refusals_works", || {
        after_refusals(SIGTERM, true)
    }),
    ("refusal_after_good_call_adds_nothing", || {
        after_refusals(SIGUSR1, false)
    }),
    ("second_sigint_during_run_kills_at_once", || {
        second_signal_kills(SIGINT)
    }),
    ("second_sigterm_during_run_kills_at_once", || {
        second_signal_kills(SIGTERM)
    }),
    (
        "second_signal_within_the_window_is_ignored",
        second_signal_within_the_window_is_ignored,
    ),
    ("duplicate_sigterm_is_one_request", || {
        duplicates_are_one_request(&[SIGTERM, SIGTERM], Duration::ZERO)
    }),
    ("sigterm_with_sighup_is_one_request", || {
        duplicates_are_one_request(&[SIGTERM, SIGHUP], Duration::ZERO)
    }),
    ("sighup_then_others_dies_of_sighup", || {
        duplicates_are_one_request(&[SIGHUP, SIGTERM, SIGINT], Duration::from_millis(20))
    }),
    (
        "sigterm_during_normal_exit_kills_at_once",
        sigterm_during_normal_exit,
    ),
    (
        "atexit_exit_in_signal_run_while_main_exits",
        atexit_exit_in_signal_run_while_main_exits,
    ),
    ("sigterm_storm_runs_handlers_at_most_once", sigterm_storm),
    (
        "raw_handler_installed_before_is_chained",
        raw_handler_installed_before_is_chained,
    ),
    (
        "raw_handler_installed_after_replaces_ours",
        raw_handler_installed_after_replaces_ours,
    ),
    (
        "signal_hook_flags_are_still_set",
        signal_hook_flags_are_still_set,
    ),
    (
        "forked_child_still_dies_of_sigterm",
        forked_child_still_dies_of_sigterm,
    ),
];

/// Installs the signal handling that `setup` names.
fn install(setup: &str) {
    match setup {
        "none" => {}
        "all" => atexit::handle_signals().expect("handle_signals"),
        "twice" => {
            atexit::handle_signals().expect("first handle_signals");
            atexit::handle_signals().expect("second handle_signals");
            atexit::handle_signals_for(&[SIGTERM]).expect("SIGTERM again");
        }
        "usr1" => atexit::handle_signals_for(&[SIGUSR1]).expect("handle_signals_for"),
        #[cfg(any(target_os = "linux", target_os = "android"))]
        "rtmin" => atexit::handle_signals_for(&[libc::SIGRTMIN()]).expect("handle_signals_for"),
        other => panic!("unknown setup {other:?}"),
    }
}

/// What each handler prints: which one, on which thread, and why.
fn report(which: &str) {
    say(format_args!(
        "{which} ran on thread {:?}, reason {:?}",
        thread::current().name(),
        atexit::reason()
    ));
}

/// Two handlers; waits for a signal.
fn two_handlers(setup: &str) -> Result<(), String> {
    install(setup);
    atexit::register(|| report("first"));
    atexit::register(|| report("second"));
    ready();
    wait_forever()
}

fn signalled(setup: &str, signal: c_int) -> Outcome {
    let running = common::start(child(&format!("two_handlers:{setup}")));
    running.signal(signal);
    running.finish()
}

fn handled(setup: &str, signal: c_int) {
    let outcome = signalled(setup, signal);
    let expected = format!(
        "READY\n\
         second ran on thread Some(\"atexit-signals\"), reason Some(Signal({signal}))\n\
         first ran on thread Some(\"atexit-signals\"), reason Some(Signal({signal}))\n"
    );
    assert_eq!(outcome.stdout, expected, "{outcome:?}");
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.signal, Some(signal), "{outcome:?}");
}

fn unhandled(setup: &str, signal: c_int) {
    let outcome = signalled(setup, signal);
    assert_eq!(outcome.stdout, "READY\n", "{outcome:?}");
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.signal, Some(signal), "{outcome:?}");
}

/// Signals that must be refused, each asked together with SIGTERM so that
/// a partly applied call would show.
const REFUSED: &[c_int] = &[
    libc::SIGKILL,
    libc::SIGSTOP,
    0,
    -1,
    9999,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGCHLD,
];

fn try_refused(alongside: c_int) {
    for &signal in REFUSED {
        match atexit::handle_signals_for(&[alongside, signal]) {
            Ok(()) => say(format_args!("signal {signal} accepted")),
            Err(err) => {
                let variant = match err {
                    atexit::Error::ForbiddenSignal { signal: named, .. } if named == signal => {
                        "ForbiddenSignal"
                    }
                    _ => "another variant",
                };
                say(format_args!("{variant}: {err}"));
            }
        }
    }
}

/// `refusals:first`: refused calls, then a handler and no good call.
/// `refusals:then_good`: refused calls, a good call for SIGTERM, refused
/// calls again (now that handling is installed).
fn refusals(arg: &str) -> Result<(), String> {
    try_refused(SIGTERM);
    if arg == "then_good" {
        atexit::handle_signals_for(&[SIGTERM]).expect("a good call after refusals");
        try_refused(SIGUSR1);
    }
    atexit::register(|| say("handler ran"));
    ready();
    wait_forever()
}

fn refusal_lines() -> String {
    let reason = |signal: c_int| match signal {
        libc::SIGKILL | libc::SIGSTOP => "it cannot be caught",
        0 | -1 => "signal numbers start at 1",
        9999 => "there is no signal with that number on this system",
        libc::SIGCHLD => {
            "its default action does not end the process, so the process could not die of it"
        }
        _ => {
            "a fault signal means the process state may be corrupt, so no handler should run on it"
        }
    };
    let name = |signal: c_int| match signal {
        libc::SIGKILL => "SIGKILL",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGCHLD => "SIGCHLD",
        _ => "unnamed signal",
    };
    REFUSED
        .iter()
        .map(|&signal| {
            format!(
                "ForbiddenSignal: refused to handle signal {signal} ({}): {}; \
                 no signal handling was changed\n",
                name(signal),
                reason(signal)
            )
        })
        .collect()
}

fn refused_calls_change_nothing() {
    let outcome = common::signalled(child("refusals:first"), SIGTERM);
    // SIGTERM was refused along with each bad signal: it still kills at once.
    assert_eq!(
        outcome.stdout,
        format!("{}READY\n", refusal_lines()),
        "{outcome:?}"
    );
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.signal, Some(SIGTERM), "{outcome:?}");
}

fn after_refusals(signal: c_int, runs_handler: bool) {
    let outcome = common::signalled(child("refusals:then_good"), signal);
    let handler = if runs_handler { "handler ran\n" } else { "" };
    let lines = refusal_lines();
    assert_eq!(
        outcome.stdout,
        format!("{lines}{lines}READY\n{handler}"),
        "{outcome:?}"
    );
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.signal, Some(signal), "{outcome:?}");
}

/// The newest handler blocks after saying so; the older one must never run.
fn second_signal(window_ms: &str) -> Result<(), String> {
    second_signal_with_window(window_ms);
    atexit::handle_signals().expect("handle_signals");
    atexit::register(|| say("older handler ran"));
    atexit::register(|| {
        say("blocking handler started");
        crate::hang();
    });
    ready();
    wait_forever()
}

fn second_signal_kills(second: c_int) {
    let mut running = common::start(child("second_signal"));
    running.signal(SIGTERM);
    let first_sent = Instant::now();
    assert_eq!(running.read_line(), "blocking handler started");
    // A deliberate second request comes after the coalescing window.
    sleep_until(first_sent + atexit::COALESCE_WINDOW + Duration::from_millis(50));
    running.signal(second);
    let outcome = running.finish();
    assert_eq!(outcome.stdout, "READY\n", "{outcome:?}");
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.signal, Some(second), "{outcome:?}");
}

fn sleep_until(moment: Instant) {
    thread::sleep(moment.saturating_duration_since(Instant::now()));
}

/// `second_signal:WINDOW_MS` sets the coalescing window first.
fn second_signal_with_window(arg: &str) {
    if let Ok(millis) = arg.parse() {
        atexit::set_coalesce_window(Duration::from_millis(millis));
    }
}

fn second_signal_within_the_window_is_ignored() {
    let window = Duration::from_millis(1000);
    let mut running = common::start(child(&format!("second_signal:{}", window.as_millis())));
    running.signal(SIGTERM);
    let first_sent = Instant::now();
    assert_eq!(running.read_line(), "blocking handler started");
    // Within the window: the same request, ignored.
    running.signal(SIGINT);
    running.signal(SIGHUP);
    sleep_until(first_sent + window + Duration::from_millis(200));
    assert!(
        running.child.try_wait().expect("wait").is_none(),
        "a signal within the window ended the process"
    );
    // After it: a second request, which ends the process by that signal.
    running.signal(SIGINT);
    let outcome = running.finish();
    assert_eq!(outcome.stdout, "READY\n", "{outcome:?}");
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.signal, Some(SIGINT), "{outcome:?}");
}

/// Three handlers that take 200 ms in all, each saying when it starts and
/// ends, and for which signal.
fn slow_handlers(_: &str) -> Result<(), String> {
    atexit::handle_signals().expect("handle_signals");
    for name in ["oldest", "middle", "newest"] {
        atexit::register(move || {
            say(format_args!(
                "{name} started, reason {:?}",
                atexit::reason()
            ));
            thread::sleep(Duration::from_millis(66));
            say(format_args!("{name} done"));
        });
    }
    ready();
    wait_forever()
}

/// `sent`, `gap` apart, all within the coalescing window (as `timeout` or
/// systemd send them): one request, every handler runs, and the process
/// dies of the first. Signals sent back to back (`gap` zero) are pending
/// together and may be taken by different threads in either order, so
/// then the first is whichever the process saw first.
fn duplicates_are_one_request(sent: &[c_int], gap: Duration) {
    let running = common::start(child("slow_handlers"));
    for (n, &signal) in sent.iter().enumerate() {
        if n > 0 {
            thread::sleep(gap);
        }
        running.signal(signal);
    }
    let outcome = running.finish();
    let first = match outcome.signal {
        Some(signal) if gap.is_zero() && sent.contains(&signal) => signal,
        _ => sent[0],
    };
    let reason = format!("Some(Signal({first}))");
    assert_eq!(
        outcome.stdout,
        format!(
            "READY\n\
             newest started, reason {reason}\nnewest done\n\
             middle started, reason {reason}\nmiddle done\n\
             oldest started, reason {reason}\noldest done\n"
        ),
        "{outcome:?}"
    );
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.signal, Some(first), "{outcome:?}");
}

/// A signal run in which `main` returns (and so waits inside the C `exit`)
/// before a handler calls `atexit::exit(5)`: the handlers left run, then
/// the process exits with 5. (On glibc 2.41 a second thread's `exit`
/// would block behind `main`'s.)
fn exit_while_main_exits(_: &str) -> Result<(), String> {
    atexit::handle_signals().expect("handle_signals");
    let (main_may_return, returned) = std::sync::mpsc::channel::<()>();
    atexit::register(|| say("oldest ran"));
    atexit::register(move || {
        say("newest: letting main return");
        drop(main_may_return);
        // Time for `main` to return and reach the crate's exit hook.
        thread::sleep(Duration::from_millis(200));
        say("newest: exiting with 5");
        atexit::exit(5);
    });
    ready();
    let _ = returned.recv();
    say("main returns");
    Ok(())
}

fn atexit_exit_in_signal_run_while_main_exits() {
    let outcome = common::signalled(child("exit_while_main_exits"), SIGTERM);
    assert_eq!(
        outcome.stdout,
        "READY\nnewest: letting main return\nmain returns\nnewest: exiting with 5\noldest ran\n",
        "{outcome:?}"
    );
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.code, Some(5), "{outcome:?}");
}

/// `main` returns; the newest handler of that exit run blocks.
fn blocked_normal_exit(_: &str) -> Result<(), String> {
    atexit::handle_signals().expect("handle_signals");
    atexit::register(|| say("older handler ran"));
    atexit::register(|| {
        say("blocking handler started");
        crate::hang();
    });
    ready();
    Ok(())
}

fn sigterm_during_normal_exit() {
    let mut running = common::start(child("blocked_normal_exit"));
    assert_eq!(running.read_line(), "blocking handler started");
    running.signal(SIGTERM);
    let outcome = running.finish();
    assert_eq!(outcome.stdout, "READY\n", "{outcome:?}");
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.signal, Some(SIGTERM), "{outcome:?}");
}

fn storm(_: &str) -> Result<(), String> {
    atexit::handle_signals().expect("handle_signals");
    atexit::register(|| say("first ran"));
    atexit::register(|| {
        say("second ran");
        // Long enough for more of the storm to arrive during the run.
        thread::sleep(Duration::from_millis(5));
    });
    ready();
    wait_forever()
}

fn sigterm_storm() {
    let running = common::start(child("storm"));
    // 20 signals, 1 ms apart.
    for sent in 0..20 {
        if sent > 0 {
            thread::sleep(Duration::from_millis(1));
        }
        running.signal(SIGTERM);
    }
    let outcome = running.finish();
    // Each handler at most once, in order; the storm may cut the run short.
    let ran: Vec<&str> = outcome.stdout.lines().skip(1).collect();
    assert!(["second ran", "first ran"].starts_with(&ran), "{outcome:?}");
    assert!(outcome.stdout.starts_with("READY\n"), "{outcome:?}");
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.signal, Some(SIGTERM), "{outcome:?}");
}

/// A `signal-hook` flag registered before `handle_signals`, one after; the
/// handler reports whether both were set.
fn with_signal_hook_flags(_: &str) -> Result<(), String> {
    let before = Arc::new(AtomicBool::new(false));
    let after = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(SIGTERM, Arc::clone(&before)).expect("flag before");
    atexit::handle_signals().expect("handle_signals");
    signal_hook::flag::register(SIGTERM, Arc::clone(&after)).expect("flag after");
    atexit::register(move || {
        // The signal handler wakes our thread before it calls the actions
        // registered after ours, so the later flag may be set a moment
        // after the handlers start: wait for it, briefly.
        let waited = Instant::now();
        while !after.load(Ordering::SeqCst) && waited.elapsed() < Duration::from_secs(2) {
            thread::sleep(Duration::from_millis(1));
        }
        say(format_args!(
            "flag registered before: {}, after: {}",
            before.load(Ordering::SeqCst),
            after.load(Ordering::SeqCst)
        ))
    });
    ready();
    wait_forever()
}

fn signal_hook_flags_are_still_set() {
    let outcome = common::signalled(child("with_signal_hook_flags"), SIGTERM);
    assert_eq!(
        outcome.stdout, "READY\nflag registered before: true, after: true\n",
        "{outcome:?}"
    );
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.signal, Some(SIGTERM), "{outcome:?}");
}

static RAW_HANDLER_RAN: AtomicBool = AtomicBool::new(false);

/// A plain C signal handler, as a library that calls `sigaction` itself
/// (`ctrlc`, say) installs.
extern "C" fn raw_handler(_: c_int) {
    RAW_HANDLER_RAN.store(true, Ordering::SeqCst);
}

/// Ends the process with status 42, to show that it alone received the signal.
extern "C" fn raw_handler_exiting(_: c_int) {
    let text = b"raw handler ran\n";
    // SAFETY: write(2) and _exit(2) are async-signal-safe; the buffer is valid.
    unsafe {
        libc::write(1, text.as_ptr().cast(), text.len());
        libc::_exit(42);
    }
}

fn install_raw(handler: extern "C" fn(c_int)) {
    // SAFETY: both handlers only touch an atomic or call async-signal-safe
    // functions.
    let previous = unsafe { libc::signal(SIGTERM, handler as libc::sighandler_t) };
    assert_ne!(previous, libc::SIG_ERR, "signal(SIGTERM)");
}

/// `with_raw_handler:before` or `:after` `handle_signals`.
fn with_raw_handler(when: &str) -> Result<(), String> {
    if when == "before" {
        install_raw(raw_handler);
    }
    atexit::handle_signals().expect("handle_signals");
    if when == "after" {
        install_raw(raw_handler_exiting);
    }
    atexit::register(|| {
        say(format_args!(
            "handler ran; raw handler ran: {}",
            RAW_HANDLER_RAN.load(Ordering::SeqCst)
        ))
    });
    ready();
    wait_forever()
}

fn raw_handler_installed_before_is_chained() {
    let outcome = common::signalled(child("with_raw_handler:before"), SIGTERM);
    assert_eq!(
        outcome.stdout, "READY\nhandler ran; raw handler ran: true\n",
        "{outcome:?}"
    );
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.signal, Some(SIGTERM), "{outcome:?}");
}

fn raw_handler_installed_after_replaces_ours() {
    let outcome = common::signalled(child("with_raw_handler:after"), SIGTERM);
    assert_eq!(outcome.stdout, "READY\nraw handler ran\n", "{outcome:?}");
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.code, Some(42), "{outcome:?}");
}

/// After `handle_signals`, forks; once the forked child says it is
/// running, the parent sends it SIGTERM and reports how it ended. The
/// forked child gives up after two seconds (exit status 99) if SIGTERM
/// does not end it.
fn fork_after_handle_signals(_: &str) -> Result<(), String> {
    atexit::handle_signals().expect("handle_signals");
    let parent = std::process::id();
    atexit::register(move || {
        let who = if std::process::id() == parent {
            "parent"
        } else {
            "forked child"
        };
        say(format_args!("handler ran in {who}"));
    });
    let (mut to_parent, mut from_child) = UnixStream::pair().expect("socket pair");
    // SAFETY: the forked child only writes to a socket, sleeps and exits;
    // no other thread of this process holds a lock the child would need
    // (the signal thread waits in a read and holds none).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let _ = to_parent.write_all(b"running");
        thread::sleep(Duration::from_secs(2));
        // SAFETY: ends the forked child without running inherited state.
        unsafe { libc::_exit(99) };
    }
    assert!(pid > 0, "fork failed");
    let mut running = [0; 7];
    from_child
        .read_exact(&mut running)
        .expect("forked child running");
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe { libc::kill(pid, SIGTERM) };
    say(format_args!(
        "forked child: {}",
        crate::control::wait_child(pid)
    ));
    Ok(())
}

fn forked_child_still_dies_of_sigterm() {
    let outcome = common::run(child("fork_after_handle_signals"));
    // The forked child has no `atexit-signals` thread; whether or not it
    // runs the handlers, SIGTERM must still end it, by SIGTERM.
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert!(
        lines == ["forked child: killed by signal 15", "handler ran in parent"]
            || lines
                == [
                    "handler ran in forked child",
                    "forked child: killed by signal 15",
                    "handler ran in parent"
                ],
        "{outcome:?}"
    );
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
}

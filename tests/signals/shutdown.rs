//! `Shutdown`: the first signal is a request the program acts on (it
//! drains, then ends by any path); then the handlers run and the process
//! dies of that signal. A grace period, a second request, and refusals.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use libc::{SIGINT, SIGTERM};

use crate::common;
use crate::{child, ready, say, Scenario, Test};

pub const SCENARIOS: &[(&str, Scenario)] = &[
    ("shutdown_async", shutdown_async),
    ("shutdown_wait", shutdown_wait),
    ("shutdown_conflict", shutdown_conflict),
];

pub const TESTS: &[Test] = &[
    ("shutdown_request_then_main_returns_dies_of_sigterm", || {
        request_then("return", SIGTERM)
    }),
    ("shutdown_request_then_process_exit_dies_of_sigint", || {
        request_then("exit3", SIGINT)
    }),
    ("shutdown_request_then_atexit_exit_dies_of_sigterm", || {
        request_then("atexit_exit3", SIGTERM)
    }),
    (
        "shutdown_wait_blocks_until_the_request",
        shutdown_wait_works,
    ),
    ("shutdown_grace_runs_the_handlers_itself", grace_period),
    ("shutdown_second_request_force_quits", second_request),
    ("shutdown_and_handle_signals_refuse_each_other", conflicts),
];

/// The smallest executor: polls `future` on this thread, parking between
/// wake-ups. (The crate needs no runtime; neither does its test.)
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        thread::park();
    }
}

fn handlers() {
    atexit::register(|| say("older handler ran"));
    atexit::register(|| {
        say(format_args!(
            "newer handler ran, reason {:?}",
            atexit::reason()
        ))
    });
}

/// `shutdown_async:ENDING`: waits for the request with two futures (one
/// made before, one from a clone after), drains, then ends by ENDING:
/// `return`, `exit3` (std::process::exit(3)), `atexit_exit3`, `hang`.
fn shutdown_async(ending: &str) -> Result<(), String> {
    let shutdown = atexit::Shutdown::on_signals().map_err(|e| e.to_string())?;
    handlers();
    let early = shutdown.requested();
    say(format_args!(
        "requested before: {}",
        shutdown.is_requested()
    ));
    ready();
    block_on(early);
    let late = shutdown.clone().requested();
    block_on(late);
    say(format_args!(
        "requested by {:?}; no handler has run; draining",
        shutdown.signal()
    ));
    match ending {
        "return" => Ok(()),
        "exit3" => std::process::exit(3),
        "atexit_exit3" => atexit::exit(3),
        "hang" => {
            thread::sleep(Duration::from_secs(30));
            say("the drain ended");
            Ok(())
        }
        other => Err(format!("unknown ending {other:?}")),
    }
}

fn request_then(ending: &str, signal: i32) {
    let outcome = common::signalled(child(&format!("shutdown_async:{ending}")), signal);
    assert_eq!(
        outcome.stdout,
        format!(
            "requested before: false\nREADY\nrequested by Some({signal}); no handler has run; draining\n\
             newer handler ran, reason Some(Signal({signal}))\nolder handler ran\n"
        ),
        "{outcome:?}"
    );
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.signal, Some(signal), "{outcome:?}");
}

/// `shutdown_wait:GRACE_MS`: blocks in `wait`, says so, then hangs (the
/// grace period, if any, ends it) or, without one, returns.
fn shutdown_wait(grace_ms: &str) -> Result<(), String> {
    let mut shutdown = atexit::Shutdown::on(&[SIGTERM]).map_err(|e| e.to_string())?;
    if let Ok(millis) = grace_ms.parse() {
        shutdown = shutdown.grace(Duration::from_millis(millis));
    }
    handlers();
    ready();
    shutdown.wait();
    say(format_args!("wait returned: {}", shutdown.is_requested()));
    if grace_ms.is_empty() {
        return Ok(());
    }
    thread::sleep(Duration::from_secs(30));
    say("not reached: the grace period ended the process");
    Ok(())
}

fn shutdown_wait_works() {
    let outcome = common::signalled(child("shutdown_wait"), SIGTERM);
    assert_eq!(
        outcome.stdout,
        "READY\nwait returned: true\nnewer handler ran, reason Some(Signal(15))\nolder handler ran\n",
        "{outcome:?}"
    );
    assert_eq!(outcome.signal, Some(SIGTERM), "{outcome:?}");
}

fn grace_period() {
    let running = common::start(child("shutdown_wait:300"));
    running.signal(SIGTERM);
    let sent = Instant::now();
    let outcome = running.finish();
    let took = sent.elapsed();
    assert_eq!(
        outcome.stdout,
        "READY\nwait returned: true\nnewer handler ran, reason Some(Signal(15))\nolder handler ran\n",
        "{outcome:?}"
    );
    assert_eq!(
        outcome.stderr,
        "atexit: the program did not end within its 300ms grace period after signal 15 (SIGTERM); running the exit handlers\n",
        "{outcome:?}"
    );
    assert_eq!(outcome.signal, Some(SIGTERM), "{outcome:?}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(10),
        "{took:?}"
    );
}

fn second_request() {
    let mut running = common::start(child("shutdown_async:hang"));
    running.signal(SIGTERM);
    let first = Instant::now();
    assert_eq!(
        running.read_line(),
        "requested by Some(15); no handler has run; draining"
    );
    thread::sleep(
        (first + atexit::COALESCE_WINDOW + Duration::from_millis(50))
            .saturating_duration_since(Instant::now()),
    );
    running.signal(SIGINT);
    let outcome = running.finish();
    assert_eq!(
        outcome.stdout, "requested before: false\nREADY\n",
        "{outcome:?}"
    );
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.signal, Some(SIGINT), "{outcome:?}");
}

/// `shutdown_conflict`: each order of the two ways, for SIGTERM.
fn shutdown_conflict(_: &str) -> Result<(), String> {
    atexit::handle_signals_for(&[SIGTERM]).map_err(|e| e.to_string())?;
    match atexit::Shutdown::on(&[SIGINT, SIGTERM]) {
        Ok(_) => say("Shutdown after handle_signals: accepted"),
        Err(err) => say(err),
    }
    // The refused call changed nothing: SIGINT is still not handled.
    match atexit::handle_signals_for(&[SIGINT]) {
        Ok(()) => say("handle_signals for SIGINT: accepted"),
        Err(err) => say(err),
    }
    match atexit::Shutdown::on(&[SIGINT]) {
        Ok(_) => say("Shutdown on SIGINT: accepted"),
        Err(err) => say(err),
    }
    Ok(())
}

fn conflicts() {
    let outcome = common::run(child("shutdown_conflict"));
    assert_eq!(
        outcome.stdout,
        "refused to handle signal 15 (SIGTERM) with Shutdown: handle_signals already handles it, \
         and a signal is handled one way; no signal handling was changed\n\
         handle_signals for SIGINT: accepted\n\
         refused to handle signal 2 (SIGINT) with Shutdown: handle_signals already handles it, \
         and a signal is handled one way; no signal handling was changed\n",
        "{outcome:?}"
    );
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
}

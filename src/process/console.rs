//! Windows: running the handlers on console control events (Ctrl-C,
//! Ctrl-Break, console close, logoff, shutdown), then ending the process
//! with the status Windows gives that event.
//!
//! The system calls the console handler on a thread it creates for each
//! event. That thread only records the arrival and wakes a named thread,
//! `atexit-signals`, where the handlers run (as on Unix: fresh
//! thread-locals, a name in reports, and one place that ends the process).
//! It then waits for ever for a close, logoff or shutdown, since
//! returning from the handler lets Windows end the process at once.

use std::io;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::process::ending::{self, park_forever};
use crate::process::exit_run::{self, Begin};
use crate::process::reason::{ConsoleEvent, ExitReason};
use crate::sys;

/// The C runtime's number for Ctrl-Break (`signal.h`), which
/// [`handle_signals_for`] accepts on Windows, with `SIGINT` (Ctrl-C) and
/// `SIGTERM` (console close, logoff and shutdown).
///
/// ```
/// # #[cfg(windows)]
/// atexit::handle_signals_for(&[atexit::SIGBREAK]).unwrap();
/// ```
pub const SIGBREAK: c_int = 21;
const SIGINT: c_int = 2;
const SIGTERM: c_int = 15;

/// How long after the first handled console event another one still counts
/// as the same stop request, unless [`set_coalesce_window`] says otherwise.
///
/// One request can reach a process twice (a console close after a Ctrl-C
/// sent to a whole process group, a supervisor that sends Ctrl-Break to the
/// group and then to the process). A person pressing Ctrl-C a second time
/// comes later than this window and ends the process at once.
pub const COALESCE_WINDOW: Duration = Duration::from_millis(100);

/// Sets how long after the first handled console event any other handled
/// event is taken as the same stop request and ignored; [`COALESCE_WINDOW`]
/// until set. After the window, a handled event ends the process at once
/// with that event's status, skipping the handlers not yet run.
/// `Duration::ZERO` makes every later event end the process.
///
/// ```
/// use std::time::Duration;
/// atexit::set_coalesce_window(Duration::from_secs(1));
/// # atexit::set_coalesce_window(atexit::COALESCE_WINDOW);
/// ```
pub fn set_coalesce_window(window: Duration) {
    let nanos = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
    WINDOW_NANOS.store(nanos, Ordering::Relaxed);
}

static WINDOW_NANOS: AtomicU64 = AtomicU64::new(COALESCE_WINDOW.as_nanos() as u64);

/// The handled events, one bit per `dwCtrlType` value.
static WATCHED: AtomicU32 = AtomicU32::new(0);

/// The first handled event and when it arrived; the console handler's
/// threads decide from it whether a later event is a duplicate.
static FIRST: Mutex<Option<(ConsoleEvent, Instant)>> = Mutex::new(None);

/// Wakes the `atexit-signals` thread; set once it runs.
static WAKE: Mutex<Option<mpsc::Sender<ConsoleEvent>>> = Mutex::new(None);

/// Ctrl-C, Ctrl-Break, console close, logoff and shutdown run the
/// registered handlers, and then the process ends with the status Windows
/// gives that event, `STATUS_CONTROL_C_EXIT` (0xC000013A).
///
/// When one of these events arrives the handlers run newest first on the
/// `atexit-signals` thread; then the process ends with the status it would
/// have had without this crate, so a parent sees 0xC000013A, not a made-up
/// exit code. [`reason`](crate::reason) gives
/// `Some(ExitReason::Console(event))`.
///
/// Windows ends a process about 5 seconds after a console close, a logoff
/// or a shutdown whatever it does: for those events the run's deadline is 4
/// seconds, or less if [`set_deadline`](crate::set_deadline) says so.
///
/// Handled events within [`COALESCE_WINDOW`] of the first are the same
/// request and are ignored; a handled event after that window ends the
/// process at once ("press Ctrl-C again to force quit"). A handled event
/// that arrives while the process is already exiting normally ends it at
/// once. Calling it again is harmless.
///
/// ```no_run
/// atexit::handle_signals().expect("console event handling");
/// atexit::register(|| println!("saved state"));
/// loop {
///     std::thread::park(); // until Ctrl-C: "saved state", then status 0xC000013A
/// }
/// ```
///
/// # Errors
///
/// [`Error::SignalSetup`] if Windows refuses the console handler.
///
/// # Coexistence
///
/// Console handlers are called newest first until one says it handled the
/// event: one added after this call (`ctrlc` adds one) sees the events
/// first and, if it handles them, takes them away from this crate.
pub fn handle_signals() -> Result<(), Error> {
    handle_signals_for(&[SIGINT, SIGBREAK, SIGTERM])
}

/// Like [`handle_signals`], for a chosen set, named by the C runtime's
/// signal numbers: `SIGINT` (2) is Ctrl-C, [`SIGBREAK`] (21) is Ctrl-Break,
/// and `SIGTERM` (15) is the console close, logoff and shutdown events (the
/// requests to stop that Windows sends; it has no SIGTERM of its own).
///
/// ```
/// # #[cfg(windows)] {
/// let err = atexit::handle_signals_for(&[libc::SIGINT, libc::SIGSEGV]).unwrap_err();
/// assert!(err.to_string().starts_with("refused to handle signal 11 (SIGSEGV)"));
/// # }
/// ```
///
/// # Errors
///
/// [`Error::ForbiddenSignal`], before anything is installed, for any other
/// number: 0 and negative numbers, the fault signals (SIGSEGV, SIGILL,
/// SIGFPE), SIGABRT, and numbers that name no console event. A refused
/// call changes nothing. [`Error::SignalSetup`] if Windows refuses the
/// console handler.
pub fn handle_signals_for(signals: &[c_int]) -> Result<(), Error> {
    let mut mask = 0;
    for &signal in signals {
        for event in events_for(signal)? {
            mask |= 1 << event.raw();
        }
    }
    let Some(&first) = signals.first() else {
        return Ok(());
    };
    let mut wake = WAKE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if wake.is_none() {
        let (sender, receiver) = mpsc::channel();
        thread::Builder::new()
            .name("atexit-signals".into())
            .spawn(move || {
                if let Ok(event) = receiver.recv() {
                    on_event(event);
                }
            })
            .map_err(|err| setup_error(first, &err))?;
        *wake = Some(sender);
    }
    drop(wake);
    let before = WATCHED.fetch_or(mask, Ordering::AcqRel);
    sys::install_console_handler(on_console_event).map_err(|err| {
        WATCHED.store(before, Ordering::Release);
        setup_error(first, &err)
    })
}

fn setup_error(signal: c_int, err: &io::Error) -> Error {
    Error::SignalSetup {
        signal,
        cause: err.to_string(),
    }
}

/// The console events that `signal` stands for, or why it may not be
/// handled.
fn events_for(signal: c_int) -> Result<&'static [ConsoleEvent], Error> {
    let refuse = |reason| Err(Error::ForbiddenSignal { signal, reason });
    match signal {
        SIGINT => Ok(&[ConsoleEvent::CtrlC]),
        SIGBREAK => Ok(&[ConsoleEvent::CtrlBreak]),
        SIGTERM => Ok(&[
            ConsoleEvent::Close,
            ConsoleEvent::Logoff,
            ConsoleEvent::Shutdown,
        ]),
        _ if signal <= 0 => refuse("signal numbers start at 1"),
        4 | 8 | 11 => refuse(
            "a fault signal means the process state may be corrupt, so no handler should run on it",
        ),
        6 | 22 => refuse("abort() does not wait for handlers to finish"),
        _ => refuse(
            "Windows has no such event: only SIGINT (Ctrl-C), SIGBREAK (Ctrl-Break) and \
             SIGTERM (console close, logoff, shutdown) can be handled",
        ),
    }
}

/// On the thread the system made for one console event: whether the
/// event is ours to handle. Decides at once whether it is the first, a
/// duplicate or a request to force quit, whatever the handlers' thread is
/// doing.
fn on_console_event(raw: u32) -> bool {
    let Some(event) = ConsoleEvent::from_raw(raw) else {
        return false;
    };
    if WATCHED.load(Ordering::Acquire) & (1 << raw) == 0 {
        return false;
    }
    let now = Instant::now();
    let mut first = FIRST
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match *first {
        None => {
            *first = Some((event, now));
            drop(first);
            let wake = WAKE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(wake) = wake.as_ref() {
                let _ = wake.send(event);
            }
        }
        Some((_, first_at)) => {
            drop(first);
            let window = Duration::from_nanos(WINDOW_NANOS.load(Ordering::Relaxed));
            if now.saturating_duration_since(first_at) > window {
                // A deliberate second request: end the process now.
                sys::exit_immediately(event.exit_status() as i32);
            }
        }
    }
    if event.has_system_timeout() {
        // Returning would let Windows end the process before the handlers
        // are done; `atexit-signals` ends it.
        park_forever();
    }
    true
}

/// On the `atexit-signals` thread: the exit run for the first handled
/// event, then the end of the process with that event's status.
fn on_event(event: ConsoleEvent) -> ! {
    let status = event.exit_status() as i32;
    match exit_run::begin(ExitReason::Console(event)) {
        Begin::Owner => {
            exit_run::run_handlers();
            exit_run::finish();
            ending::flush_briefly();
            sys::exit_immediately(status)
        }
        // Already exiting: this event is the user insisting.
        Begin::Nested | Begin::Elsewhere => sys::exit_immediately(status),
    }
}

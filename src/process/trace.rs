//! `ATEXIT_TRACE`: with the variable set, the exit run prints one stderr
//! line per hook (how long it took, or that it panicked or was skipped)
//! and the run's total. The variable is read once, when a run begins; off,
//! the run loop is the untraced one and reads no clock.

use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::describe;
use crate::process::reason::ExitReason;
use crate::registry::run::{Observer, Outcome};
use crate::store::{Meta, Site};

const VARIABLE: &str = "ATEXIT_TRACE";

/// Whether this exit run is traced; set by `start`.
static ON: AtomicBool = AtomicBool::new(false);
/// The trace lines printed so far in this run.
static LINES: AtomicUsize = AtomicUsize::new(0);
/// When the traced run began, and why. A lock, not a thread-local: the
/// deadline's watchdog reads it too.
static BEGAN: Mutex<Option<(Instant, ExitReason)>> = Mutex::new(None);
/// The process that printed a run's total (0: none yet).
static TOTAL_PRINTED_IN: AtomicU32 = AtomicU32::new(0);

/// Reads `ATEXIT_TRACE` as an exit run begins: on when set to anything but
/// the empty string or `0`.
pub(crate) fn start(reason: ExitReason) {
    let on = std::env::var_os(VARIABLE).is_some_and(|value| !value.is_empty() && value != "0");
    if on {
        LINES.store(0, Ordering::Relaxed);
        *lock(&BEGAN) = Some((Instant::now(), reason));
    }
    ON.store(on, Ordering::Release);
}

/// Whether the exit run under way is traced.
pub(crate) fn is_on() -> bool {
    ON.load(Ordering::Acquire)
}

/// Wraps the exit run's observer: times each hook and prints its line.
pub(crate) struct Traced<'a, O> {
    inner: &'a O,
    hook_began: Cell<Option<Instant>>,
}

impl<'a, O: Observer> Traced<'a, O> {
    pub(crate) fn new(inner: &'a O) -> Self {
        Traced {
            inner,
            hook_began: Cell::new(None),
        }
    }
}

impl<O: Observer> Observer for Traced<'_, O> {
    fn may_run(&self, meta: &Meta) -> bool {
        self.inner.may_run(meta)
    }

    fn starting(&self, site: Site, name: Option<&str>) {
        self.inner.starting(site, name);
        // Last, so that only the hook is timed.
        self.hook_began.set(Some(Instant::now()));
    }

    fn finished(&self, site: Site, name: Option<&str>, outcome: Outcome) {
        let took = self.hook_began.take().map(|began| Took(began.elapsed()));
        self.inner.finished(site, name, outcome);
        let hook = describe(site, name);
        let took = took.unwrap_or(Took(Duration::ZERO));
        match outcome {
            Outcome::Returned => print(format_args!("{hook} took {took}")),
            Outcome::Panicked => print(format_args!("{hook} panicked after {took}")),
            // The one thing the exit run refuses to run.
            Outcome::Skipped => print(format_args!(
                "{hook} skipped (InChild::Skip in a forked child)"
            )),
        }
        LINES.fetch_add(1, Ordering::Relaxed);
    }
}

/// The run loop is done: the total, once per traced run, with the reason
/// the run began with and, if a hook changed it (`atexit::exit` in a hook),
/// the one it ends with.
pub(crate) fn run_finished(now: Option<ExitReason>) {
    if !ON.swap(false, Ordering::AcqRel) {
        return;
    }
    let lines = LINES.load(Ordering::Relaxed);
    let pid = std::process::id();
    if TOTAL_PRINTED_IN.swap(pid, Ordering::Relaxed) == pid && lines == 0 {
        // The C `exit` that a hook's `atexit::exit` ends with starts an
        // empty run of its own after the real one: nothing to say about it.
        return;
    }
    let (took, began) = began_ago();
    print(format_args!(
        "exit run of {} took {took} (reason: {})",
        Handlers(lines),
        Reasons(began, now)
    ));
}

/// The deadline ended the run (its own line names the hook cut off, whose
/// trace line never comes): what the trace knows instead of a total.
pub(crate) fn cut_off() {
    if !ON.swap(false, Ordering::AcqRel) {
        return;
    }
    let (took, began) = began_ago();
    let finished = LINES.load(Ordering::Relaxed);
    print(format_args!(
        "exit run cut off by the deadline after {took}, {} finished (reason: {})",
        Handlers(finished),
        Reasons(began, None)
    ));
}

fn began_ago() -> (Took, Option<ExitReason>) {
    match lock(&BEGAN).take() {
        Some((began, reason)) => (Took(began.elapsed()), Some(reason)),
        None => (Took(Duration::ZERO), None),
    }
}

/// One trace line, written with a single `write` so that it stays whole
/// on a stderr that other processes share (a forked child's, a pod's).
fn print(line: fmt::Arguments<'_>) {
    let mut text = String::with_capacity(128);
    let _ = writeln!(text, "atexit: trace: {line}");
    let _ = io::stderr().write_all(text.as_bytes());
}

/// A duration as `Duration`'s `Debug` shows it, to three decimals:
/// `1.204s`, `3.012ms`, `25.000µs`.
struct Took(Duration);

impl fmt::Display for Took {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3?}", self.0)
    }
}

/// `1 handler`, `3 handlers`.
struct Handlers(usize);

impl fmt::Display for Handlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.0 == 1 { "" } else { "s" };
        write!(f, "{} handler{plural}", self.0)
    }
}

/// `Signal(15)`, `Exit(Some(0))` (reasons as `atexit::reason()` gives
/// them), `Signal(15), then Exit(Some(9))` when a hook changed it.
struct Reasons(Option<ExitReason>, Option<ExitReason>);

impl fmt::Display for Reasons {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(began), Some(now)) if began != now => write!(f, "{began:?}, then {now:?}"),
            (Some(reason), _) | (None, Some(reason)) => write!(f, "{reason:?}"),
            (None, None) => f.write_str("unknown"),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

//! The time budget of the exit run ([`set_deadline`](crate::set_deadline)):
//! a watchdog thread, started only when a run begins with a budget set,
//! that names the hook still running and ends the process when time is up.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::error::describe;
use crate::process::reason::ExitReason;
use crate::process::{ending, threads, trace};
use crate::store::Site;

/// The budget in nanoseconds; `NONE` when unset.
static BUDGET_NANOS: AtomicU64 = AtomicU64::new(NONE);
const NONE: u64 = u64::MAX;

/// Set while a watchdog is counting, so that the run loop records which
/// hook is running only when someone may ask.
static WATCHING: AtomicBool = AtomicBool::new(false);
static RUNNING_HOOK: Mutex<Option<(Site, Option<Cow<'static, str>>)>> = Mutex::new(None);
static WATCHDOG: Mutex<Option<Thread>> = Mutex::new(None);

/// Sets the budget; see [`crate::set_deadline`].
pub(crate) fn set(budget: Duration) {
    let nanos = u64::try_from(budget.as_nanos())
        .unwrap_or(NONE - 1)
        .min(NONE - 1);
    BUDGET_NANOS.store(nanos, Ordering::Relaxed);
}

/// Starts the watchdog if a budget is set. Called once an exit run begins.
/// Windows ends a process about 5 seconds after a console close (and a
/// logoff or shutdown) whatever it does: a run for one of those events gets
/// at most this budget, so that the report and the status still come from
/// the crate, with a second left for the final flush.
#[cfg(windows)]
pub(crate) const SYSTEM_TIMEOUT_BUDGET: Duration = Duration::from_secs(4);

/// The budget for a run that ends the process for `reason`.
fn budget_nanos(reason: ExitReason) -> u64 {
    let nanos = BUDGET_NANOS.load(Ordering::Relaxed);
    #[cfg(windows)]
    if let ExitReason::Console(event) = reason {
        if event.has_system_timeout() {
            return nanos.min(SYSTEM_TIMEOUT_BUDGET.as_nanos() as u64);
        }
    }
    let _ = reason;
    nanos
}

pub(crate) fn start(reason: ExitReason) {
    let nanos = budget_nanos(reason);
    if nanos == NONE {
        return;
    }
    let budget = Duration::from_nanos(nanos);
    let end = Instant::now().checked_add(budget);
    WATCHING.store(true, Ordering::Release);
    let spawned = threads::spawn(
        "atexit-deadline",
        Box::new(move || watch(budget, end, reason)),
    );
    match spawned {
        Ok(handle) => *lock(&WATCHDOG) = Some(handle.thread().clone()),
        Err(err) => {
            WATCHING.store(false, Ordering::Release);
            let _ = writeln!(
                io::stderr(),
                "atexit: could not start the exit deadline watchdog ({err}); handlers run without a deadline"
            );
        }
    }
}

/// Stops the watchdog: the run finished in time.
pub(crate) fn stop() {
    if WATCHING.swap(false, Ordering::AcqRel) {
        if let Some(watchdog) = lock(&WATCHDOG).take() {
            watchdog.unpark();
        }
    }
}

/// Records the hook about to run, for the watchdog's message.
#[inline]
pub(crate) fn note_running(site: Site, name: Option<&str>) {
    if WATCHING.load(Ordering::Acquire) {
        record_running(site, name);
    }
}

#[cold]
fn record_running(site: Site, name: Option<&str>) {
    *lock(&RUNNING_HOOK) = Some((site, name.map(|name| Cow::Owned(name.to_owned()))));
}

fn watch(budget: Duration, end: Option<Instant>, reason: ExitReason) {
    // No end means a budget too large to represent: wait for `stop` alone.
    loop {
        if !WATCHING.load(Ordering::Acquire) {
            return;
        }
        match end {
            None => thread::park(),
            Some(end) => {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                thread::park_timeout(end - now);
            }
        }
    }
    let running = match lock(&RUNNING_HOOK).as_ref() {
        Some((site, name)) => describe(site, name.as_deref()),
        None => "an exit handler".to_owned(),
    };
    let _ = writeln!(
        io::stderr(),
        "atexit: exit deadline of {budget:?} exceeded while running {running}; skipping the remaining handlers"
    );
    trace::cut_off();
    ending::end_without_handlers(reason);
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(all(test, windows))]
mod tests {
    use super::*;
    use crate::process::reason::ConsoleEvent;

    #[test]
    fn a_console_close_run_fits_in_the_5_seconds_windows_gives() {
        let four = SYSTEM_TIMEOUT_BUDGET.as_nanos() as u64;
        for event in [
            ConsoleEvent::Close,
            ConsoleEvent::Logoff,
            ConsoleEvent::Shutdown,
        ] {
            assert_eq!(budget_nanos(ExitReason::Console(event)), four);
        }
        // No budget set: Ctrl-C and normal exits wait for every handler.
        assert_eq!(budget_nanos(ExitReason::Console(ConsoleEvent::CtrlC)), NONE);
        assert_eq!(budget_nanos(ExitReason::Exit(None)), NONE);
        // A shorter budget set by the program wins.
        set(Duration::from_secs(1));
        assert_eq!(
            budget_nanos(ExitReason::Console(ConsoleEvent::Close)),
            1_000_000_000
        );
        BUDGET_NANOS.store(NONE, Ordering::Relaxed);
    }
}

//! The one run loop: take the newest handler out, release the lock, call it
//! inside `catch_unwind`, report a panic, repeat until none is left.
//!
//! Because each handler is taken out under the lock and called after it is
//! released, a handler may register (its newcomer runs next), unregister
//! (the victim never runs), or ask how many are pending.
//!
//! What the caller needs to know along the way (whether a hook may run at
//! all, which one is running, how each one ended) it learns through
//! [`Observer`]; the run itself measures nothing.

use std::any::Any;
use std::borrow::Cow;
use std::cell::Cell;
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};

use crate::error::{describe, Failure, RunError};
use crate::registry::Shared;
use crate::store::{Callback, Meta, Site};

thread_local! {
    /// The registry whose handlers this thread is running (its address), so
    /// that a nested `run` of the same registry returns at once. A `const`
    /// `Cell` has no destructor, so it is still usable during `exit`.
    static RUNNING: Cell<usize> = const { Cell::new(0) };
}

/// What a run tells the layer that started it.
pub(crate) trait Observer {
    /// Whether the handler with `meta` may run here; one that may not is
    /// dropped unrun.
    fn may_run(&self, _meta: &Meta) -> bool {
        true
    }

    /// A handler is about to be called.
    fn starting(&self, _site: Site, _name: Option<&str>) {}

    /// A handler is done with: it returned or panicked (after `starting`,
    /// and after a panic was reported), or `may_run` refused it. Not called
    /// for a handler that ends the process.
    fn finished(&self, _site: Site, _name: Option<&str>, _outcome: Outcome) {}
}

/// How a handler ended, as [`Observer::finished`] learns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It returned.
    Returned,
    /// It panicked.
    Panicked,
    /// `may_run` refused it: dropped unrun.
    Skipped,
}

/// What to do with a failure besides handing it to the observer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    /// The caller gets a `RunError`.
    Return,
    /// Nobody is there to receive it: one line on stderr per failure.
    Stderr,
}

/// Runs `shared` to empty unless this thread is already running it.
pub(crate) fn run(
    shared: &Shared,
    report: Report,
    observer: &impl Observer,
) -> Result<(), RunError> {
    if RUNNING.get() == address(shared) {
        return Ok(());
    }
    let failures = run_marked(shared, report, observer);
    // The process goes on: give back the storage of what ran. (The exit
    // run skips this; the process is about to end.)
    shared.shrink_if_empty();
    RunError::from_failures(failures)
}

/// Runs everything left, even when nested in another run of the same
/// registry (a handler of `run_now` that ends the process), reporting on
/// stderr.
pub(crate) fn run_to_empty(shared: &Shared, observer: &impl Observer) {
    run_marked(shared, Report::Stderr, observer);
}

/// The registry this thread is running, to carry over to a thread that
/// runs one hook on its behalf.
pub(crate) fn running_here() -> usize {
    RUNNING.get()
}

/// Makes this thread count as running what [`running_here`] gave.
pub(crate) fn set_running_here(running: usize) {
    RUNNING.set(running);
}

fn address(shared: &Shared) -> usize {
    shared as *const Shared as usize
}

fn run_marked(shared: &Shared, report: Report, observer: &impl Observer) -> Vec<Failure> {
    let outer = RUNNING.replace(address(shared));
    let mut failures = Vec::new();
    loop {
        let mut store = shared.lock();
        // The common handler, with nothing to ask the observer first, is
        // kept to the few instructions of this loop.
        if let Some((callback, site)) = store.pop_plain() {
            drop(store);
            if let Some(failure) = run_plain(callback, site, report, observer) {
                failures.push(failure);
            }
            continue;
        }
        let popped = store.pop_uncommon();
        drop(store);
        let Some(popped) = popped else {
            break;
        };
        let failure = match popped.meta {
            None => run_plain(popped.callback, popped.site, report, observer),
            Some(meta) => run_with_meta(popped.callback, popped.site, *meta, report, observer),
        };
        if let Some(failure) = failure {
            failures.push(failure);
        }
    }
    RUNNING.set(outer);
    failures
}

#[inline(always)]
fn run_plain(
    callback: Callback,
    site: Site,
    report: Report,
    observer: &impl Observer,
) -> Option<Failure> {
    observer.starting(site, None);
    match panic::catch_unwind(AssertUnwindSafe(move || callback.call())) {
        Ok(()) => {
            observer.finished(site, None, Outcome::Returned);
            None
        }
        Err(payload) => Some(panicked(payload, site, None, report, observer)),
    }
}

#[inline(never)]
fn run_with_meta(
    callback: Callback,
    site: Site,
    meta: Meta,
    report: Report,
    observer: &impl Observer,
) -> Option<Failure> {
    if !observer.may_run(&meta) {
        drop_quietly(callback);
        observer.finished(site, meta.name.as_deref(), Outcome::Skipped);
        return None;
    }
    let name = meta.name;
    observer.starting(site, name.as_deref());
    match panic::catch_unwind(AssertUnwindSafe(move || callback.call())) {
        Ok(()) => {
            observer.finished(site, name.as_deref(), Outcome::Returned);
            None
        }
        Err(payload) => Some(panicked(payload, site, name, report, observer)),
    }
}

/// Reports a handler's panic and makes its failure.
#[cold]
fn panicked(
    payload: Box<dyn Any + Send>,
    site: Site,
    name: Option<Cow<'static, str>>,
    report: Report,
    observer: &impl Observer,
) -> Failure {
    let failure = Failure::new(payload_text(payload.as_ref()), site, name);
    drop_quietly(payload);
    if report == Report::Stderr {
        // Never `eprintln!`: it panics when stderr is gone.
        let _ = writeln!(
            io::stderr(),
            "atexit: {} panicked",
            describe(failure.location(), failure.name())
        );
    }
    observer.finished(site, failure.name(), Outcome::Panicked);
    failure
}

/// The text of a panic payload: `&str` and `String` payloads as they are.
pub(crate) fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Drops a value whose `Drop` is user code and may itself panic.
fn drop_quietly<T>(value: T) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(value))) {
        // Dropping this payload could panic again; leaking it cannot.
        std::mem::forget(payload);
    }
}

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
use std::cell::Cell;
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};

use crate::error::{describe, Failure, RunError};
use crate::registry::Shared;
use crate::store::{Meta, Popped, Site};

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

/// An observer that needs to know nothing.
pub(crate) struct Unobserved;

impl Observer for Unobserved {}

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
    while let Some(popped) = shared.pop() {
        if let Some(failure) = run_one(popped, report, observer) {
            failures.push(failure);
        }
    }
    RUNNING.set(outer);
    failures
}

fn run_one(popped: Popped, report: Report, observer: &impl Observer) -> Option<Failure> {
    let Popped {
        callback,
        site,
        meta,
    } = popped;
    let name = match meta {
        Some(meta) => {
            if !observer.may_run(&meta) {
                drop_quietly(callback);
                observer.finished(site, meta.name.as_deref(), Outcome::Skipped);
                return None;
            }
            meta.name
        }
        None => None,
    };
    observer.starting(site, name.as_deref());
    let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || callback.call())) else {
        observer.finished(site, name.as_deref(), Outcome::Returned);
        return None;
    };
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
    Some(failure)
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

//! One run of a registry: take the newest handler out, release the lock,
//! call it inside `catch_unwind`, note a panic, repeat until none is left.
//!
//! Because each handler is taken out under the lock and called after it is
//! released, a handler may register (its newcomer runs next), unregister
//! (the victim never runs), or ask how many are pending.

use std::any::Any;
use std::cell::Cell;
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use crate::deadline;
use crate::error::{describe, Failure, RunError};
use crate::exit;
use crate::registry::Shared;
use crate::store::Popped;

thread_local! {
    /// The registry whose handlers this thread is running (its address), so
    /// that a nested `run` of the same registry returns at once. A `const`
    /// `Cell` has no destructor, so it is still usable during `exit`.
    static RUNNING: Cell<usize> = const { Cell::new(0) };
}

/// What to do with a failure besides returning it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    /// The caller gets a `RunError`.
    Return,
    /// Nobody is there to receive it: one line on stderr per failure.
    Stderr,
    /// The exit run: a line on stderr, and the exit run learns of it (for
    /// `set_failure_code`) even if it never returns to its caller.
    ExitRun,
}

/// Runs `shared` to empty unless this thread is already running it.
pub(crate) fn run(shared: &Shared, report: Report) -> Result<(), RunError> {
    let id = shared as *const Shared as usize;
    if RUNNING.get() == id {
        return Ok(());
    }
    let failures = run_marked(shared, report);
    // The process goes on: give back the storage of what ran. (The exit
    // run skips this; the process is about to end.)
    shared.shrink_if_empty();
    RunError::from_failures(failures)
}

/// The exit run: runs everything left, even when nested in another run of
/// the same registry (a handler of `run_now` that ends the process).
pub(crate) fn run_to_empty(shared: &Shared) {
    run_marked(shared, Report::ExitRun);
}

fn run_marked(shared: &Shared, report: Report) -> Vec<Failure> {
    let outer = RUNNING.replace(shared as *const Shared as usize);
    let mut failures = Vec::new();
    while let Some(popped) = shared.pop() {
        if let Some(failure) = run_one(popped, report) {
            failures.push(failure);
        }
    }
    RUNNING.set(outer);
    failures
}

fn run_one(popped: Popped, report: Report) -> Option<Failure> {
    let Popped {
        callback,
        site,
        meta,
    } = popped;
    let (name, owner_pid) = match meta {
        Some(meta) => (meta.name, meta.owner_pid),
        None => (None, None),
    };
    if owner_pid.is_some_and(|owner| owner != std::process::id()) {
        // A hook with `InChild::Skip`, inherited through `fork`.
        drop_quietly(callback);
        return None;
    }
    deadline::note_running(site, name.as_deref());
    let payload = panic::catch_unwind(AssertUnwindSafe(move || callback.call())).err()?;
    let failure = Failure::new(payload_text(payload.as_ref()), site, name);
    drop_quietly(payload);
    if report == Report::ExitRun {
        exit::note_failure();
    }
    if report != Report::Return {
        // Never `eprintln!`: it panics when stderr is gone.
        let _ = writeln!(
            io::stderr(),
            "atexit: {} panicked",
            describe(failure.location(), failure.name())
        );
    }
    Some(failure)
}

/// Runs `f` on a new thread and waits for it, carrying over what this
/// thread is running (so nested runs and exits behave as they would here).
/// A panic in `f` is re-raised here, to be caught and reported by the run.
/// An exit that `f` requests during the exit run is carried out here, on
/// the thread that owns the run.
pub(crate) fn on_new_thread<F: FnOnce() + Send + 'static>(f: F) {
    let slot = Arc::new(Mutex::new(Some(f)));
    let running = RUNNING.get();
    let owns_exit = exit::owns_exit_run();
    let (exit_request, exit_requested) = mpsc::channel();
    let spawned = {
        let slot = Arc::clone(&slot);
        thread::Builder::new()
            .name("atexit-hook".into())
            .spawn(move || {
                RUNNING.set(running);
                if owns_exit {
                    exit::stand_in_for_owner(exit_request);
                } else {
                    drop(exit_request);
                }
                if let Some(f) = take(&slot) {
                    f();
                }
            })
    };
    match spawned {
        Ok(thread) => {
            // Every sender is gone once the thread has ended; a code
            // arrives only if the hook called `atexit::exit`.
            if let Ok(code) = exit_requested.recv() {
                exit::exit(code);
            }
            if let Err(payload) = thread.join() {
                panic::resume_unwind(payload);
            }
        }
        // No thread to be had: run it here rather than not at all.
        Err(_) => {
            if let Some(f) = take(&slot) {
                f();
            }
        }
    }
}

fn take<F>(slot: &Mutex<Option<F>>) -> Option<F> {
    slot.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take()
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

//! [`Hook::on_new_thread`](crate::Hook::on_new_thread): one hook run on a
//! thread of its own, which the run waits for, with fresh thread-locals.

use std::panic;
use std::sync::{Arc, Mutex};

use crate::process::exit_run;
use crate::process::handoff::handoff;
use crate::process::threads;
use crate::registry::run;

/// Runs `f` on a new thread and waits for it, carrying over what this
/// thread is running (so nested runs and exits behave as they would here).
/// A panic in `f` is re-raised here, to be caught and reported by the run.
/// An exit that `f` requests during the exit run is carried out here, on
/// the thread that owns the run.
pub(crate) fn run_on_new_thread<F: FnOnce() + Send + 'static>(f: F) {
    let slot = Arc::new(Mutex::new(Some(f)));
    let running = run::running_here();
    let owns_exit = exit_run::owns_exit_run();
    let (exit_request, exit_requested) = handoff();
    let spawned = {
        let slot = Arc::clone(&slot);
        threads::spawn(
            "atexit-hook",
            Box::new(move || {
                run::set_running_here(running);
                if owns_exit {
                    exit_run::stand_in_for_owner(exit_request);
                } else {
                    drop(exit_request);
                }
                if let Some(f) = take(&slot) {
                    f();
                }
            }),
        )
    };
    match spawned {
        Ok(thread) => {
            // The giver is gone once the thread has ended; a code arrives
            // only if the hook called `atexit::exit`.
            if let Some(code) = exit_requested.take() {
                exit_run::exit(code);
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

//! What a part of the crate above the process layer (the guardian) needs to
//! learn of the process's ending: that the exit run finished, and that
//! this process is a child made by `fork`. It hands its functions in here.

use std::sync::OnceLock;

struct Observers {
    run_finished: fn(),
    forked_child: fn(),
}

static OBSERVERS: OnceLock<Observers> = OnceLock::new();

/// Sets the functions to call; the first call wins. (Only the guardian
/// observes: on Linux, with the `guardian` feature.)
#[cfg_attr(not(all(target_os = "linux", feature = "guardian")), allow(dead_code))]
pub(crate) fn observe(run_finished: fn(), forked_child: fn()) {
    let _ = OBSERVERS.set(Observers {
        run_finished,
        forked_child,
    });
}

/// The exit run has finished: the process ends cleanly now.
pub(crate) fn run_finished() {
    if let Some(observers) = OBSERVERS.get() {
        (observers.run_finished)();
    }
}

/// In a child made by `fork`, in the fork hook.
pub(crate) fn forked_child() {
    if let Some(observers) = OBSERVERS.get() {
        (observers.forked_child)();
    }
}

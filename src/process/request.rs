//! The stop request of [`Shutdown`](crate::Shutdown): the first handled
//! signal of a `Shutdown` set asks the program to stop, and starts nothing.
//! Futures and threads waiting for it are woken; once the program ends by
//! any path, the exit run is for that signal and the process dies of it.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Condvar, Mutex};
use std::task::Waker;

/// The signal that asked the program to stop; 0 until one has.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Who waits for the request: the wakers of pending futures, and blocked
/// threads (the condition variable).
static WAITING: Mutex<Vec<Waker>> = Mutex::new(Vec::new());
static ARRIVED: Condvar = Condvar::new();

fn waiting() -> std::sync::MutexGuard<'static, Vec<Waker>> {
    WAITING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The signal of the request, if one arrived.
pub(crate) fn signal() -> Option<i32> {
    match SIGNAL.load(Ordering::Acquire) {
        0 => None,
        signal => Some(signal),
    }
}

/// Records the request (the first one only) and wakes everyone waiting.
#[cfg_attr(not(all(unix, feature = "signal")), allow(dead_code))]
pub(crate) fn request(signal: i32) {
    if SIGNAL
        .compare_exchange(0, signal, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    let wakers = std::mem::take(&mut *waiting());
    ARRIVED.notify_all();
    for waker in wakers {
        waker.wake();
    }
}

/// Whether the request arrived; if not, `waker` is woken when it does.
#[cfg_attr(not(all(unix, feature = "signal")), allow(dead_code))]
pub(crate) fn arrived_or_wake(waker: &Waker) -> bool {
    if signal().is_some() {
        return true;
    }
    let mut waiting = waiting();
    // Checked again under the lock: `request` takes the wakers under it.
    if signal().is_some() {
        return true;
    }
    if !waiting.iter().any(|known| known.will_wake(waker)) {
        waiting.push(waker.clone());
    }
    false
}

/// Blocks until the request arrives.
#[cfg_attr(not(all(unix, feature = "signal")), allow(dead_code))]
pub(crate) fn wait() {
    let mut waiting = waiting();
    while signal().is_none() {
        waiting = ARRIVED
            .wait(waiting)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
    }
}

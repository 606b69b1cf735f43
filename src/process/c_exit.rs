//! Who may call the C library's `exit`, and how the others get it called.
//!
//! Only a thread already inside `exit` may call it again: since glibc 2.41
//! a call from a second thread blocks while another thread is inside `exit`
//! (BZ 31997), where older versions let both run. An owner of the exit run
//! outside `exit` (the `atexit-signals` thread) hands its final call to a
//! thread waiting inside it, if there is one.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

use crate::process::ending::park_forever;
use crate::sys;

thread_local! {
    /// Whether this thread is inside the C library's `exit` (in our exit
    /// hook), where a nested `exit` is defined on every glibc version.
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// An exit code handed to a thread waiting inside the C `exit`.
static HANDED_CODE: Mutex<Option<i32>> = Mutex::new(None);
static CODE_HANDED: Condvar = Condvar::new();
/// How many threads wait inside the C `exit` for another's run to end.
static WAITING: AtomicU64 = AtomicU64::new(0);

/// This thread has entered the C `exit` (our exit hook runs on it).
pub(crate) fn entered() {
    INSIDE.set(true);
}

/// Inside the C `exit` while another thread owns the run: waits, in case
/// that owner cannot call `exit` itself and hands its code over.
pub(crate) fn wait_for_handed_code() -> ! {
    WAITING.fetch_add(1, Ordering::AcqRel);
    let mut handed = lock(&HANDED_CODE);
    loop {
        if let Some(code) = handed.take() {
            drop(handed);
            // Nested in our own exit hook, on this thread: glibc carries on
            // with the C exit entries left, then ends with `code`.
            sys::exit_process(code);
        }
        handed = CODE_HANDED
            .wait(handed)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
    }
}

/// Ends the process with `code` through the C library's `exit`, from the
/// owner of a finished run.
pub(crate) fn exit_with(code: i32) -> ! {
    if !INSIDE.get() && WAITING.load(Ordering::Acquire) > 0 {
        // Calling `exit` here would block on glibc 2.41 behind the thread
        // already inside it: let that thread make the call.
        *lock(&HANDED_CODE) = Some(code);
        CODE_HANDED.notify_one();
        park_forever();
    }
    sys::exit_process(code)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

//! The C library's exit machinery, fork hooks and process-ending calls.
//!
//! Every callback handed to the C library is `extern "C"` and never lets a
//! panic escape: handlers run under `catch_unwind` in `run`, and each
//! callback here catches whatever is left.

use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};

use std::sync::{Arc, Weak};

use crate::exit;
use crate::global;
use crate::registry::{self, Shared};
use crate::sys::Lock;

/// Runs `f`, and if it panics says so on stderr instead of unwinding into C
/// (which would abort the process and skip the remaining exit entries).
fn never_unwind(what: &str, f: impl FnOnce()) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
        std::mem::forget(payload);
        let _ = writeln!(io::stderr(), "atexit: internal error in {what}");
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod exit_hook {
    use std::io::{self, Write};
    use std::os::raw::{c_int, c_void};
    use std::ptr;

    extern "C" {
        /// glibc's `on_exit`: like `atexit`, and the callback learns the
        /// exit status. Not in the `libc` crate.
        fn on_exit(callback: extern "C" fn(c_int, *mut c_void), arg: *mut c_void) -> c_int;
    }

    extern "C" fn at_exit(status: c_int, _arg: *mut c_void) {
        super::never_unwind("the exit run", || {
            crate::exit::on_process_exit(Some(status))
        });
    }

    pub(crate) fn install() {
        // SAFETY: `at_exit` is a plain function that lives as long as the
        // program, ignores its argument (null), and never unwinds.
        let rc = unsafe { on_exit(at_exit, ptr::null_mut()) };
        if rc != 0 {
            let _ = writeln!(
                io::stderr(),
                "atexit: on_exit failed; handlers will not run at exit"
            );
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod exit_hook {
    use std::io::{self, Write};

    extern "C" fn at_exit() {
        super::never_unwind("the exit run", || crate::exit::on_process_exit(None));
    }

    pub(crate) fn install() {
        // SAFETY: `at_exit` is a plain function that lives as long as the
        // program and never unwinds.
        let rc = unsafe { libc::atexit(at_exit) };
        if rc != 0 {
            let _ = writeln!(
                io::stderr(),
                "atexit: atexit() failed; handlers will not run at exit"
            );
        }
    }
}

/// Asks the C library to call the exit run when the process exits.
pub(crate) fn install_exit_hook() {
    exit_hook::install();
}

/// The `Registry` values locked by `before_fork`, to release after it.
/// Only the fork hooks touch it, and the C library runs those one fork at
/// a time.
static HELD_ACROSS_FORK: Lock<Vec<Arc<Shared>>> = Lock::new(Vec::new());

extern "C" fn before_fork() {
    // Wait for any registration in progress and keep every registry lock
    // across the fork, so that the child's copies are whole. The guards are
    // leaked on purpose: the hooks below release the locks on both sides.
    never_unwind("the fork prepare hook", || {
        let live = registry::live_registries().lock();
        let held: Vec<Arc<Shared>> = live.iter().filter_map(Weak::upgrade).collect();
        global::shared().raw_lock().hold_for_fork();
        for shared in &held {
            shared.raw_lock().hold_for_fork();
        }
        *HELD_ACROSS_FORK.lock() = held;
        std::mem::forget(live);
    });
}

fn release_fork_locks() {
    let held = std::mem::take(&mut *HELD_ACROSS_FORK.lock());
    // SAFETY: `before_fork` ran on this thread just before `fork` and leaked
    // one guard of each of these locks (the process-wide registry's, those
    // of `held`, and the list's); no other guard can exist, since every
    // other thread that wants them is waiting, so ending those holds here is
    // what dropping the guards would have done.
    unsafe {
        global::shared().raw_lock().release_after_fork();
        for shared in &held {
            shared.raw_lock().release_after_fork();
        }
        registry::live_registries().release_after_fork();
    }
    // Dropped after the locks are released: this may free a registry.
    drop(held);
}

extern "C" fn after_fork_in_parent() {
    never_unwind("the fork parent hook", release_fork_locks);
}

extern "C" fn after_fork_in_child() {
    never_unwind("the fork child hook", || {
        release_fork_locks();
        exit::after_fork_in_child();
    });
}

/// Keeps the registry lock whole across `fork` (see `before_fork`).
pub(crate) fn install_fork_hooks() {
    // SAFETY: the three hooks are plain functions that live as long as the
    // program and never unwind.
    let rc = unsafe {
        libc::pthread_atfork(
            Some(before_fork),
            Some(after_fork_in_parent),
            Some(after_fork_in_child),
        )
    };
    if rc != 0 {
        let _ = writeln!(
            io::stderr(),
            "atexit: pthread_atfork failed; a child forked during a registration may hang at exit"
        );
    }
}

/// The C library's `exit`: from inside an exit handler, glibc carries on
/// with the entries left and then ends the process with `code`.
pub(crate) fn exit_process(code: i32) -> ! {
    // SAFETY: `exit` may be called from any thread; the callers serialise
    // themselves (see `exit::exit`), and a nested call from an exit handler
    // is supported by glibc.
    unsafe { libc::exit(code) }
}

/// Ends the process now: no handler, no C exit entry, no stdio flush.
pub(crate) fn exit_immediately(code: i32) -> ! {
    // SAFETY: `_exit` is async-signal-safe and touches no process state.
    unsafe { libc::_exit(code) }
}

/// Writes out whatever C stdio still buffers.
#[cfg(feature = "signal")]
pub(crate) fn flush_c_stdio() {
    // SAFETY: `fflush(NULL)` flushes every open output stream; it takes the
    // stream locks itself.
    unsafe {
        libc::fflush(std::ptr::null_mut());
    }
}

/// Restores the default action of `signal`, so that the next one ends the
/// process at once.
#[cfg(feature = "signal")]
pub(crate) fn restore_default_action(signal: i32) {
    // SAFETY: installing `SIG_DFL` has no preconditions; `signal` was
    // validated when it was first handled.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
    }
}

/// Restores the default action of `signal`, unblocks it and raises it on
/// this thread: for a terminating signal, the process dies of it here.
#[cfg(feature = "signal")]
pub(crate) fn raise_default(signal: i32) {
    restore_default_action(signal);
    // SAFETY: `sigemptyset` initialises the zeroed set before use; unblocking
    // and raising a validated signal number have no other preconditions.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(signal);
    }
}

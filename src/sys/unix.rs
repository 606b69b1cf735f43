//! The C library's exit machinery, fork hooks and process-ending calls.
//!
//! The process layer hands in plain functions; the `extern "C"` callbacks
//! given to the C library call them and never let a panic escape.

use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::OnceLock;

/// Runs `f`, and if it panics says so on stderr instead of unwinding into C
/// (which would abort the process and skip the remaining exit entries).
fn never_unwind(what: &str, f: impl FnOnce()) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
        std::mem::forget(payload);
        let _ = writeln!(io::stderr(), "atexit: internal error in {what}");
    }
}

/// What the exit hook calls, with the exit status where the C library
/// tells it.
static ON_EXIT: OnceLock<fn(Option<i32>)> = OnceLock::new();

fn call_on_exit(status: Option<i32>) {
    never_unwind("the exit run", || {
        if let Some(on_exit) = ON_EXIT.get() {
            on_exit(status);
        }
    });
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
        super::call_on_exit(Some(status));
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
        super::call_on_exit(None);
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

/// Asks the C library to call `on_exit` when the process exits. Each call
/// adds one more entry to the C library's list; the first `on_exit` given
/// is the one every entry calls.
pub(crate) fn install_exit_hook(on_exit: fn(Option<i32>)) {
    let _ = ON_EXIT.set(on_exit);
    exit_hook::install();
}

/// What the fork hooks call: before `fork`, then in the parent or the child.
struct ForkHooks {
    prepare: fn(),
    parent: fn(),
    child: fn(),
}

static FORK_HOOKS: OnceLock<ForkHooks> = OnceLock::new();

extern "C" fn before_fork() {
    never_unwind("the fork prepare hook", || {
        if let Some(hooks) = FORK_HOOKS.get() {
            (hooks.prepare)();
        }
    });
}

extern "C" fn after_fork_in_parent() {
    never_unwind("the fork parent hook", || {
        if let Some(hooks) = FORK_HOOKS.get() {
            (hooks.parent)();
        }
    });
}

extern "C" fn after_fork_in_child() {
    never_unwind("the fork child hook", || {
        if let Some(hooks) = FORK_HOOKS.get() {
            (hooks.child)();
        }
    });
}

/// Has `prepare` called just before every `fork`, and `parent` or `child`
/// just after it on each side. Call once.
pub(crate) fn install_fork_hooks(prepare: fn(), parent: fn(), child: fn()) {
    if FORK_HOOKS
        .set(ForkHooks {
            prepare,
            parent,
            child,
        })
        .is_err()
    {
        return;
    }
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

/// Begins a normal exit with `code` from a thread outside the exit run.
/// Rust's std lets one thread through and parks any other that calls it at
/// the same time; the C library's exit entries (ours among them) run on
/// the thread let through.
pub(crate) fn begin_exit(code: i32) -> ! {
    std::process::exit(code)
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

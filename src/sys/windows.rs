//! The C runtime's exit machinery, console control events and
//! process-ending calls on Windows.
//!
//! The process layer hands in plain functions; the callbacks given to the
//! C runtime and to the console never let a panic escape.

use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::OnceLock;

use windows_sys::Win32::System::Threading::{GetCurrentProcess, TerminateProcess};

/// Runs `f`, and if it panics says so on stderr instead of unwinding into
/// the C runtime or the system (which would abort the process).
fn never_unwind<T>(what: &str, fallback: T, f: impl FnOnce() -> T) -> T {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(payload) => {
            std::mem::forget(payload);
            let _ = writeln!(io::stderr(), "atexit: internal error in {what}");
            fallback
        }
    }
}

/// What the exit hook calls. The C runtime's `atexit` does not tell it the
/// exit status.
static ON_EXIT: OnceLock<fn(Option<i32>)> = OnceLock::new();

extern "C" fn at_exit() {
    never_unwind("the exit run", (), || {
        if let Some(on_exit) = ON_EXIT.get() {
            on_exit(None);
        }
    });
}

/// Asks the C runtime to call `on_exit` when the process exits (`main`
/// returning, the C `exit`). Each call adds one more entry; the first
/// `on_exit` given is the one every entry calls. `ExitProcess`, which
/// `std::process::exit` calls, runs none of them.
pub(crate) fn install_exit_hook(on_exit: fn(Option<i32>)) {
    let _ = ON_EXIT.set(on_exit);
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

/// Windows has no `fork`: there is nothing to hook, and `InChild` never
/// applies.
pub(crate) fn install_fork_hooks(_prepare: fn(), _parent: fn(), _child: fn()) {}

/// Begins a normal exit with `code` from a thread outside the exit run:
/// the C runtime's `exit`, which runs its exit entries (ours among them).
/// A second thread calling it meanwhile waits on the C runtime's exit lock
/// until the first ends the process.
pub(crate) fn begin_exit(code: i32) -> ! {
    // SAFETY: `exit` may be called from any thread; the C runtime
    // serialises concurrent calls with its exit lock.
    unsafe { libc::exit(code) }
}

/// The C runtime's `exit`, from the thread inside its exit entries: the
/// lock it holds is recursive, and the nested call carries on with the
/// entries left, then ends the process with `code`.
pub(crate) fn exit_process(code: i32) -> ! {
    // SAFETY: as in `begin_exit`; a nested call from an exit entry on the
    // same thread re-enters the C runtime's recursive exit lock.
    unsafe { libc::exit(code) }
}

/// Ends the process now with `code` (an exit code, or an NTSTATUS such as
/// `STATUS_CONTROL_C_EXIT` given as its bits): no handler, no C exit
/// entry, no DLL detach (whose locks a stopped thread may hold).
pub(crate) fn exit_immediately(code: i32) -> ! {
    // SAFETY: the pseudo-handle of the current process is always valid;
    // terminating it is the intended effect.
    unsafe {
        TerminateProcess(GetCurrentProcess(), code as u32);
    }
    // TerminateProcess on the current process does not return; should it
    // ever, do not fall through into code that assumes the process is gone.
    loop {
        std::thread::park();
    }
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

#[cfg(feature = "signal")]
pub(crate) use console::install_console_handler;

/// The console control handler, for `handle_signals`.
#[cfg(feature = "signal")]
mod console {
    use std::io;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::OnceLock;

    use windows_sys::core::BOOL;
    use windows_sys::Win32::System::Console::SetConsoleCtrlHandler;

    use super::never_unwind;

    /// What the console control handler calls with each event; its answer is
    /// whether the event was handled (else the next handler, finally the
    /// system's default, which ends the process).
    static ON_CONSOLE_EVENT: OnceLock<fn(u32) -> bool> = OnceLock::new();
    static CONSOLE_HANDLER_INSTALLED: AtomicBool = AtomicBool::new(false);

    /// Called by the system on a thread it creates for each console event.
    unsafe extern "system" fn console_handler(event: u32) -> BOOL {
        let handled = never_unwind("the console control handler", false, || {
            ON_CONSOLE_EVENT
                .get()
                .is_some_and(|on_event| on_event(event))
        });
        BOOL::from(handled)
    }

    /// Has `on_event` called for every console control event (Ctrl-C,
    /// Ctrl-Break, close, logoff, shutdown). The first `on_event` given is the
    /// one used; callers serialise their calls.
    pub(crate) fn install_console_handler(on_event: fn(u32) -> bool) -> io::Result<()> {
        let _ = ON_CONSOLE_EVENT.set(on_event);
        if CONSOLE_HANDLER_INSTALLED.load(Ordering::Acquire) {
            return Ok(());
        }
        // SAFETY: `console_handler` is a plain function that lives as long as
        // the program and never unwinds; adding a handler has no other
        // precondition.
        let ok = unsafe { SetConsoleCtrlHandler(Some(console_handler), 1) };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        CONSOLE_HANDLER_INSTALLED.store(true, Ordering::Release);
        Ok(())
    }
}

//! The last step: ending the process without running anything more, with
//! the status the run would have given.

#[cfg(feature = "signal")]
use std::io::{self, Write};
#[cfg(feature = "signal")]
use std::time::Duration;

#[cfg(feature = "signal")]
use crate::process::handoff::handoff;
use crate::process::reason::ExitReason;
#[cfg(feature = "signal")]
use crate::process::threads;
use crate::sys;

/// Ends the process at once with the status `reason` implies, running no
/// more handlers: the deadline's last resort.
pub(crate) fn end_without_handlers(reason: ExitReason) -> ! {
    match reason {
        ExitReason::Exit(code) => sys::exit_immediately(code.unwrap_or(1)),
        #[cfg(all(unix, feature = "signal"))]
        ExitReason::Signal(signal) => die_of(signal),
        // Signal runs exist only with the `signal` feature, and on Unix.
        #[cfg(not(all(unix, feature = "signal")))]
        ExitReason::Signal(signal) => sys::exit_immediately(128 + signal),
        ExitReason::Panic => std::process::abort(),
        #[cfg(windows)]
        ExitReason::Console(event) => sys::exit_immediately(event.exit_status() as i32),
    }
}

/// Ends the process by `signal` itself, now.
#[cfg(all(unix, feature = "signal"))]
pub(crate) fn die_of(signal: i32) -> ! {
    // Not signal-hook's `emulate_default_handler`: it refuses real-time
    // signals, which `handle_signals_for` accepts.
    sys::raise_default(signal);
    // Still alive: the signal did not end the process (blocked elsewhere,
    // or ignored by default). Use the shell's convention for it.
    sys::exit_immediately(128 + signal)
}

/// Another thread is ending the process; this one has nothing left to do.
pub(crate) fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// Writes out what stdout and C stdio still buffer, waiting 100 ms at most:
/// another thread may hold the stdout lock forever (blocked on a full pipe),
/// and a signal must still end the process.
#[cfg(feature = "signal")]
pub(crate) fn flush_briefly() {
    let (done, flushed) = handoff();
    let flusher = threads::spawn(
        "atexit-flush",
        Box::new(move || {
            let _ = io::stdout().flush();
            sys::flush_c_stdio();
            done.give(());
        }),
    );
    if flusher.is_ok() {
        let _ = flushed.take_within(Duration::from_millis(100));
    }
}

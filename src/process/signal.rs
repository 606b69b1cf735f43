//! Running the handlers on SIGINT, SIGTERM, SIGHUP (or a chosen set), then
//! dying of that same signal.
//!
//! The operating system's handler (installed through `signal-hook-registry`)
//! only records the signal and wakes a named thread, `atexit-signals`; the
//! handlers run there, never in signal context.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use libc::c_int;

use crate::error::Error;
use crate::process::ending::{die_of, flush_briefly};
use crate::process::exit_run::{self, Begin};
use crate::process::reason::ExitReason;
use crate::process::{request, threads};
use crate::sys;

/// What a handled signal does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    /// `handle_signals`: the exit run, then death by the signal.
    Exit,
    /// `Shutdown`: a stop request the program acts on; the exit run waits
    /// for the program to end (or for the grace period).
    Request,
}

impl Mode {
    fn by(self) -> &'static str {
        match self {
            Mode::Exit => "handle_signals",
            Mode::Request => "Shutdown",
        }
    }
}

struct Installed {
    signals: Vec<(c_int, Mode)>,
}

static INSTALLED: Mutex<Option<Installed>> = Mutex::new(None);

/// How long after the first handled signal another one still counts as the
/// same stop request, unless [`set_coalesce_window`] says otherwise.
///
/// Real senders often deliver one request twice: coreutils `timeout`
/// signals the program and then its process group (microseconds apart), a
/// closed terminal sends SIGHUP from the shell and then from the kernel
/// (about 0.3 ms apart), systemd with `SendSIGHUP=yes` sends SIGTERM and
/// SIGHUP together. Those duplicates must not cut the handlers short. A
/// person pressing Ctrl-C a second time, or a supervisor escalating, comes
/// much later than this window and still ends the process at once.
pub const COALESCE_WINDOW: Duration = Duration::from_millis(100);

/// Sets how long after the first handled signal any other handled signal
/// (whatever its number) is taken as the same stop request and ignored;
/// [`COALESCE_WINDOW`] until set. After the window, a handled signal ends
/// the process at once by that signal, skipping the handlers not yet run.
/// `Duration::ZERO` makes every later signal end the process.
///
/// ```
/// use std::time::Duration;
/// // A supervisor that re-sends SIGTERM every 500 ms: treat resends as one.
/// atexit::set_coalesce_window(Duration::from_secs(1));
/// # atexit::set_coalesce_window(atexit::COALESCE_WINDOW);
/// ```
pub fn set_coalesce_window(window: Duration) {
    let nanos = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
    WINDOW_NANOS.store(nanos, Ordering::Relaxed);
}

/// The coalescing window in nanoseconds, read in signal context.
static WINDOW_NANOS: AtomicU64 = AtomicU64::new(COALESCE_WINDOW.as_nanos() as u64);

/// SIGINT, SIGTERM and SIGHUP run the registered handlers, and then the
/// process dies of that signal.
///
/// From now on, when one of these signals arrives, the handlers run newest
/// first on the `atexit-signals` thread; then the default action of the
/// signal is restored and the signal raised again, so a shell or supervisor
/// sees "killed by SIGTERM" (status 143 in a shell), not a made-up exit code.
///
/// Handled signals that arrive within [`COALESCE_WINDOW`] (100 ms) of the
/// first are the same stop request, whatever their numbers, and are
/// ignored: `timeout`, a closed terminal and systemd often deliver one
/// request twice. A handled signal after that window ends the process at
/// once by that signal ("press Ctrl-C again to force quit"), skipping the
/// handlers not yet run. A handled signal that arrives while the process is
/// already exiting normally (not because of a signal) also ends it at once.
///
/// Calling it again is harmless.
///
/// ```no_run
/// atexit::handle_signals().expect("signal handling");
/// atexit::register(|| println!("saved state"));
/// loop {
///     std::thread::park(); // until SIGTERM: "saved state", then death by SIGTERM
/// }
/// ```
///
/// # Errors
///
/// [`Error::SignalSetup`] if the operating system refuses a handler.
///
/// # Coexistence
///
/// Other `signal-hook` and `signal-hook-registry` users (tokio's signal
/// support among them) keep receiving these signals: the registry calls
/// every registered action.
/// A library that replaces the process's signal action after this call
/// (with `sigaction`, as `ctrlc` does) takes the signal away from this crate.
pub fn handle_signals() -> Result<(), Error> {
    handle_signals_for(&[libc::SIGINT, libc::SIGTERM, libc::SIGHUP])
}

/// Like [`handle_signals`], for a chosen set of signals.
///
/// ```
/// let err = atexit::handle_signals_for(&[libc::SIGTERM, libc::SIGSEGV]).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "refused to handle signal 11 (SIGSEGV): a fault signal means the process state \
///      may be corrupt, so no handler should run on it; no signal handling was changed"
/// );
/// ```
///
/// # Errors
///
/// [`Error::ForbiddenSignal`], before anything is installed, if any number
/// in `signals` is 0, negative or out of range, cannot be caught (SIGKILL,
/// SIGSTOP), is a fault signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE), is
/// reserved by the C library, or does not end the process by default (so
/// the process could not die of it afterwards: SIGCHLD, SIGCONT, SIGURG,
/// SIGWINCH, SIGTSTP, SIGTTIN, SIGTTOU). A refused call changes nothing.
/// [`Error::SignalSetup`] if the operating system refuses a handler.
pub fn handle_signals_for(signals: &[c_int]) -> Result<(), Error> {
    install(signals, Mode::Exit)
}

/// What the first signal of a `Shutdown` set does, once `Shutdown` has
/// installed one: set by `install_requests` only, so that a program that
/// never makes a `Shutdown` does not carry the request and grace code.
static ON_REQUEST: OnceLock<fn(c_int)> = OnceLock::new();

/// `install(signals, Mode::Request)`, for `Shutdown`.
pub(crate) fn install_requests(signals: &[c_int]) -> Result<(), Error> {
    ON_REQUEST.get_or_init(|| on_request);
    install(signals, Mode::Request)
}

fn on_request(signal: c_int) {
    request::request(signal);
    start_grace_period(signal);
    // Later signals are decided in signal context (`sys::arrival`):
    // duplicates within the window are ignored, others end the process.
}

/// Handles `signals` the way `mode` says, all or none of them.
fn install(signals: &[c_int], mode: Mode) -> Result<(), Error> {
    for &signal in signals {
        check(signal)?;
    }
    if signals.is_empty() {
        return Ok(());
    }
    let mut installed = INSTALLED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(installed) = installed.as_ref() {
        for &signal in signals {
            if let Some(&(_, other)) = installed
                .signals
                .iter()
                .find(|&&(known, other)| known == signal && other != mode)
            {
                return Err(Error::SignalTaken {
                    signal,
                    by: other.by(),
                    wanted: mode.by(),
                });
            }
        }
    }
    match installed.as_mut() {
        Some(installed) => {
            for &signal in signals {
                if !installed.signals.iter().any(|&(known, _)| known == signal) {
                    sys::watch_arrivals_of(signal, std::process::id(), &WINDOW_NANOS)
                        .map_err(|err| setup_error(signal, &err))?;
                    installed.signals.push((signal, mode));
                }
            }
        }
        None => {
            // The socket and the thread first, so that a signal arriving as
            // soon as it is watched finds someone to wake.
            let wake_up = sys::wake_up_socket().map_err(|err| setup_error(signals[0], &err))?;
            threads::spawn(
                "atexit-signals",
                Box::new(move || {
                    wake_up.wait();
                    on_signal();
                }),
            )
            .map_err(|err| setup_error(signals[0], &err))?;
            for &signal in signals {
                sys::watch_arrivals_of(signal, std::process::id(), &WINDOW_NANOS)
                    .map_err(|err| setup_error(signal, &err))?;
            }
            *installed = Some(Installed {
                signals: signals.iter().map(|&signal| (signal, mode)).collect(),
            });
        }
    }
    Ok(())
}

fn setup_error(signal: c_int, err: &io::Error) -> Error {
    Error::SignalSetup {
        signal,
        cause: err.to_string(),
    }
}

/// Why `signal` may not be handled, if it may not.
fn check(signal: c_int) -> Result<(), Error> {
    let refuse = |reason| Err(Error::ForbiddenSignal { signal, reason });
    if signal <= 0 {
        return refuse("signal numbers start at 1");
    }
    if signal > max_signal() {
        return refuse("there is no signal with that number on this system");
    }
    match signal {
        libc::SIGKILL | libc::SIGSTOP => refuse("it cannot be caught"),
        libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE => refuse(
            "a fault signal means the process state may be corrupt, so no handler should run on it",
        ),
        libc::SIGABRT => refuse("abort() does not wait for handlers to finish"),
        libc::SIGCHLD
        | libc::SIGCONT
        | libc::SIGURG
        | libc::SIGWINCH
        | libc::SIGTSTP
        | libc::SIGTTIN
        | libc::SIGTTOU => refuse(
            "its default action does not end the process, so the process could not die of it",
        ),
        _ if is_reserved(signal) => refuse("the C library reserves it for its own threads"),
        _ => Ok(()),
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn max_signal() -> c_int {
    libc::SIGRTMAX()
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn max_signal() -> c_int {
    31
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn is_reserved(signal: c_int) -> bool {
    // Between the classic signals and SIGRTMIN: glibc's thread signals.
    signal >= 32 && signal < libc::SIGRTMIN()
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn is_reserved(_signal: c_int) -> bool {
    false
}

/// On the `atexit-signals` thread, once woken: for the first handled
/// signal that arrived (recorded in signal context), the exit run and then
/// death by it, or the stop request of `Shutdown`.
fn on_signal() {
    let Some(signal) = sys::first_signal() else {
        return;
    };
    if mode_of(signal) == Some(Mode::Request) {
        if let Some(on_request) = ON_REQUEST.get() {
            on_request(signal);
            return;
        }
    }
    run_and_die(signal)
}

fn mode_of(signal: c_int) -> Option<Mode> {
    let installed = INSTALLED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    installed.as_ref().and_then(|installed| {
        installed
            .signals
            .iter()
            .find(|&&(known, _)| known == signal)
            .map(|&(_, mode)| mode)
    })
}

/// The exit run for `signal`, then death by it.
fn run_and_die(signal: c_int) -> ! {
    match exit_run::begin(ExitReason::Signal(signal)) {
        Begin::Owner => {
            // Later signals are decided in signal context (`sys::arrival`):
            // duplicates within the window are ignored, others end the
            // process at once.
            exit_run::run_handlers();
            exit_run::finish();
            flush_briefly();
            die_of(signal)
        }
        // Already exiting: this signal is the user insisting.
        Begin::Nested | Begin::Elsewhere => die_of(signal),
    }
}

/// `Shutdown::grace`: nanoseconds, 0 for none.
static GRACE_NANOS: AtomicU64 = AtomicU64::new(0);

pub(crate) fn set_grace(grace: Duration) {
    let nanos = u64::try_from(grace.as_nanos()).unwrap_or(u64::MAX).max(1);
    GRACE_NANOS.store(nanos, Ordering::Relaxed);
}

/// If a grace period is set: a thread that starts the exit run itself when
/// the program has not ended that long after the request.
fn start_grace_period(signal: c_int) {
    let nanos = GRACE_NANOS.load(Ordering::Relaxed);
    if nanos == 0 {
        return;
    }
    let grace = Duration::from_nanos(nanos);
    let spawned = threads::spawn(
        "atexit-grace",
        Box::new(move || {
            thread::sleep(grace);
            if exit_run::is_exiting() {
                // The program is ending: its own exit run dies of `signal`.
                return;
            }
            let _ = writeln!(
                io::stderr(),
                "atexit: the program did not end within its {grace:?} grace period after signal {signal} ({}); running the exit handlers",
                crate::error::signal_name(signal)
            );
            run_and_die(signal);
        }),
    );
    if let Err(err) = spawned {
        let _ = writeln!(
            io::stderr(),
            "atexit: could not start the shutdown grace timer ({err}); the program must end by itself"
        );
    }
}

//! What the operating system's signal handler decides when a handled
//! signal arrives, in signal context: only atomics and async-signal-safe
//! calls.
//!
//! One stop request is often delivered as two signals microseconds apart
//! (coreutils `timeout` signals the child and then its process group; a
//! closed terminal sends SIGHUP from the shell and from the kernel; systemd
//! sends SIGTERM and then SIGHUP). Signals that arrive within the coalescing
//! window of the first are the same request and are swallowed; a signal
//! after the window is a deliberate second request and ends the process at
//! once by that signal.
//!
//! The first arrival wakes the `atexit-signals` thread by writing one byte
//! to a socket pair (`write` is async-signal-safe); the thread runs the
//! handlers, never this context.

use std::io::{self, Read};
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use super::unix::raise_default;

/// The first handled signal to arrive, 0 until one has.
static FIRST_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// When it arrived (`CLOCK_MONOTONIC`, nanoseconds); 0 until recorded.
static FIRST_AT: AtomicU64 = AtomicU64::new(0);
/// The end signal context writes to; -1 until `wake_up_socket` made it.
static WAKE: AtomicI32 = AtomicI32::new(-1);

/// The end the `atexit-signals` thread waits on until the first handled
/// signal arrives.
pub(crate) struct WakeUp {
    read: UnixStream,
}

/// Makes the wake-up channel (a socket pair, close-on-exec, as std makes
/// it on every Unix); call once, before any arrival is watched.
pub(crate) fn wake_up_socket() -> io::Result<WakeUp> {
    let (read, write) = UnixStream::pair()?;
    // Open for the life of the process: signal context writes to it at any
    // time.
    WAKE.store(write.into_raw_fd(), Ordering::Release);
    Ok(WakeUp { read })
}

impl WakeUp {
    /// Blocks until the first handled signal has arrived.
    pub(crate) fn wait(mut self) {
        let mut byte = [0u8];
        loop {
            match self.read.read(&mut byte) {
                Ok(1) => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                // The other end is never closed, and nothing else can fail
                // here: the recorded signal decides what happens.
                _ => return,
            }
        }
    }
}

/// The first handled signal that arrived, if any has.
pub(crate) fn first_signal() -> Option<i32> {
    match FIRST_SIGNAL.load(Ordering::Acquire) {
        0 => None,
        signal => Some(signal),
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds, never 0.
fn monotonic_nanos() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` is async-signal-safe and writes only `now`,
    // a valid timespec; CLOCK_MONOTONIC always exists on Linux and the BSDs.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now);
    }
    let nanos = (now.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(now.tv_nsec as u64);
    nanos.max(1)
}

/// In signal context, for every handled signal.
fn on_arrival(signal: i32, owner: u32, window_nanos: &AtomicU64) {
    // SAFETY: getpid is async-signal-safe.
    if unsafe { libc::getpid() } as u32 != owner {
        // A child made by `fork`: no `atexit-signals` thread listens there,
        // so the signal must end it now, as it would have without us.
        raise_default(signal);
        return;
    }
    let now = monotonic_nanos();
    if FIRST_SIGNAL
        .compare_exchange(0, signal, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        FIRST_AT.store(now, Ordering::Release);
        let wake = WAKE.load(Ordering::Acquire);
        if wake >= 0 {
            // SAFETY: write is async-signal-safe; `wake` is the socket's
            // other end, open for the life of the process, and the byte
            // lives on this stack for the call.
            unsafe { libc::write(wake, [1u8].as_ptr().cast(), 1) };
        }
        return;
    }
    // A later signal. 0 means the first is being recorded on another
    // thread at this very moment: the same request.
    let first_at = FIRST_AT.load(Ordering::Acquire);
    if first_at != 0 && now.saturating_sub(first_at) > window_nanos.load(Ordering::Relaxed) {
        raise_default(signal);
    }
}

/// Adds the arrival decision to `signal`, for the process `owner` (the one
/// that called `handle_signals`), with the coalescing window (nanoseconds)
/// that `window_nanos` holds at each arrival. Through `signal-hook-registry`,
/// so that other users of the same signal are still called.
pub(crate) fn watch_arrivals_of(
    signal: i32,
    owner: u32,
    window_nanos: &'static AtomicU64,
) -> io::Result<()> {
    // SAFETY: the action calls only getpid, clock_gettime, atomic
    // operations and `raise_default` (signal, sigemptyset, sigaddset,
    // pthread_sigmask, raise), all async-signal-safe; it allocates nothing
    // and takes no lock.
    unsafe {
        signal_hook_registry::register(signal, move || on_arrival(signal, owner, window_nanos))
    }
    .map(drop)
}

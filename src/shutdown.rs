//! [`Shutdown`]: a stop request the program acts on — drain, then end —
//! after which the handlers run and the process dies of the signal.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use libc::c_int;

use crate::error::Error;
use crate::process::signal;
use crate::process::{exit_hook, request};

/// A stop request from SIGINT, SIGTERM or SIGHUP (or a chosen set) that the
/// program acts on itself: stop accepting work, finish what is in flight,
/// then end — by any path — after which the exit handlers run and the
/// process dies of that first signal, so a supervisor sees the truth.
///
/// The first handled signal starts no exit run: it resolves every
/// [`requested`](Shutdown::requested) future (made before or after it, from
/// any clone), wakes [`wait`](Shutdown::wait), and sets
/// [`is_requested`](Shutdown::is_requested). When the program then ends
/// (`main` returns, `std::process::exit`, [`exit`](crate::exit)), the
/// handlers run with [`reason`](crate::reason) `Signal(n)` and the process
/// dies of signal `n`. Duplicates within
/// [`COALESCE_WINDOW`](crate::COALESCE_WINDOW) are the same request; a
/// handled signal after it ends the process at once (force quit).
///
/// With tokio and axum, three lines:
///
/// ```text
/// let shutdown = atexit::Shutdown::on_signals()?;
/// axum::serve(listener, app).with_graceful_shutdown(shutdown.requested()).await?;
/// // main returns: the handlers run, then the process dies of that signal
/// ```
///
/// Without an async runtime:
///
/// ```no_run
/// let shutdown = atexit::Shutdown::on_signals()?.grace(std::time::Duration::from_secs(10));
/// atexit::register(|| println!("flushed"));
/// shutdown.wait(); // until SIGTERM (or Ctrl-C, or SIGHUP)
/// println!("draining");
/// // returning from main: "flushed", then death by that signal
/// # Ok::<(), atexit::Error>(())
/// ```
#[derive(Clone)]
pub struct Shutdown {
    _private: (),
}

impl Shutdown {
    /// A stop request on SIGINT, SIGTERM or SIGHUP.
    ///
    /// # Errors
    ///
    /// As [`on`](Shutdown::on).
    pub fn on_signals() -> Result<Shutdown, Error> {
        Shutdown::on(&[libc::SIGINT, libc::SIGTERM, libc::SIGHUP])
    }

    /// A stop request on the chosen `signals`. Calling it again adds
    /// signals to the same request.
    ///
    /// # Errors
    ///
    /// [`Error::ForbiddenSignal`] for a signal that cannot be handled (as
    /// [`handle_signals_for`](crate::handle_signals_for) refuses it),
    /// [`Error::SignalTaken`] for one that `handle_signals` already
    /// handles, [`Error::SignalSetup`] if the system refuses; a refused call
    /// changes nothing.
    pub fn on(signals: &[c_int]) -> Result<Shutdown, Error> {
        signal::install_requests(signals)?;
        // The run at the end must happen, even with no handler registered,
        // for the process to die of the signal.
        exit_hook::ensure_armed();
        Ok(Shutdown { _private: () })
    }

    /// If the program has not ended `grace` after the request, the crate
    /// starts the exit run itself (the handlers run, then death by the
    /// signal), and says so on stderr. The last call wins.
    #[must_use]
    pub fn grace(self, grace: Duration) -> Shutdown {
        signal::set_grace(grace);
        self
    }

    /// A future that resolves once the stop request has arrived (at once if
    /// it has). Any number of them, from any clone.
    pub fn requested(&self) -> Requested {
        Requested { _private: () }
    }

    /// Whether the stop request has arrived.
    pub fn is_requested(&self) -> bool {
        request::signal().is_some()
    }

    /// The signal that asked the program to stop, once one has.
    pub fn signal(&self) -> Option<c_int> {
        request::signal()
    }

    /// Blocks the calling thread until the stop request arrives.
    pub fn wait(&self) {
        request::wait();
    }
}

/// The future of [`Shutdown::requested`]: ready once the stop request has
/// arrived. Runtime-agnostic: it only stores the task's waker.
#[must_use = "futures do nothing unless polled"]
pub struct Requested {
    _private: (),
}

impl Future for Requested {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if request::arrived_or_wake(cx.waker()) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("requested_by", &request::signal())
            .finish()
    }
}

impl fmt::Debug for Requested {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Requested")
            .field("arrived", &request::signal().is_some())
            .finish()
    }
}

//! [`ExitReason`], and the word it is kept in so that any thread can read
//! it without a lock.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why the exit run is happening, as [`reason`](crate::reason) reports it.
///
/// ```
/// // Outside the exit run (and inside `run_now`) there is no reason.
/// assert_eq!(atexit::reason(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExitReason {
    /// The process is exiting normally: `main` returned (also with `Err` or
    /// a panic), or `exit` was called. The status when it is known: on glibc
    /// always (`std::process::exit(4)` gives `Exit(Some(4))`, a panic in
    /// `main` `Exit(Some(101))`); elsewhere `None`.
    Exit(Option<i32>),
    /// A signal handled by [`handle_signals`](crate::handle_signals)
    /// arrived; the process will die of it once the run is over. Never on
    /// Windows, which reports `ExitReason::Console` instead.
    Signal(i32),
    /// A panic in a program built with `panic = "abort"`; the process
    /// aborts (SIGABRT) once the run is over.
    Panic,
    /// Windows only: a console control event handled by
    /// [`handle_signals`](crate::handle_signals) arrived; once the run is
    /// over the process ends with the status Windows gives that event
    /// ([`ConsoleEvent::exit_status`]).
    #[cfg(windows)]
    Console(ConsoleEvent),
}

/// Windows only: the console control events that
/// [`handle_signals`](crate::handle_signals) handles, as
/// [`reason`](crate::reason) reports them in [`ExitReason::Console`].
///
/// ```
/// # #[cfg(windows)] {
/// use atexit::ConsoleEvent;
/// assert_eq!(ConsoleEvent::CtrlC.exit_status(), 0xC000_013A);
/// # }
/// ```
#[cfg(windows)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConsoleEvent {
    /// Ctrl-C (`CTRL_C_EVENT`), also sent by `GenerateConsoleCtrlEvent`.
    CtrlC,
    /// Ctrl-Break (`CTRL_BREAK_EVENT`), also sent by
    /// `GenerateConsoleCtrlEvent`.
    CtrlBreak,
    /// The console window is being closed (`CTRL_CLOSE_EVENT`); Windows
    /// ends the process about 5 seconds later whatever it does.
    Close,
    /// A user is logging off (`CTRL_LOGOFF_EVENT`; only services see it).
    Logoff,
    /// The system is shutting down (`CTRL_SHUTDOWN_EVENT`; only services
    /// see it).
    Shutdown,
}

#[cfg(windows)]
impl ConsoleEvent {
    /// The event for the `dwCtrlType` a console handler receives.
    pub(crate) fn from_raw(raw: u32) -> Option<ConsoleEvent> {
        match raw {
            0 => Some(ConsoleEvent::CtrlC),
            1 => Some(ConsoleEvent::CtrlBreak),
            2 => Some(ConsoleEvent::Close),
            5 => Some(ConsoleEvent::Logoff),
            6 => Some(ConsoleEvent::Shutdown),
            _ => None,
        }
    }

    /// The `dwCtrlType` value of the event.
    pub(crate) fn raw(self) -> u32 {
        match self {
            ConsoleEvent::CtrlC => 0,
            ConsoleEvent::CtrlBreak => 1,
            ConsoleEvent::Close => 2,
            ConsoleEvent::Logoff => 5,
            ConsoleEvent::Shutdown => 6,
        }
    }

    /// The exit status of a process that the event ends when nothing
    /// handles it: the system's default handler calls `ExitProcess` with
    /// `STATUS_CONTROL_C_EXIT` (0xC000013A) for every event. The crate
    /// ends the process with the same status after the handlers ran.
    pub fn exit_status(self) -> u32 {
        0xC000_013A
    }

    /// Whether Windows ends the process on its own shortly after the event
    /// (about 5 seconds), whatever the handlers do.
    pub(crate) fn has_system_timeout(self) -> bool {
        matches!(
            self,
            ConsoleEvent::Close | ConsoleEvent::Logoff | ConsoleEvent::Shutdown
        )
    }
}

/// An `Option<ExitReason>` in one atomic word: the kind in the high 32
/// bits, the value in the low 32, 0 for none.
pub(crate) struct ReasonCell(AtomicU64);

const KIND_EXIT_KNOWN: u64 = 1 << 32;
const KIND_EXIT_UNKNOWN: u64 = 2 << 32;
const KIND_SIGNAL: u64 = 3 << 32;
const KIND_PANIC: u64 = 4 << 32;
#[cfg(windows)]
const KIND_CONSOLE: u64 = 5 << 32;

impl ReasonCell {
    pub(crate) const fn new() -> Self {
        ReasonCell(AtomicU64::new(0))
    }

    pub(crate) fn set(&self, reason: Option<ExitReason>) {
        let packed = match reason {
            None => 0,
            Some(ExitReason::Exit(Some(code))) => KIND_EXIT_KNOWN | u64::from(code as u32),
            Some(ExitReason::Exit(None)) => KIND_EXIT_UNKNOWN,
            Some(ExitReason::Signal(signal)) => KIND_SIGNAL | u64::from(signal as u32),
            Some(ExitReason::Panic) => KIND_PANIC,
            #[cfg(windows)]
            Some(ExitReason::Console(event)) => KIND_CONSOLE | u64::from(event.raw()),
        };
        self.0.store(packed, Ordering::Release);
    }

    pub(crate) fn get(&self) -> Option<ExitReason> {
        let packed = self.0.load(Ordering::Acquire);
        let value = packed as u32 as i32;
        match packed & !0xffff_ffff {
            KIND_EXIT_KNOWN => Some(ExitReason::Exit(Some(value))),
            KIND_EXIT_UNKNOWN => Some(ExitReason::Exit(None)),
            KIND_SIGNAL => Some(ExitReason::Signal(value)),
            KIND_PANIC => Some(ExitReason::Panic),
            #[cfg(windows)]
            KIND_CONSOLE => ConsoleEvent::from_raw(value as u32).map(ExitReason::Console),
            _ => None,
        }
    }
}

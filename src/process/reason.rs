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
    /// arrived; the process will die of it once the run is over.
    Signal(i32),
    /// A panic in a program built with `panic = "abort"`; the process
    /// aborts (SIGABRT) once the run is over.
    Panic,
}

/// An `Option<ExitReason>` in one atomic word: the kind in the high 32
/// bits, the value in the low 32, 0 for none.
pub(crate) struct ReasonCell(AtomicU64);

const KIND_EXIT_KNOWN: u64 = 1 << 32;
const KIND_EXIT_UNKNOWN: u64 = 2 << 32;
const KIND_SIGNAL: u64 = 3 << 32;
const KIND_PANIC: u64 = 4 << 32;

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
            _ => None,
        }
    }
}

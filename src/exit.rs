//! The exit run: what happens when the process ends through the C library's
//! `exit` (or a handled signal), [`exit`](crate::exit), and the state that
//! [`is_exiting`](crate::is_exiting) and [`reason`](crate::reason) report.
//!
//! One exit run at a time: the first thread to begin it owns it. Another
//! thread that tries to exit meanwhile waits forever, since the owner is
//! about to end the process; this thread nesting into it (a handler that
//! exits) carries it on.
//!
//! Only a thread already inside the C library's `exit` may call it again:
//! since glibc 2.41 a call from a second thread blocks while another thread
//! is inside `exit` (BZ 31997), where older versions let both run. So a
//! hook on a thread of its own hands an exit request to the owner of the
//! run, and an owner outside the C `exit` (the `atexit-signals` thread)
//! hands the final call to a thread waiting inside it, if there is one.

use std::cell::{Cell, RefCell};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Condvar, Mutex};

use crate::deadline;
use crate::global;
use crate::run;
use crate::sys;

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
}

static EXIT_RUN_ACTIVE: AtomicBool = AtomicBool::new(false);
/// The reason, packed: kind in the high 32 bits, value in the low 32.
static REASON: AtomicU64 = AtomicU64::new(0);
const KIND_EXIT_KNOWN: u64 = 1 << 32;
const KIND_EXIT_UNKNOWN: u64 = 2 << 32;
const KIND_SIGNAL: u64 = 3 << 32;
/// `set_failure_code`: 0 when unset, else `KIND_EXIT_KNOWN | code`.
static FAILURE_CODE: AtomicU64 = AtomicU64::new(0);
/// Whether a handler of the exit run failed, counting nested runs whose
/// outer loop never resumes (a handler that called `exit`).
static EXIT_RUN_FAILED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Whether this thread owns the exit run, or stands in for its owner
    /// (a hook on a thread of its own). `const` and `Drop`-free, so it can
    /// be read after thread-local destructors have run.
    static OWNER_HERE: Cell<bool> = const { Cell::new(false) };
    /// Whether this thread is inside the C library's `exit` (in our exit
    /// hook), where a nested `exit` is defined on every glibc version.
    static IN_C_EXIT: Cell<bool> = const { Cell::new(false) };
    /// Set on a hook's own thread that stands in for the owner: where an
    /// exit request goes. Touched only on such threads, whose thread-locals
    /// are alive, never on the exiting thread.
    static STAND_IN: Cell<bool> = const { Cell::new(false) };
    static HAND_TO_OWNER: RefCell<Option<mpsc::Sender<i32>>> = const { RefCell::new(None) };
}

/// An exit code handed to a thread waiting inside the C `exit`.
static HANDED_CODE: Mutex<Option<i32>> = Mutex::new(None);
static CODE_HANDED: Condvar = Condvar::new();
/// How many threads wait inside the C `exit` for another's run to end.
static WAITING_IN_C_EXIT: AtomicU64 = AtomicU64::new(0);

fn pack(reason: ExitReason) -> u64 {
    match reason {
        ExitReason::Exit(Some(code)) => KIND_EXIT_KNOWN | u64::from(code as u32),
        ExitReason::Exit(None) => KIND_EXIT_UNKNOWN,
        ExitReason::Signal(signal) => KIND_SIGNAL | u64::from(signal as u32),
    }
}

fn unpack(packed: u64) -> Option<ExitReason> {
    let value = packed as u32 as i32;
    match packed & !0xffff_ffff {
        KIND_EXIT_KNOWN => Some(ExitReason::Exit(Some(value))),
        KIND_EXIT_UNKNOWN => Some(ExitReason::Exit(None)),
        KIND_SIGNAL => Some(ExitReason::Signal(value)),
        _ => None,
    }
}

/// Who runs the handlers now that the process is ending.
pub(crate) enum Begin {
    /// This thread: run them, then end the process.
    Owner,
    /// This thread already owns the run (a handler is ending the process):
    /// carry on with the handlers left.
    Nested,
    /// Another thread owns the run and will end the process.
    Elsewhere,
}

pub(crate) fn begin(reason: ExitReason) -> Begin {
    if OWNER_HERE.get() {
        REASON.store(pack(reason), Ordering::Release);
        return Begin::Nested;
    }
    if EXIT_RUN_ACTIVE
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Begin::Elsewhere;
    }
    OWNER_HERE.set(true);
    REASON.store(pack(reason), Ordering::Release);
    deadline::start(reason);
    Begin::Owner
}

/// Whether this thread owns the exit run (for `run::on_new_thread`).
pub(crate) fn owns_exit_run() -> bool {
    OWNER_HERE.get()
}

/// Makes a hook's own thread stand in for the owner of the exit run: an
/// exit requested there is sent to `owner`, which carries the run on.
pub(crate) fn stand_in_for_owner(owner: mpsc::Sender<i32>) {
    OWNER_HERE.set(true);
    STAND_IN.set(true);
    HAND_TO_OWNER.with(|slot| *slot.borrow_mut() = Some(owner));
}

/// Marks the run over: nothing runs any more on our behalf.
pub(crate) fn finish() {
    deadline::stop();
    REASON.store(0, Ordering::Release);
    OWNER_HERE.set(false);
    EXIT_RUN_ACTIVE.store(false, Ordering::Release);
    global::disarm_exit_hook();
}

/// Called by the C library's exit machinery (see `sys`), with the exit
/// status where the platform tells it.
pub(crate) fn on_process_exit(status: Option<i32>) {
    IN_C_EXIT.set(true);
    match begin(ExitReason::Exit(status)) {
        Begin::Owner => {
            run::run_to_empty(global::shared());
            finish();
            if let Some(code) = failure_override(status) {
                // glibc carries on with the remaining C exit entries, then
                // ends the process with the new status.
                sys::exit_process(code);
            }
        }
        Begin::Nested => {
            run::run_to_empty(global::shared());
        }
        Begin::Elsewhere => wait_in_c_exit(),
    }
}

/// Inside the C `exit` while another thread owns the run: wait, in case
/// that owner cannot call `exit` itself and hands its code over.
fn wait_in_c_exit() -> ! {
    WAITING_IN_C_EXIT.fetch_add(1, Ordering::AcqRel);
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
fn end_process(code: i32) -> ! {
    if !IN_C_EXIT.get() && WAITING_IN_C_EXIT.load(Ordering::Acquire) > 0 {
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

/// A handler of the exit run failed.
pub(crate) fn note_failure() {
    EXIT_RUN_FAILED.store(true, Ordering::Relaxed);
}

/// The code `set_failure_code` asks for, if it applies to this exit.
fn failure_override(status: Option<i32>) -> Option<i32> {
    let packed = FAILURE_CODE.load(Ordering::Relaxed);
    // Only the low byte reaches the parent: `exit(256)` is a success too.
    let succeeded = status.is_some_and(|status| status & 0xff == 0);
    let failed = EXIT_RUN_FAILED.load(Ordering::Relaxed);
    (packed != 0 && succeeded && failed).then_some(packed as u32 as i32)
}

pub(crate) fn set_failure_code(code: Option<i32>) {
    let packed = code.map_or(0, |code| KIND_EXIT_KNOWN | u64::from(code as u32));
    FAILURE_CODE.store(packed, Ordering::Relaxed);
}

/// [`crate::exit`].
pub(crate) fn exit(code: i32) -> ! {
    if STAND_IN.get() {
        // A hook on its own thread, which the owner waits for: the owner
        // carries the run on from where it is (and may call the C `exit`;
        // this thread may not).
        let owner = HAND_TO_OWNER.with(|slot| slot.borrow_mut().take());
        if let Some(owner) = owner {
            let _ = owner.send(code);
        }
        park_forever();
    }
    if OWNER_HERE.get() {
        // A handler of the exit run on this thread: the handlers left still
        // run, here, and then the process ends with `code`. `std::process::exit`
        // would abort ("called re-entrantly"); the C library's `exit` is
        // defined to carry on from inside an exit handler.
        REASON.store(pack(ExitReason::Exit(Some(code))), Ordering::Release);
        run::run_to_empty(global::shared());
        finish();
        let code = failure_override(Some(code)).unwrap_or(code);
        let _ = io::stdout().flush();
        end_process(code);
    }
    if EXIT_RUN_ACTIVE.load(Ordering::Acquire) {
        park_forever();
    }
    // std lets one thread through and parks any other that calls it at the
    // same time, so concurrent exits run the handlers once.
    std::process::exit(code)
}

/// Ends the process at once with the status `reason` implies, running no
/// more handlers: the deadline's last resort.
pub(crate) fn end_without_handlers(reason: ExitReason) -> ! {
    match reason {
        ExitReason::Exit(code) => sys::exit_immediately(code.unwrap_or(1)),
        #[cfg(feature = "signal")]
        ExitReason::Signal(signal) => crate::signal::die_of(signal),
        // Signal runs exist only with the `signal` feature.
        #[cfg(not(feature = "signal"))]
        ExitReason::Signal(signal) => sys::exit_immediately(128 + signal),
    }
}

/// Another thread is ending the process; this one has nothing left to do.
pub(crate) fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// In a child created by `fork`, from a thread that was not running the
/// exit run: the parent's run is not the child's.
pub(crate) fn after_fork_in_child() {
    if !OWNER_HERE.get() {
        EXIT_RUN_ACTIVE.store(false, Ordering::Release);
        REASON.store(0, Ordering::Release);
    }
}

pub(crate) fn is_exiting() -> bool {
    EXIT_RUN_ACTIVE.load(Ordering::Acquire)
}

pub(crate) fn reason() -> Option<ExitReason> {
    if !is_exiting() {
        return None;
    }
    unpack(REASON.load(Ordering::Acquire))
}

//! The exit run: what happens when the process ends through the C library's
//! `exit` (or a handled signal), [`exit`](crate::exit), and the state that
//! [`is_exiting`](crate::is_exiting) and [`reason`](crate::reason) report.
//!
//! One exit run at a time: the first thread to begin it owns it. Another
//! thread that tries to exit meanwhile waits forever, since the owner is
//! about to end the process; this thread nesting into it (a handler that
//! exits) carries it on. A hook on a thread of its own stands in for the
//! owner, and hands an exit request to it (see `c_exit` for why it may not
//! call `exit` itself).

use std::cell::{Cell, RefCell};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::process::ending::park_forever;
use crate::process::handoff::Giver;
use crate::process::reason::{ExitReason, ReasonCell};
use crate::process::{c_exit, deadline, failure, global, observers, request, trace};
use crate::registry::run::{self, Observer, Outcome};
use crate::store::{Meta, Site};
use crate::sys;

static EXIT_RUN_ACTIVE: AtomicBool = AtomicBool::new(false);
static REASON: ReasonCell = ReasonCell::new();

thread_local! {
    /// Whether this thread owns the exit run, or stands in for its owner
    /// (a hook on a thread of its own). `const` and `Drop`-free, so it can
    /// be read after thread-local destructors have run.
    static OWNER_HERE: Cell<bool> = const { Cell::new(false) };
    /// Set on a hook's own thread that stands in for the owner.
    static STAND_IN: Cell<bool> = const { Cell::new(false) };
    /// Where a stand-in sends an exit request. Touched only on stand-in
    /// threads, whose thread-locals are alive, never on the exiting thread.
    static HAND_TO_OWNER: RefCell<Option<Giver<i32>>> = const { RefCell::new(None) };
    /// The code this thread passed to `atexit::exit`, for C libraries that
    /// do not tell the exit hook the status (all but glibc).
    static EXITING_WITH: Cell<Option<i32>> = const { Cell::new(None) };
}

/// What the exit run tells the process layer: the hook running (for the
/// deadline's report), a failure (for `set_failure_code`).
struct ExitRun;

impl Observer for ExitRun {
    fn may_run(&self, meta: &Meta) -> bool {
        global::InThisProcess.may_run(meta)
    }

    fn starting(&self, site: Site, name: Option<&str>) {
        deadline::note_running(site, name);
    }

    fn finished(&self, _site: Site, _name: Option<&str>, outcome: Outcome) {
        if outcome == Outcome::Panicked {
            failure::note_failure();
        }
    }
}

/// Runs every handler left in the process-wide registry, as the exit run.
/// Traced, a run loop of its own: untraced, it reads no clock.
pub(crate) fn run_handlers() {
    if trace::is_on() {
        run::run_to_empty(global::shared(), &trace::Traced::new(&ExitRun));
        trace::run_finished(REASON.get());
    } else {
        run::run_to_empty(global::shared(), &ExitRun);
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
        REASON.set(Some(reason));
        return Begin::Nested;
    }
    if EXIT_RUN_ACTIVE
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Begin::Elsewhere;
    }
    OWNER_HERE.set(true);
    REASON.set(Some(reason));
    trace::start(reason);
    deadline::start(reason);
    Begin::Owner
}

/// Whether this thread owns the exit run (or stands in for its owner).
pub(crate) fn owns_exit_run() -> bool {
    OWNER_HERE.get()
}

/// Makes a hook's own thread stand in for the owner of the exit run: an
/// exit requested there is sent to `owner`, which carries the run on.
pub(crate) fn stand_in_for_owner(owner: Giver<i32>) {
    OWNER_HERE.set(true);
    STAND_IN.set(true);
    HAND_TO_OWNER.with(|slot| *slot.borrow_mut() = Some(owner));
}

/// Marks the run over: nothing runs any more on our behalf.
pub(crate) fn finish() {
    deadline::stop();
    REASON.set(None);
    OWNER_HERE.set(false);
    EXIT_RUN_ACTIVE.store(false, Ordering::Release);
    global::set_exit_hook_armed(false);
    observers::run_finished();
}

/// Called by the C library's exit machinery (see `sys`), with the exit
/// status where the platform tells it.
pub(crate) fn on_process_exit(status: Option<i32>) {
    c_exit::entered();
    let status = status.or(EXITING_WITH.get());
    match begin(reason_for(ExitReason::Exit(status))) {
        Begin::Owner => {
            run_handlers();
            finish();
            end_for_request();
            if let Some(code) = failure::failure_override(status) {
                // Nested on this thread: glibc carries on with the remaining
                // C exit entries, then ends the process with the new status.
                c_exit::exit_with(code);
            }
        }
        Begin::Nested => run_handlers(),
        Begin::Elsewhere => c_exit::wait_for_handed_code(),
    }
}

/// The reason of a run that would be `normal`: the signal of a
/// `Shutdown` request once one arrived, whatever path ends the program.
fn reason_for(normal: ExitReason) -> ExitReason {
    request::signal().map_or(normal, ExitReason::Signal)
}

/// After a run that ended a program asked to stop by a signal: death by
/// that signal, so that the parent sees the truth.
fn end_for_request() {
    #[cfg(all(unix, feature = "signal"))]
    if let Some(signal) = request::signal() {
        crate::process::ending::flush_briefly();
        crate::process::ending::die_of(signal);
    }
}

/// [`crate::exit`].
pub(crate) fn exit(code: i32) -> ! {
    if STAND_IN.get() {
        // A hook on its own thread, which the owner waits for: the owner
        // carries the run on from where it is (and may call the C `exit`;
        // this thread may not).
        let owner = HAND_TO_OWNER.with(|slot| slot.borrow_mut().take());
        if let Some(owner) = owner {
            owner.give(code);
        }
        park_forever();
    }
    if OWNER_HERE.get() {
        // A handler of the exit run on this thread: the handlers left still
        // run, here, and then the process ends with `code`. `std::process::exit`
        // would abort ("called re-entrantly"); the C library's `exit` is
        // defined to carry on from inside an exit handler.
        REASON.set(Some(reason_for(ExitReason::Exit(Some(code)))));
        run_handlers();
        finish();
        end_for_request();
        let code = failure::failure_override(Some(code)).unwrap_or(code);
        let _ = io::stdout().flush();
        c_exit::exit_with(code);
    }
    if EXIT_RUN_ACTIVE.load(Ordering::Acquire) {
        park_forever();
    }
    // Concurrent exits run the handlers once: only one thread gets into the
    // C exit machinery at a time (see `sys::begin_exit`). The exit hook runs
    // on this thread and learns the code here if the C library does not say
    // it.
    EXITING_WITH.set(Some(code));
    sys::begin_exit(code)
}

/// In a child created by `fork`, from a thread that was not running the
/// exit run: the parent's run is not the child's.
pub(crate) fn after_fork_in_child() {
    if !OWNER_HERE.get() {
        EXIT_RUN_ACTIVE.store(false, Ordering::Release);
        REASON.set(None);
    }
}

pub(crate) fn is_exiting() -> bool {
    EXIT_RUN_ACTIVE.load(Ordering::Acquire)
}

pub(crate) fn reason() -> Option<ExitReason> {
    if !is_exiting() {
        return None;
    }
    REASON.get()
}

//! The process layer: the one process-wide registry and everything about
//! the process ending. Each file calls only files listed after it here,
//! the registry layer and `sys`.

// Signals: the run on SIGTERM and friends, then death by the signal.
#[cfg(all(unix, feature = "signal"))]
pub(crate) mod signal;
// Windows: the run on Ctrl-C and the other console events, then the
// status Windows gives them.
#[cfg(all(windows, feature = "signal"))]
pub(crate) mod console;
// Registering in the global registry; arms the C library's exit hook.
pub(crate) mod exit_hook;
// `panic = "abort"`: a panic runs the handlers, then the abort.
#[cfg(panic = "abort")]
pub(crate) mod panic_abort;
// A hook on a thread of its own.
pub(crate) mod hook_thread;
// An async hook (feature `tokio`): its runtime or a fresh one, its bound.
#[cfg(feature = "tokio")]
pub(crate) mod tokio_hook;
// Every registry lock held across `fork`.
pub(crate) mod fork;
// The exit run: who owns it, why it happens, `atexit::exit`.
pub(crate) mod exit_run;
// The stop request of `Shutdown`: which signal, who waits for it.
pub(crate) mod request;
// Which thread may call the C `exit` (glibc 2.41).
pub(crate) mod c_exit;
// The exit run's time budget.
pub(crate) mod deadline;
// `ATEXIT_TRACE`: a line per hook of the exit run, and the run's total.
pub(crate) mod trace;
// `set_failure_code`.
pub(crate) mod failure;
// The process-wide registry.
pub(crate) mod global;
// Ending the process without running more.
pub(crate) mod ending;
// `ExitReason`.
pub(crate) mod reason;
// What the guardian learns: the run finished, a child was forked.
pub(crate) mod observers;
// One value handed to a waiting thread (instead of an mpsc channel).
pub(crate) mod handoff;
// Starting the crate's own threads.
pub(crate) mod threads;

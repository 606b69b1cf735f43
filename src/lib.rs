//! Exit handlers for Rust: Python's `atexit`, with every way a process ends
//! defined.
//!
//! Register cleanup functions; they run, newest first, when the process
//! ends: when `main` returns (also with `Err` or a panic), on
//! [`std::process::exit`] from any thread, on [`exit`], and — with
//! [`handle_signals`] — on SIGINT, SIGTERM and SIGHUP, after which the
//! process still dies of that signal.
//!
//! ```
//! fn goodbye(name: &str, adjective: &str) {
//!     println!("Goodbye {name}, it was {adjective} to meet you.");
//! }
//!
//! atexit::register(|| println!("closing the database"));
//! atexit::register_with(goodbye, ("Donny", "nice"));
//! // At exit: "Goodbye Donny, it was nice to meet you.", then "closing the database".
//! # atexit::clear();
//! ```
//!
//! The decorator form registers a function before `main` starts:
//!
//! ```
//! #[atexit::register]
//! fn all_done() {
//!     println!("all_done()");
//! }
//! # fn main() { atexit::clear(); }
//! ```
//!
//! # When handlers run
//!
//! | the process ends by | handlers run? | status seen by the parent |
//! | --- | --- | --- |
//! | `main` returning | yes | 0 |
//! | `main` returning `Err` | yes | 1 |
//! | a panic in `main` (unwinding) | yes | 101 |
//! | `std::process::exit(n)`, from any thread | yes | `n` |
//! | [`atexit::exit(n)`](exit), from any thread or from a handler | yes | `n` |
//! | SIGINT / SIGTERM / SIGHUP after [`handle_signals`] | yes, on a named thread | killed by that signal |
//! | SIGINT / SIGTERM / SIGHUP without [`handle_signals`] | no | killed by that signal |
//! | more handled signals within [`COALESCE_WINDOW`] (100 ms) of the first | yes: one request delivered twice | killed by the first |
//! | a handled signal after that window, during the run | the rest are skipped | killed by that signal |
//! | a panic in a program built with `panic = "abort"` | yes, on the panicking thread | killed by SIGABRT |
//! | `std::process::abort` | no | killed by SIGABRT |
//! | `libc::_exit(n)` | no | `n` |
//! | SIGKILL, power loss, a fault (SIGSEGV ...) | no | killed by that signal |
//! | a child made by `fork` exiting | yes, all but [`InChild::Skip`] hooks | its own |
//! | a handled signal sent to a child made by `fork` | no | killed by that signal |
//! | the [`set_deadline`] budget runs out | the rest are skipped | the status it would have had |
//!
//! Handlers run on the thread that ends the process. Other threads keep
//! running meanwhile: unlike CPython, Rust does not join any thread before
//! exiting, so a handler that needs a worker finished must tell it to stop
//! and join it ([`join_at_exit`]). That thread's thread-locals are already
//! destroyed when handlers run; a hook that needs them (a `tracing` call
//! does) runs on a thread of its own with [`Hook::on_new_thread`].
//!
//! # Defined where Python leaves it undefined
//!
//! - A handler registered while handlers run, runs in that same run (next).
//! - A pending handler unregistered by a running handler does not run.
//! - A panicking handler is caught and reported on stderr (the usual panic
//!   message, then `atexit: exit handler registered at src/main.rs:7:5
//!   panicked`); the others still run; the exit status is unchanged unless
//!   [`set_failure_code`] says otherwise.
//! - No lock is held while a handler runs: it may register, unregister,
//!   call [`pending`], spawn and join threads, and take its time.
//! - Several threads exiting at once: every handler runs exactly once and
//!   the process ends with one of their codes.
//! - [`exit`] inside a handler: the remaining handlers still run, then the
//!   process exits with that code. **`std::process::exit` inside a handler
//!   aborts the process** (Rust's std refuses re-entrant exits; this crate
//!   cannot intercept it): use [`exit`] there.
//! - A child made by `fork` inherits the handlers, as in C and Python, and
//!   never inherits a held registry lock.
//! - Handlers that print with `println!` while stdout is closed panic; that
//!   is reported like any panic and older handlers still run. The crate's
//!   own reports never panic.
//!
//! # Signals
//!
//! Without help, SIGINT, SIGTERM and SIGHUP kill a process without running
//! any handler. After [`handle_signals`], they run the handlers (newest
//! first, on the `atexit-signals` thread, never in signal context) and the
//! process then dies of that same signal, so a supervisor sees "killed by
//! SIGTERM". Senders often deliver one stop request twice (`timeout`
//! signals the program and then its process group; a closed terminal sends
//! SIGHUP from the shell and from the kernel): handled signals within
//! [`COALESCE_WINDOW`] of the first are the same request and are ignored.
//! A handled signal after that window (Ctrl-C pressed again) ends the
//! process at once. [`set_deadline`] bounds the whole run; [`reason`] tells
//! a handler why the process is ending.
//!
//! # Seeing a slow shutdown: `ATEXIT_TRACE`
//!
//! Run the program with `ATEXIT_TRACE=1` and the exit run writes one stderr
//! line per hook, as it finishes, then the run's total:
//!
//! ```text
//! atexit: trace: exit handler registered at src/main.rs:9:5 took 1.204s
//! atexit: trace: exit handler registered at src/main.rs:8:5 panicked after 3.012ms
//! atexit: trace: exit handler `flush-db` (registered at src/main.rs:7:5) took 25.000µs
//! atexit: trace: exit run of 3 handlers took 1.208s (reason: Signal(15))
//! ```
//!
//! A hook built with `InChild::Skip` shows `skipped (InChild::Skip in a
//! forked child)` in a forked child; durations are `Duration`'s `Debug` to
//! three decimals; the reason is [`ExitReason`]'s `Debug`, followed by
//! `, then ..` when a hook changed it with [`exit`]. A hook that never
//! finishes has no line: one that ends the process has none, and for one
//! the [`set_deadline`] budget cuts off, the deadline's own line names it and
//! `atexit: trace: exit run cut off by the deadline after 5.001s, 2
//! handlers finished (reason: ..)` replaces the total. The variable is read
//! once, when the exit run begins; any value but empty or `0` turns the
//! trace on. Without it nothing is printed and no clock is read:
//! [`run_now`] and [`Registry::run`] are never traced.
//!
//! # Async hooks (feature `tokio`)
//!
//! `register_async` and `Hook::new_async` register a future that runs at
//! exit on the tokio runtime it was registered from, in the one
//! newest-first order with the sync hooks, each waited for at most its
//! `timeout` (`ASYNC_TIMEOUT`, 5 s). End the async `main`
//! with `run_async_now().await`, after the drain, to run
//! them on the program's runtime before it is dropped. Otherwise:
//!
//! | the process ends by | the async hooks run |
//! | --- | --- |
//! | `run_async_now().await` at the end of the async `main` | on the program's runtime |
//! | `main` returning (`#[tokio::main]` dropped its runtime), a panic in `main` | on a fresh current-thread runtime |
//! | `exit` / `std::process::exit` from a task, multi-thread runtime | on another worker |
//! | the same, current-thread runtime (the exiting thread drives it) | on a fresh current-thread runtime |
//! | the same, multi-thread runtime with one worker | not at all: named on stderr after the bound |
//! | a handled signal ([`handle_signals`]) | on the program's runtime |
//! | in a child made by `fork` | on a fresh current-thread runtime |
//!
//! A fresh runtime cannot use tokio I/O objects or tasks of the old one.
//! A hook that cannot run or passes its bound is named on stderr and
//! skipped; it never hangs the exit.
//!
//! # glibc versions
//!
//! Tested on glibc 2.36 and 2.41. Since 2.41 a second thread's call to the
//! C `exit` blocks while another thread is inside it, so the crate only
//! calls `exit` from a thread already inside it: [`exit`] in a hook on its
//! own thread ([`Hook::on_new_thread`]) is carried out by the thread that
//! owns the exit run.
//!
//! # Windows
//!
//! Built with mingw-w64 and tested under Wine. Handlers run when `main`
//! returns (also with `Err` or a panic) and on [`exit`]; **`std::process::exit`
//! runs none** (std calls `ExitProcess`, which skips the C runtime's exit
//! entries): use [`exit`]. [`handle_signals`] handles Ctrl-C, Ctrl-Break,
//! console close, logoff and shutdown; the handlers run on the
//! `atexit-signals` thread, then the process ends with
//! `STATUS_CONTROL_C_EXIT` (0xC000013A), and [`reason`] reports
//! `ExitReason::Console`. Close, logoff and shutdown get a 4 s deadline,
//! inside the 5 s Windows allows. The exit code is known to [`reason`] only
//! for [`exit`]. There is no `fork`: [`InChild`] has no effect.
//!
//! # Draining services, `kill -9`
//!
//! `Shutdown` (Unix) turns the first SIGINT/SIGTERM/SIGHUP into a stop
//! request the program acts on (`requested()` is a plain future); once it
//! ends, the handlers run and the process dies of that signal. `Guardian`
//! (Linux, feature `guardian`) is a separate process that carries out declared cleanup —
//! removing paths, killing process groups, restoring the terminal, running
//! a command — when the program ends without finishing its exit run
//! (SIGKILL, a crash, `abort`).
//!
//! # Recipes
//!
//! The `examples/` directory holds one program per everyday use, each with a
//! process test: commit a SQLite transaction and remove a temp file
//! (`sqlite_cleanup`), keep the last lines of a non-blocking log writer
//! (`exit_log`, with [`Hook::on_new_thread`] for a hook that logs), save
//! settings with write-then-rename also on SIGTERM (`save_config`), pass
//! arguments (`partial_args`, [`register_with`]), and wait for worker
//! threads with a time limit (`wait_for_threads`, [`join_at_exit`]).
//!
//! # Python to Rust
//!
//! | Python | Rust |
//! | --- | --- |
//! | `atexit.register(func)` | [`register(func)`](register()) |
//! | `atexit.register(func, *args)` | [`register_with(func, args)`](register_with) |
//! | `@atexit.register` | [`#[atexit::register]`](macro@register) |
//! | `atexit.unregister(func)` | [`unregister(func)`](unregister), or [`Handle::unregister`] |
//! | `atexit._run_exitfuncs()` | [`run_now()`](run_now) |
//! | `atexit._clear()` | [`clear()`](clear) |
//! | `atexit._ncallbacks()` | [`pending()`](pending) |
//!
//! # Features
//!
//! - `signal` (default): [`handle_signals`] and [`handle_signals_for`],
//!   built on `signal-hook-registry`.
//! - `macros` (default): the `#[atexit::register]` attribute, built on
//!   `ctor`.
//! - `tokio`: async hooks (`register_async`, `Hook::new_async`,
//!   `run_async_now`) that run on the tokio runtime they were registered
//!   from, each within a time bound, built on `tokio` (its `rt` feature).
//! - `guardian` (Linux): `Guardian`, cleanup carried out by a separate
//!   process after SIGKILL, a crash or `abort`. No dependency; off by
//!   default because it puts a constructor before `main` and process and
//!   file-system code into every program that enables it.
//!
//! Without default features the crate depends on `libc` only.

#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

// The layers, top down; each calls only the ones below it (see the
// README's Architecture section).
// The public API beside this file: options, joins, `Registry` values,
// the guardian.
#[cfg(all(target_os = "linux", feature = "guardian"))]
mod guardian;
mod hook;
mod join;
mod local_registry;
#[cfg(all(unix, feature = "signal"))]
mod shutdown;
// The process: the global registry, exit, fork, deadline, signals.
mod process;
// The registry: the store behind its lock, the run loop, handles.
mod registry;
// Plain data: the ordered store, argument tuples, errors.
mod args;
mod error;
mod sorted_map;
mod store;
// The platform calls and the crate's only `unsafe`.
#[allow(unsafe_code)]
mod sys;

use std::any::TypeId;
use std::panic::Location;
use std::time::Duration;

use crate::process::{deadline, exit_hook, exit_run, failure, global};
use crate::registry::run::{self, Report};
use crate::store::Callback;

pub use args::Args;
pub use error::{Error, Failure, RunError};
#[cfg(all(target_os = "linux", feature = "guardian"))]
pub use guardian::{Guardian, GuardianAction};
#[cfg(feature = "tokio")]
pub use hook::{Async, ASYNC_TIMEOUT};
pub use hook::{Hook, InChild};
pub use join::join_at_exit;
pub use local_registry::Registry;
#[cfg(all(windows, feature = "signal"))]
pub use process::console::{
    handle_signals, handle_signals_for, set_coalesce_window, COALESCE_WINDOW, SIGBREAK,
};
#[cfg(windows)]
pub use process::reason::ConsoleEvent;
pub use process::reason::ExitReason;
#[cfg(all(unix, feature = "signal"))]
pub use process::signal::{
    handle_signals, handle_signals_for, set_coalesce_window, COALESCE_WINDOW,
};
pub use registry::Handle;
#[cfg(all(unix, feature = "signal"))]
pub use shutdown::{Requested, Shutdown};

/// `#[atexit::register]`: registers a function with no parameters before
/// `main` starts, Python's `@atexit.register`.
///
/// ```
/// #[atexit::register]
/// fn all_done() {
///     println!("all_done()");
/// }
///
/// fn main() {
///     println!("starting main program");
///     # atexit::clear();
/// }
/// ```
///
/// The function stays an ordinary function: it can still be called, and
/// [`unregister(all_done)`](unregister) cancels it. Arguments, `async`,
/// generics, or use on anything but a function are compile errors.
#[cfg(feature = "macros")]
pub use atexit_macros::register;

#[cfg(feature = "macros")]
#[doc(hidden)]
pub mod __private {
    // The declarative form: it finds its own support macros through this
    // re-export, so programs need no `ctor` dependency of their own.
    pub use ctor::declarative::ctor;
}

/// Registers `f` to run when the process exits; Python's
/// `atexit.register(f)`.
///
/// Handlers run newest first, each at most once. The registration site is
/// recorded (`#[track_caller]`) and named in reports if `f` panics.
/// Ignoring the returned [`Handle`] is normal; keep it to cancel this one
/// registration.
///
/// ```
/// let handle = atexit::register(|| println!("goodbye"));
/// assert!(handle.is_registered());
/// # atexit::clear();
/// ```
///
/// # Performance
///
/// Constant time. No allocation (beyond the registry's amortised growth,
/// 32 bytes per handler) for a function item or a closure capturing at most
/// one word (an `Arc`, a number, a reference); one allocation for a larger
/// closure. The first call arms the C library's exit hook.
#[track_caller]
pub fn register<F>(f: F) -> Handle
where
    F: FnOnce() + Send + 'static,
{
    // Decided at compile time: `F` is zero-sized or not.
    match registry::function_key::<F>() {
        Some(key) => exit_hook::register_function(Callback::new(f), Location::caller(), key),
        None => exit_hook::register_closure(Callback::new(f), Location::caller()),
    }
}

/// Registers `func` to be called with `args` at exit; Python's
/// `atexit.register(func, *args)`.
///
/// `args` is a tuple of 0 to 8 values, each `Send + 'static`, passed to
/// `func` by value. [`unregister(func)`](unregister) also removes these
/// registrations.
///
/// ```
/// fn my_cleanup(name: &str) {
///     println!("my_cleanup({name})");
/// }
/// atexit::register_with(my_cleanup, ("first",));
/// atexit::register_with(my_cleanup, ("second",));
/// assert_eq!(atexit::unregister(my_cleanup), 2);
/// ```
#[track_caller]
pub fn register_with<F, A>(func: F, args: A) -> Handle
where
    F: Send + 'static,
    A: Args<F>,
{
    exit_hook::register(
        Callback::new(move || args.call(func)),
        Location::caller(),
        registry::function_key::<F>(),
        None,
    )
}

/// Registers an async hook (feature `tokio`): at exit, `f()` runs on the
/// tokio runtime this is called from, and the exit run waits for it at most
/// [`ASYNC_TIMEOUT`] (5 s). Async and sync hooks run in one order, newest
/// first. [`Hook::new_async`] gives a name and another bound, and says what
/// happens when that runtime is gone or blocked.
///
/// The dependable way to run async hooks on the program's own runtime is to
/// end the async `main`, after the drain, with
/// [`run_async_now().await`](run_async_now): `#[tokio::main]` drops its
/// runtime before `main` returns, and a hook left for that exit runs on a
/// fresh runtime instead.
///
/// ```
/// # async fn flush() {}
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> Result<(), atexit::Error> {
///     atexit::register_async(|| async move { flush().await })?;
///     // ... serve, then drain ...
///     atexit::run_async_now().await.unwrap(); // the hooks, on this runtime
///     Ok(())
/// }
/// ```
///
/// # Errors
///
/// [`Error::NoRuntime`] when called outside a tokio runtime: nothing is
/// registered.
#[cfg(feature = "tokio")]
#[track_caller]
pub fn register_async<F, Fut>(f: F) -> Result<Handle, Error>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    Hook::new_async(f).register()
}

/// [`run_now`] for async code (feature `tokio`): runs and removes every
/// pending handler, newest first, async hooks on the runtime they were
/// registered from, and returns when all are done.
///
/// The handlers run on a thread of tokio's blocking pool, so that this
/// task's thread stays free to run the async hooks (on a current-thread
/// runtime it is the only one that can). Await it at the end of the async
/// `main`, after the drain and before the runtime is dropped.
///
/// ```
/// #[tokio::main]
/// async fn main() {
///     atexit::register(|| println!("sync, runs second"));
///     atexit::register_async(|| async { println!("async, runs first") }).unwrap();
///     atexit::run_async_now().await.unwrap();
///     assert_eq!(atexit::pending(), 0);
/// }
/// ```
///
/// # Errors
///
/// [`RunError`] lists the handlers that panicked, as for [`run_now`].
///
/// # Panics
///
/// Outside a tokio runtime (it needs one to wait on).
#[cfg(feature = "tokio")]
pub async fn run_async_now() -> Result<(), RunError> {
    let ran = tokio::task::spawn_blocking(|| {
        process::tokio_hook::drives_nothing_here();
        run_now()
    })
    .await;
    match ran {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // The runtime is shutting down and never ran it: the handlers are
        // still pending and run at exit.
        Err(_) => Ok(()),
    }
}

/// Removes every pending registration of the function `func` (by
/// [`register`](register()), [`register_with`] or [`Hook`]); returns how many. Python's
/// `atexit.unregister(func)`: removing a function that is not registered is
/// not an error, it returns 0.
///
/// `func` is a function item or a non-capturing closure value: any
/// zero-sized function type, whatever its parameters. A capturing closure
/// (or a function pointer) cannot be matched and is a compile-time error;
/// keep the [`Handle`] that [`register`](register()) returned and call
/// [`Handle::unregister`] instead.
///
/// ```
/// fn flush() {}
/// atexit::register(flush);
/// atexit::register(flush);
/// assert_eq!(atexit::unregister(flush), 2);
/// assert_eq!(atexit::unregister(flush), 0);
/// ```
///
/// ```compile_fail
/// let name = String::from("db");
/// atexit::unregister(move || drop(name)); // captures: use Handle::unregister
/// ```
///
/// # Performance
///
/// Proportional to the registrations of `func` alone, never to all pending
/// handlers.
pub fn unregister<F: 'static>(func: F) -> usize {
    const { registry::assert_function_key::<F>() };
    drop(func);
    global::shared().remove_function(TypeId::of::<F>())
}

/// Runs and removes every pending handler now, newest first; Python's
/// `atexit._run_exitfuncs()`.
///
/// Called from inside a handler it returns `Ok(())` at once and the outer
/// run carries on. What is registered afterwards runs at exit as usual.
///
/// ```
/// atexit::register(|| println!("ran early"));
/// atexit::run_now().unwrap();
/// assert_eq!(atexit::pending(), 0);
/// ```
///
/// # Errors
///
/// [`RunError`] lists the handlers that panicked (in run order); every other
/// handler ran.
pub fn run_now() -> Result<(), RunError> {
    run::run(global::shared(), Report::Return, &global::InThisProcess)
}

/// Removes every pending handler without running it; Python's
/// `atexit._clear()`.
///
/// ```
/// atexit::register(|| unreachable!());
/// atexit::clear();
/// assert_eq!(atexit::pending(), 0);
/// ```
pub fn clear() {
    global::shared().clear();
}

/// How many handlers are pending; Python's `atexit._ncallbacks()`, counting
/// only live registrations (removed ones neither count nor take memory).
///
/// ```
/// let before = atexit::pending();
/// let handle = atexit::register(|| {});
/// assert_eq!(atexit::pending(), before + 1);
/// handle.unregister();
/// assert_eq!(atexit::pending(), before);
/// ```
pub fn pending() -> usize {
    global::shared().pending()
}

/// Runs the handlers, then exits the process with `code`.
///
/// Safe from any thread and from several at once (the handlers run once;
/// the process ends with one of the codes), and from inside a handler:
/// there the remaining handlers still run, then the process exits with
/// `code` — where `std::process::exit` would abort. As with any exit, only
/// `code & 0xff` reaches the parent.
///
/// ```no_run
/// atexit::register(|| println!("cleaned up"));
/// atexit::exit(3); // prints "cleaned up", exit status 3
/// ```
pub fn exit(code: i32) -> ! {
    exit_run::exit(code)
}

/// `true` while the exit handlers run because the process is ending (not
/// during [`run_now`]).
///
/// ```
/// assert!(!atexit::is_exiting());
/// ```
pub fn is_exiting() -> bool {
    exit_run::is_exiting()
}

/// Why the process is ending: `None` outside the exit run, and during
/// [`run_now`] or [`Registry::run`] (the process is not ending).
///
/// ```no_run
/// atexit::register(|| {
///     assert_eq!(atexit::reason(), Some(atexit::ExitReason::Exit(Some(4))));
/// });
/// std::process::exit(4);
/// ```
pub fn reason() -> Option<ExitReason> {
    exit_run::reason()
}

/// Gives the whole exit run a time budget.
///
/// If the handlers have not all finished `budget` after the run began, the
/// crate writes to stderr which hook is running (its name, else its
/// registration site), skips the rest, and ends the process with the status
/// it would have had: the same exit code, or death by the same signal
/// (status 1 where the platform does not report exit codes). Output still
/// buffered in C stdio is lost then. The last call wins; `Duration::MAX`
/// means no budget. With `ATEXIT_TRACE=1` (see the [crate docs](crate))
/// the trace shows how long each hook before the one cut off took.
///
/// ```
/// atexit::set_deadline(std::time::Duration::from_secs(5));
/// ```
pub fn set_deadline(budget: Duration) {
    deadline::set(budget);
}

/// With `Some(code)`: if a handler panicked during the exit run, a process
/// that would have exited with status 0 exits with `code` instead (a
/// non-zero status or a death by signal stays as it was). `None`, the
/// default, leaves the status alone, as Python does. Needs the exit status
/// from the platform (glibc); elsewhere it has no effect. Only the low byte
/// of a status reaches the parent: an exit with 256 counts as a success, and
/// `Some(256)` would turn a failure into 0 (use 1 to 255).
///
/// ```
/// atexit::set_failure_code(Some(70));
/// # atexit::set_failure_code(None);
/// ```
pub fn set_failure_code(code: Option<i32>) {
    failure::set_failure_code(code);
}

//! Async exit hooks (feature `tokio`): one future, run from the exit run's
//! thread on the runtime it was registered from, or on a fresh runtime when
//! that one cannot run it, and waited for within the hook's bound.
//!
//! The exit run is synchronous, so an async hook is an ordinary handler
//! that hands its future to a runtime and waits for it with a timeout. The
//! runtime may be unable to run it: dropped (`#[tokio::main]` drops it before
//! `main` returns; `Handle::spawn` then drops the task unrun), or driven by
//! the very thread that is exiting (a current-thread runtime, or a
//! multi-thread one with a single worker, whose task called
//! `std::process::exit`). Then the hook runs on a new current-thread runtime
//! on a thread of its own. A hook that does not finish in time is named on
//! stderr and left behind.

use std::any::Any;
use std::borrow::Cow;
use std::cell::Cell;
use std::future::Future;
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, RuntimeFlavor};

use crate::error::describe_async;
use crate::store::Site;

/// Numbers threads that register async hooks, so that the exit run can tell
/// whether it runs on one of them. `const` and `Drop`-free: still readable
/// on the exiting thread after glibc has destroyed its thread-locals (tokio's
/// own context among them).
static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static THREAD_NUMBER: Cell<u64> = const { Cell::new(0) };
    /// Set on the blocking-pool thread of `run_async_now`: it runs the
    /// handlers on behalf of a task and drives no runtime.
    static DRIVES_NOTHING: Cell<bool> = const { Cell::new(false) };
}

fn this_thread() -> u64 {
    let number = THREAD_NUMBER.get();
    if number != 0 {
        return number;
    }
    let number = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
    THREAD_NUMBER.set(number);
    number
}

/// Marks this thread as one that drives no runtime (see `run_async_now`).
pub(crate) fn drives_nothing_here() {
    DRIVES_NOTHING.set(true);
}

/// The runtime an async hook was registered from, and what is needed to
/// tell at exit whether it can still run the hook.
pub(crate) struct Origin {
    handle: Handle,
    /// The registering thread, which drives that runtime when it is a
    /// current-thread one (the usual case: `main` in `#[tokio::main]`).
    thread: u64,
    pid: u32,
}

impl Origin {
    /// The runtime this thread is in, or `None` outside any.
    pub(crate) fn here() -> Option<Origin> {
        let handle = Handle::try_current().ok()?;
        Some(Origin {
            handle,
            thread: this_thread(),
            pid: std::process::id(),
        })
    }

    /// Whether waiting on this thread for a task of the runtime would wait
    /// for this very thread: it drives the runtime (or may be its only
    /// worker) and is stuck in the exit run.
    fn blocked_here(&self) -> bool {
        if DRIVES_NOTHING.get() {
            return false;
        }
        let single = match self.handle.runtime_flavor() {
            RuntimeFlavor::CurrentThread => true,
            _ => self.handle.metrics().num_workers() == 1,
        };
        if !single {
            return false;
        }
        // Inside a current-thread runtime's context (tokio's thread-local is
        // still alive on musl, in `run_now`), or the thread that registered.
        let in_current_thread = matches!(
            Handle::try_current().map(|here| here.runtime_flavor()),
            Ok(RuntimeFlavor::CurrentThread)
        );
        in_current_thread || THREAD_NUMBER.get() == self.thread
    }
}

/// What a runner reports back to the waiting thread.
enum Event {
    /// The hook's future was created: the runtime is running it.
    Started,
    /// It finished, or panicked with this payload.
    Finished(Result<(), Box<dyn Any + Send>>),
    /// No fresh runtime could be built: why.
    NoRuntime(io::Error),
}

/// How reports name the hook.
pub(crate) struct Named {
    pub(crate) site: Site,
    pub(crate) name: Option<Cow<'static, str>>,
}

impl Named {
    fn report(&self, what: &str) {
        // Never `eprintln!`: it panics when stderr is gone.
        let _ = writeln!(
            io::stderr(),
            "atexit: {} {what}; skipped",
            describe_async(self.site, self.name.as_deref())
        );
    }
}

type Slot<F> = Arc<Mutex<Option<F>>>;

/// Runs the hook `f` as described in the module docs, waiting at most
/// `bound`. A panic in the hook is re-raised here, for the run to report.
pub(crate) fn run<F, Fut>(f: F, origin: Origin, bound: Duration, named: Named)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let end = Instant::now().checked_add(bound);
    let slot: Slot<F> = Arc::new(Mutex::new(Some(f)));
    let usable = origin.pid == std::process::id() && !origin.blocked_here();
    if usable {
        let events = spawn_on(origin.handle, Arc::clone(&slot));
        match wait(&events, end) {
            Waited::Done(result) => return finish(result),
            Waited::TimedOut { started: true } => {
                return named.report(&format!("did not finish within {bound:?}"))
            }
            Waited::TimedOut { started: false } => {
                return named.report(&format!(
                    "did not start within {bound:?}: its runtime is blocked"
                ))
            }
            // Dropped after it started: the runtime shut down under it.
            Waited::Dropped { started: true } => {
                return named.report("was dropped unfinished: its runtime shut down while it ran")
            }
            // Dropped unrun: the runtime is gone. The hook is still in its
            // slot; run it on a runtime of its own.
            Waited::Dropped { started: false } => {}
            // Only a fresh runtime reports this.
            Waited::NoRuntime(_) => {}
        }
    }
    let events = match spawn_fresh(Arc::clone(&slot)) {
        Ok(events) => events,
        Err(err) => return named.report(&format!("could not start a thread for it ({err})")),
    };
    match wait(&events, end) {
        Waited::Done(result) => finish(result),
        Waited::TimedOut { .. } => named.report(&format!("did not finish within {bound:?}")),
        Waited::Dropped { .. } => named.report("was dropped unfinished"),
        Waited::NoRuntime(err) => {
            named.report(&format!("could not start a runtime for it ({err})"))
        }
    }
}

fn finish(result: Result<(), Box<dyn Any + Send>>) {
    if let Err(payload) = result {
        panic::resume_unwind(payload);
    }
}

enum Waited {
    Done(Result<(), Box<dyn Any + Send>>),
    TimedOut {
        started: bool,
    },
    /// Every sender is gone without an answer: the task was dropped.
    Dropped {
        started: bool,
    },
    NoRuntime(io::Error),
}

fn wait(events: &mpsc::Receiver<Event>, end: Option<Instant>) -> Waited {
    let mut started = false;
    loop {
        let event = match end {
            Some(end) => {
                let left = end.saturating_duration_since(Instant::now());
                events.recv_timeout(left).map_err(|err| match err {
                    mpsc::RecvTimeoutError::Timeout => Waited::TimedOut { started },
                    mpsc::RecvTimeoutError::Disconnected => Waited::Dropped { started },
                })
            }
            None => events.recv().map_err(|_| Waited::Dropped { started }),
        };
        match event {
            Ok(Event::Started) => started = true,
            Ok(Event::Finished(result)) => return Waited::Done(result),
            Ok(Event::NoRuntime(err)) => return Waited::NoRuntime(err),
            Err(waited) => return waited,
        }
    }
}

/// The hook as a task of `handle`'s runtime. Spawned from a thread of its
/// own, outside any runtime context, so that the task goes to the
/// runtime's shared queue, never to the local queue of an exiting worker.
fn spawn_on<F, Fut>(handle: Handle, slot: Slot<F>) -> mpsc::Receiver<Event>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (sender, events) = mpsc::channel();
    // If no thread can be had, the sender is dropped with the closure: the
    // hook counts as dropped unrun and gets the fresh runtime's try.
    let _ = thread::Builder::new()
        .name("atexit-spawn".into())
        .spawn(move || {
            drop(handle.spawn(task(slot, sender)));
        });
    events
}

/// The hook on a new current-thread runtime, on a thread of its own.
fn spawn_fresh<F, Fut>(slot: Slot<F>) -> io::Result<mpsc::Receiver<Event>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (sender, events) = mpsc::channel();
    // Built on the new thread: the exiting one may have lost its
    // thread-locals.
    thread::Builder::new()
        .name("atexit-async".into())
        .spawn(move || {
            let built = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match built {
                Ok(runtime) => {
                    runtime.block_on(task(slot, sender));
                    // Tasks the hook left behind are not waited for.
                    runtime.shutdown_background();
                }
                Err(err) => {
                    let _ = sender.send(Event::NoRuntime(err));
                }
            }
        })?;
    Ok(events)
}

/// Takes the hook out of its slot, tells the waiting thread it started,
/// runs it, and sends what came of it.
async fn task<F, Fut>(slot: Slot<F>, sender: mpsc::Sender<Event>)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let taken = slot
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take();
    let Some(f) = taken else { return };
    let _ = sender.send(Event::Started);
    let result = match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(future) => Caught(Box::pin(future)).await,
        Err(payload) => Err(payload),
    };
    let _ = sender.send(Event::Finished(result));
}

/// A future whose panics are caught, like `catch_unwind` for a closure.
struct Caught<Fut>(Pin<Box<Fut>>);

impl<Fut: Future<Output = ()>> Future for Caught<Fut> {
    type Output = Result<(), Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match panic::catch_unwind(AssertUnwindSafe(|| self.0.as_mut().poll(cx))) {
            Ok(Poll::Ready(())) => Poll::Ready(Ok(())),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

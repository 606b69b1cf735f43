//! [`Hook`]: a registration with options (a name, a fork policy, a thread
//! of its own); with feature `tokio`, async hooks and their bound.

use std::borrow::Cow;
use std::fmt;
#[cfg(feature = "tokio")]
use std::future::Future;
#[cfg(feature = "tokio")]
use std::time::Duration;

#[cfg(feature = "tokio")]
use crate::error::Error;
#[cfg(feature = "tokio")]
use crate::process::tokio_hook;
use crate::process::{exit_hook, hook_thread};
use crate::registry::{function_key, Handle};
use crate::store::{Callback, Meta};

/// What a process created by `fork` does with a hook it inherited.
///
/// ```
/// let hook = atexit::Hook::new(|| {}).in_child(atexit::InChild::Skip);
/// # drop(hook);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum InChild {
    /// The child runs the hook at its exit too, as C and Python do.
    #[default]
    Run,
    /// Only the process that registered the hook runs it; a child forked
    /// after registration drops it unrun (the parent still runs it).
    Skip,
}

/// A handler with options, registered in the process-wide registry.
///
/// ```
/// use std::time::Duration;
///
/// atexit::Hook::new(|| println!("database flushed"))
///     .name("flush-db")
///     .in_child(atexit::InChild::Skip)
///     .register();
/// # atexit::clear();
/// ```
#[must_use = "a Hook does nothing until .register() is called"]
pub struct Hook<F> {
    callback: F,
    name: Option<Cow<'static, str>>,
    in_child: InChild,
    new_thread: bool,
}

impl<F> Hook<F>
where
    F: FnOnce() + Send + 'static,
{
    /// A hook that will run `f`.
    pub fn new(f: F) -> Self {
        Hook {
            callback: f,
            name: None,
            in_child: InChild::Run,
            new_thread: false,
        }
    }

    /// Runs the hook on a thread of its own, which the exit run waits for.
    ///
    /// When the process exits, the exiting thread's thread-locals are
    /// destroyed before any handler runs, so a handler that uses one there
    /// panics ("cannot access a Thread Local Storage value during or after
    /// destruction"). Libraries keep state in thread-locals without saying
    /// so — `tracing` subscribers format each event in one — so a hook that
    /// logs, or calls such a library, should run on a new thread. A panic
    /// there is reported like any other; if no thread can be started, the
    /// hook runs on the exiting thread.
    ///
    /// ```
    /// atexit::Hook::new(|| println!("on a thread with fresh thread-locals"))
    ///     .on_new_thread()
    ///     .register();
    /// # atexit::clear();
    /// ```
    pub fn on_new_thread(mut self) -> Self {
        self.new_thread = true;
        self
    }

    /// Registers the hook in the process-wide registry, like
    /// [`register`](crate::register()).
    #[track_caller]
    pub fn register(self) -> Handle {
        let callback = self.callback;
        let callback: Callback = if self.new_thread {
            Callback::new(move || hook_thread::run_on_new_thread(callback))
        } else {
            Callback::new(callback)
        };
        register_callback(
            callback,
            std::panic::Location::caller(),
            function_key::<F>(),
            self.name,
            self.in_child,
        )
    }
}

impl<F> Hook<F> {
    /// A name for reports about this hook (a panic, a missed deadline, the
    /// `ATEXIT_TRACE` line, an
    /// async hook past its bound), shown beside its registration site.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// What a forked child does with this hook; [`InChild::Run`] by default.
    pub fn in_child(mut self, policy: InChild) -> Self {
        self.in_child = policy;
        self
    }
}

/// Registers a ready callback with the options of a [`Hook`].
fn register_callback(
    callback: Callback,
    site: &'static std::panic::Location<'static>,
    key: Option<std::any::TypeId>,
    name: Option<Cow<'static, str>>,
    in_child: InChild,
) -> Handle {
    let owner_pid = match in_child {
        InChild::Run => None,
        InChild::Skip => Some(std::process::id()),
    };
    let meta = (name.is_some() || owner_pid.is_some()).then(|| Box::new(Meta { name, owner_pid }));
    exit_hook::register(callback, site, key, meta)
}

/// The bound of an async hook that was given no
/// [`timeout`](Hook::timeout): 5 seconds (feature `tokio`).
///
/// ```
/// assert_eq!(atexit::ASYNC_TIMEOUT, std::time::Duration::from_secs(5));
/// ```
#[cfg(feature = "tokio")]
pub const ASYNC_TIMEOUT: Duration = Duration::from_secs(5);

/// What [`Hook::new_async`] wraps: a function that makes the hook's future,
/// and the time the exit run waits for it (feature `tokio`).
///
/// ```
/// let hook: atexit::Hook<atexit::Async<_>> = atexit::Hook::new_async(|| async {});
/// # drop(hook);
/// ```
#[cfg(feature = "tokio")]
pub struct Async<F> {
    make: F,
    timeout: Duration,
}

#[cfg(feature = "tokio")]
impl<F> fmt::Debug for Async<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Async")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "tokio")]
impl<F, Fut> Hook<Async<F>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    /// An async hook (feature `tokio`): at exit, the future `f()` runs on the
    /// tokio runtime the hook is registered from, and the exit run waits for
    /// it at most its [`timeout`](Hook::timeout) ([`ASYNC_TIMEOUT`], 5 s,
    /// unless set). Async and sync hooks run in one order, newest first.
    ///
    /// When that runtime cannot run it — it was dropped (`#[tokio::main]`
    /// returned), or it is driven by the thread that is exiting (a
    /// current-thread runtime, or a multi-thread one with one worker, whose
    /// task called `std::process::exit`), or this is a child made by `fork`
    /// — the future runs on a new current-thread runtime on a thread of its
    /// own. Tokio I/O objects made on the old runtime do not work there
    /// (connect, open and time inside the hook instead), and neither do
    /// tasks the old runtime was running. To run the hooks on the program's
    /// own runtime, end the async `main` with
    /// [`run_async_now().await`](crate::run_async_now).
    ///
    /// A hook past its bound, or one that cannot run, is named on stderr
    /// (`atexit: async exit hook `flush` (registered at src/main.rs:9:5) did
    /// not finish within 5s; skipped`) and left behind; the exit goes on. A
    /// panic in it is reported like a sync hook's.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), atexit::Error> {
    /// use std::time::Duration;
    ///
    /// atexit::Hook::new_async(|| async {
    ///     tokio::time::sleep(Duration::from_millis(10)).await;
    ///     println!("flushed");
    /// })
    /// .name("flush")
    /// .timeout(Duration::from_secs(2))
    /// .register()?;
    /// atexit::run_async_now().await.unwrap(); // prints "flushed"
    /// # Ok(())
    /// # }
    /// ```
    pub fn new_async(f: F) -> Self {
        Hook {
            callback: Async {
                make: f,
                timeout: ASYNC_TIMEOUT,
            },
            name: None,
            in_child: InChild::Run,
            new_thread: false,
        }
    }

    /// How long the exit run waits for this hook; [`ASYNC_TIMEOUT`] (5 s)
    /// unless set. `Duration::MAX` waits for ever (only
    /// [`set_deadline`](crate::set_deadline) then bounds it).
    pub fn timeout(mut self, bound: Duration) -> Self {
        self.callback.timeout = bound;
        self
    }

    /// Registers the async hook in the process-wide registry, capturing the
    /// runtime this is called from.
    ///
    /// # Errors
    ///
    /// [`Error::NoRuntime`](crate::Error::NoRuntime) outside a tokio runtime;
    /// nothing is registered then.
    #[track_caller]
    pub fn register(self) -> Result<Handle, Error> {
        let site = std::panic::Location::caller();
        let origin = tokio_hook::Origin::here().ok_or(Error::NoRuntime { site })?;
        let Async { make, timeout } = self.callback;
        let named = tokio_hook::Named {
            site,
            name: self.name.clone(),
        };
        Ok(register_callback(
            Callback::new(move || tokio_hook::run(make, origin, timeout, named)),
            site,
            function_key::<F>(),
            self.name,
            self.in_child,
        ))
    }
}

impl<F> fmt::Debug for Hook<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hook")
            .field("name", &self.name)
            .field("in_child", &self.in_child)
            .field("new_thread", &self.new_thread)
            .finish_non_exhaustive()
    }
}

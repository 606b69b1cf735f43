//! [`Hook`]: a registration with options (a name, a fork policy, a thread
//! of its own).

use std::borrow::Cow;
use std::fmt;

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

    /// A name for reports about this hook (a panic, a missed deadline, the
    /// `ATEXIT_TRACE` line), shown beside its registration site.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// What a forked child does with this hook; [`InChild::Run`] by default.
    pub fn in_child(mut self, policy: InChild) -> Self {
        self.in_child = policy;
        self
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
        let owner_pid = match self.in_child {
            InChild::Run => None,
            InChild::Skip => Some(std::process::id()),
        };
        let meta = (self.name.is_some() || owner_pid.is_some()).then(|| {
            Box::new(Meta {
                name: self.name,
                owner_pid,
            })
        });
        let callback = self.callback;
        let callback: Callback = if self.new_thread {
            Callback::new(move || hook_thread::run_on_new_thread(callback))
        } else {
            Callback::new(callback)
        };
        exit_hook::register(
            callback,
            std::panic::Location::caller(),
            function_key::<F>(),
            meta,
        )
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

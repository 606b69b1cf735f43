//! [`Handle`] (one registration) and [`Hook`] (a registration with options).

use std::borrow::Cow;
use std::fmt;
use std::sync::Weak;

use crate::global;
use crate::registry::{function_key, Shared};
use crate::run;
use crate::store::{Callback, Meta, Ticket};

/// Which registry a [`Handle`] belongs to.
#[derive(Clone)]
pub(crate) enum Owner {
    Global,
    Local(Weak<Shared>),
}

/// One registration. Returned by [`register`](crate::register()) and friends.
///
/// Dropping a `Handle` keeps the registration: ignoring it is the normal
/// case. Keep it to cancel exactly this registration later, in O(1).
///
/// ```
/// let handle = atexit::register(|| println!("never printed"));
/// assert!(handle.is_registered());
/// assert!(handle.unregister());
/// ```
#[derive(Clone)]
pub struct Handle {
    owner: Owner,
    ticket: Ticket,
}

impl Handle {
    pub(crate) fn new(owner: Owner, ticket: Ticket) -> Self {
        Handle { owner, ticket }
    }

    /// Cancels this registration. Returns `true` if it was still pending
    /// (it will not run), `false` if it had already run or been removed.
    ///
    /// # Performance
    ///
    /// O(1), whatever the number of other handlers.
    ///
    /// ```
    /// let handle = atexit::register(|| {});
    /// assert!(handle.clone().unregister());
    /// assert!(!handle.unregister()); // already gone
    /// ```
    pub fn unregister(self) -> bool {
        match &self.owner {
            Owner::Global => global::shared().remove(self.ticket),
            Owner::Local(shared) => shared
                .upgrade()
                .is_some_and(|shared| shared.remove(self.ticket)),
        }
    }

    /// Whether this registration is still pending.
    ///
    /// ```
    /// let registry = atexit::Registry::new();
    /// let handle = registry.register(|| {});
    /// registry.run().unwrap();
    /// assert!(!handle.is_registered());
    /// ```
    pub fn is_registered(&self) -> bool {
        match &self.owner {
            Owner::Global => global::shared().contains(self.ticket),
            Owner::Local(shared) => shared
                .upgrade()
                .is_some_and(|shared| shared.contains(self.ticket)),
        }
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let registry = match self.owner {
            Owner::Global => "process",
            Owner::Local(_) => "local",
        };
        f.debug_struct("Handle")
            .field("registry", &registry)
            .field("slot", &self.ticket.index)
            .field("stamp", &self.ticket.stamp)
            .finish()
    }
}

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

    /// A name for reports about this hook (a panic, a missed deadline),
    /// shown beside its registration site.
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
            Callback::new(move || run::on_new_thread(callback))
        } else {
            Callback::new(callback)
        };
        global::register(
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

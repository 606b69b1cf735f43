//! [`Registry`]: the exit-handler machinery as a value, and the locked store
//! that it shares with the process-wide registry.

use std::any::TypeId;
use std::fmt;
use std::mem::size_of;
use std::sync::{Arc, Weak};

use crate::args::Args;
use crate::error::RunError;
use crate::hook::{Handle, Owner};
use crate::run::{self, Report};
use crate::store::{Callback, Meta, Popped, Site, Store, Ticket};
use crate::sys::{Guard, Lock};

/// The handler store behind a lock.
///
/// The lock (`sys::Lock`) is a spin lock that yields: its critical sections
/// are a few pointer writes, and unlike `std::sync::Mutex` it can be taken
/// in a fork prepare hook and released in the child. No user code ever runs
/// while it is held: callbacks are dropped and run after release.
pub(crate) struct Shared {
    store: Lock<Store>,
}

impl Shared {
    pub(crate) const fn new() -> Self {
        Shared {
            store: Lock::new(Store::new()),
        }
    }

    pub(crate) fn lock(&self) -> Guard<'_, Store> {
        self.store.lock()
    }

    /// The lock itself, for the fork hooks in `sys`.
    pub(crate) fn raw_lock(&self) -> &Lock<Store> {
        &self.store
    }

    /// Gives the storage back if nothing is pending (after a run).
    pub(crate) fn shrink_if_empty(&self) {
        self.lock().shrink_if_empty();
    }

    pub(crate) fn insert(
        &self,
        callback: Callback,
        site: Site,
        key: Option<TypeId>,
        meta: Option<Box<Meta>>,
    ) -> Ticket {
        self.lock().insert(callback, site, key, meta)
    }

    pub(crate) fn remove(&self, ticket: Ticket) -> bool {
        let removed = self.lock().remove(ticket);
        let found = removed.is_some();
        drop(removed);
        found
    }

    pub(crate) fn contains(&self, ticket: Ticket) -> bool {
        self.lock().contains(ticket)
    }

    pub(crate) fn remove_function(&self, key: TypeId) -> usize {
        // Dropped after the lock is released: captured values run user code.
        let mut removed = Vec::new();
        let count = self.lock().remove_function(key, &mut removed);
        drop(removed);
        count
    }

    pub(crate) fn pending(&self) -> usize {
        self.lock().len()
    }

    pub(crate) fn clear(&self) {
        let mut removed = Vec::new();
        self.lock().drain_into(&mut removed);
        drop(removed);
    }

    pub(crate) fn pop(&self) -> Option<Popped> {
        self.lock().pop_newest()
    }
}

/// Every `Registry` alive, so that the fork hooks can hold all their locks
/// across `fork` (a library may keep one in a static and use it from
/// several threads). Dead entries are pruned as new ones arrive.
static LIVE_REGISTRIES: Lock<Vec<Weak<Shared>>> = Lock::new(Vec::new());

/// The list of live registries, for the fork hooks in `sys`.
pub(crate) fn live_registries() -> &'static Lock<Vec<Weak<Shared>>> {
    &LIVE_REGISTRIES
}

fn track(shared: &Arc<Shared>) {
    crate::global::ensure_fork_hooks();
    let mut live = LIVE_REGISTRIES.lock();
    live.retain(|registry| registry.strong_count() > 0);
    live.push(Arc::downgrade(shared));
}

/// The key under which `unregister(f)` finds registrations of `F`: only
/// zero-sized callables (function items, non-capturing closures) have one.
pub(crate) fn function_key<F: 'static>() -> Option<TypeId> {
    if size_of::<F>() == 0 {
        Some(TypeId::of::<F>())
    } else {
        None
    }
}

/// Refuses, at compile time, a callable that `unregister` could not match.
pub(crate) const fn assert_function_key<F>() {
    assert!(
        size_of::<F>() == 0,
        "atexit: unregister takes a function item or a non-capturing closure; this value \
         captures data (or is a function pointer), so it cannot be matched: keep the Handle \
         that register returned and call Handle::unregister instead"
    );
}

/// A set of exit handlers as a value: the same machinery as the
/// process-wide registry, for libraries that want their own shutdown list
/// and for tests.
///
/// Handlers run newest first when [`run`](Registry::run) is called, or when
/// the `Registry` is dropped; a handler that panics is reported and the
/// others still run.
///
/// ```
/// use std::sync::{Arc, Mutex};
///
/// let log = Arc::new(Mutex::new(Vec::new()));
/// let registry = atexit::Registry::new();
/// for name in ["db", "cache", "socket"] {
///     let log = Arc::clone(&log);
///     registry.register(move || log.lock().unwrap().push(name));
/// }
/// assert_eq!(registry.pending(), 3);
/// registry.run().unwrap();
/// assert_eq!(*log.lock().unwrap(), ["socket", "cache", "db"]);
/// ```
pub struct Registry {
    shared: Arc<Shared>,
}

impl Registry {
    /// An empty registry. Allocates only the shared header; the first one
    /// also installs the fork hooks that keep registries whole in a child.
    #[must_use]
    pub fn new() -> Self {
        let shared = Arc::new(Shared::new());
        track(&shared);
        Registry { shared }
    }

    /// Registers `f` to run when this registry runs or is dropped.
    ///
    /// ```
    /// let registry = atexit::Registry::new();
    /// let handle = registry.register(|| println!("bye"));
    /// assert!(handle.is_registered());
    /// ```
    #[track_caller]
    pub fn register<F>(&self, f: F) -> Handle
    where
        F: FnOnce() + Send + 'static,
    {
        let ticket = self.shared.insert(
            Callback::new(f),
            std::panic::Location::caller(),
            function_key::<F>(),
            None,
        );
        self.handle(ticket)
    }

    /// Registers `func` to be called with `args` (a tuple of up to 8
    /// values), like [`crate::register_with`].
    ///
    /// ```
    /// fn close(name: &str, verbose: bool) {
    ///     if verbose {
    ///         println!("closing {name}");
    ///     }
    /// }
    /// let registry = atexit::Registry::new();
    /// registry.register_with(close, ("db", true));
    /// registry.run().unwrap();
    /// ```
    #[track_caller]
    pub fn register_with<F, A>(&self, func: F, args: A) -> Handle
    where
        F: Send + 'static,
        A: Args<F>,
    {
        let ticket = self.shared.insert(
            Callback::new(move || args.call(func)),
            std::panic::Location::caller(),
            function_key::<F>(),
            None,
        );
        self.handle(ticket)
    }

    /// Removes every pending registration of the function `func`, like
    /// [`crate::unregister`]; returns how many.
    ///
    /// ```
    /// fn flush() {}
    /// let registry = atexit::Registry::new();
    /// registry.register(flush);
    /// registry.register(flush);
    /// assert_eq!(registry.unregister(flush), 2);
    /// ```
    pub fn unregister<F: 'static>(&self, func: F) -> usize {
        const { assert_function_key::<F>() };
        drop(func);
        self.shared.remove_function(TypeId::of::<F>())
    }

    /// Runs and removes every pending handler, newest first. A handler
    /// registered meanwhile runs in the same run; one unregistered meanwhile
    /// does not run. Called from inside one of this registry's handlers, it
    /// returns `Ok(())` at once and the outer run carries on.
    ///
    /// ```
    /// let registry = atexit::Registry::new();
    /// registry.register(|| println!("ran"));
    /// registry.run().unwrap();
    /// assert_eq!(registry.pending(), 0);
    /// ```
    ///
    /// # Errors
    ///
    /// [`RunError`] lists the handlers that panicked; all others ran.
    pub fn run(&self) -> Result<(), RunError> {
        run::run(&self.shared, Report::Return)
    }

    /// How many handlers are pending.
    ///
    /// ```
    /// let registry = atexit::Registry::new();
    /// let handle = registry.register(|| {});
    /// assert_eq!(registry.pending(), 1);
    /// handle.unregister();
    /// assert_eq!(registry.pending(), 0);
    /// ```
    pub fn pending(&self) -> usize {
        self.shared.pending()
    }

    /// Removes every pending handler without running it (captured values
    /// are dropped).
    ///
    /// ```
    /// let registry = atexit::Registry::new();
    /// registry.register(|| unreachable!());
    /// registry.clear();
    /// drop(registry); // runs nothing
    /// ```
    pub fn clear(&self) {
        self.shared.clear();
    }

    fn handle(&self, ticket: Ticket) -> Handle {
        Handle::new(Owner::Local(Arc::downgrade(&self.shared)), ticket)
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("pending", &self.pending())
            .finish()
    }
}

impl Drop for Registry {
    /// Runs what is still pending; failures are reported on stderr, since
    /// there is no caller to return them to.
    fn drop(&mut self) {
        let _ = run::run(&self.shared, Report::Stderr);
    }
}

//! [`Registry`]: the exit-handler machinery as a value, for libraries that
//! want their own shutdown list and for tests.

use std::any::TypeId;
use std::fmt;
use std::sync::Arc;

use crate::args::Args;
use crate::error::RunError;
use crate::process::fork;
use crate::process::global::InThisProcess;
use crate::registry::run::{self, Report};
use crate::registry::{self, assert_function_key, function_key, Handle, Shared};
use crate::store::{Callback, Ticket};

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
        // A registry in a static, used by several threads, must be whole in
        // a child made by `fork`.
        fork::ensure_hooks();
        Registry {
            shared: registry::new_tracked(),
        }
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
        run::run(&self.shared, Report::Return, &InThisProcess)
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
        Handle::in_local(&self.shared, ticket)
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
        let _ = run::run(&self.shared, Report::Stderr, &InThisProcess);
    }
}

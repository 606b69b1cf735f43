//! [`Handle`]: one registration, in whichever registry holds it.

use std::fmt;
use std::sync::{Arc, Weak};

use crate::registry::Shared;
use crate::store::Ticket;

/// Which registry a [`Handle`] belongs to.
#[derive(Clone)]
enum Owner {
    /// A registry that lives as long as the program: the process-wide one.
    Static(&'static Shared),
    /// A registry owned by `Registry` values; gone once they are.
    Local(Weak<Shared>),
}

/// One registration. Returned by [`register`](crate::register()) and friends.
///
/// Dropping a `Handle` keeps the registration: ignoring it is the normal
/// case. Keep it to cancel exactly this registration later, in O(1) (at
/// worst O(log n), see [`Handle::unregister`]).
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
    /// A registration in a registry that lives as long as the program.
    pub(crate) fn in_static(shared: &'static Shared, ticket: Ticket) -> Self {
        Handle {
            owner: Owner::Static(shared),
            ticket,
        }
    }

    /// A registration in a registry owned by `Registry` values.
    pub(crate) fn in_local(shared: &Arc<Shared>, ticket: Ticket) -> Self {
        Handle {
            owner: Owner::Local(Arc::downgrade(shared)),
            ticket,
        }
    }

    /// Cancels this registration. Returns `true` if it was still pending
    /// (it will not run), `false` if it had already run or been removed.
    ///
    /// # Performance
    ///
    /// O(1), whatever the number of other handlers, while the registration
    /// is where it was put; after enough other handlers were removed that
    /// the store compacted itself, a binary search over the pending ones,
    /// O(log n). The same for a registration already gone.
    ///
    /// ```
    /// let handle = atexit::register(|| {});
    /// assert!(handle.clone().unregister());
    /// assert!(!handle.unregister()); // already gone
    /// ```
    pub fn unregister(self) -> bool {
        match &self.owner {
            Owner::Static(shared) => shared.remove(self.ticket),
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
            Owner::Static(shared) => shared.contains(self.ticket),
            Owner::Local(shared) => shared
                .upgrade()
                .is_some_and(|shared| shared.contains(self.ticket)),
        }
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let registry = match self.owner {
            Owner::Static(_) => "process",
            Owner::Local(_) => "local",
        };
        f.debug_struct("Handle")
            .field("registry", &registry)
            .field("slot", &self.ticket.index)
            .field("stamp", &self.ticket.stamp)
            .finish()
    }
}

//! The registry layer: the handler store behind its fork-safe lock
//! (`Shared`), the one run loop (`run`), and the handle to one registration
//! (`handle`). It knows nothing of processes, signals or deadlines: what a
//! run must tell the process layer goes through `run::Observer`.

mod handle;
pub(crate) mod run;

use std::any::TypeId;
use std::mem::size_of;
use std::sync::{Arc, OnceLock, Weak};

use crate::store::{Callback, Meta, Site, Store, Ticket};
use crate::sys::{Guard, HeldAcrossFork, Lock};

pub use handle::Handle;

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

    /// Takes the lock of a registry in a static until the hold is dropped,
    /// for the fork hooks.
    pub(crate) fn hold_across_fork(&'static self) -> HeldAcrossFork {
        self.store.hold_across_fork()
    }

    /// The same for a registry owned by `Registry` values.
    pub(crate) fn hold_shared_across_fork(shared: Arc<Shared>) -> HeldAcrossFork {
        Lock::hold_in_across_fork(shared, |shared| &shared.store)
    }

    /// Gives the storage back if nothing is pending (after a run).
    pub(crate) fn shrink_if_empty(&self) {
        self.lock().shrink_if_empty();
    }

    #[inline(always)]
    pub(crate) fn insert(
        &self,
        callback: Callback,
        site: Site,
        key: Option<TypeId>,
        meta: Option<Box<Meta>>,
    ) -> Ticket {
        self.lock().insert(callback, site, key, meta)
    }

    /// `insert` of a function item without options (`Store::insert_function`).
    #[inline(always)]
    pub(crate) fn insert_function(&self, callback: Callback, site: Site, key: TypeId) -> Ticket {
        self.lock().insert_function(callback, site, key)
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
}

/// Every registry owned by `Registry` values and alive, so that the fork
/// hooks can hold all their locks across `fork` (a library may keep one in
/// a static and use it from several threads). Dead entries are pruned as
/// new ones arrive.
static LIVE: Lock<Vec<Weak<Shared>>> = Lock::new(Vec::new());

/// `hold_all_live_across_fork`, set when the first `Registry` value is
/// made: until then there is nothing to hold, and a program that never
/// makes one does not carry the code.
static HOLD_LIVE: OnceLock<fn() -> Vec<HeldAcrossFork>> = OnceLock::new();

/// A new registry, counted among the live ones.
pub(crate) fn new_tracked() -> Arc<Shared> {
    // Before it joins the list: a fork from now on holds the list.
    HOLD_LIVE.get_or_init(|| hold_all_live_across_fork);
    let shared = Arc::new(Shared::new());
    let mut live = LIVE.lock();
    live.retain(|registry| registry.strong_count() > 0);
    live.push(Arc::downgrade(&shared));
    shared
}

/// Holds the lock of the live list, and then of every live registry, until
/// the holds are dropped: no registry changes meanwhile, and none is added.
/// Nothing before the first `Registry` value.
pub(crate) fn hold_live_across_fork() -> Vec<HeldAcrossFork> {
    match HOLD_LIVE.get() {
        Some(hold) => hold(),
        None => Vec::new(),
    }
}

fn hold_all_live_across_fork() -> Vec<HeldAcrossFork> {
    let live = LIVE.lock();
    let registries: Vec<Arc<Shared>> = live.iter().filter_map(Weak::upgrade).collect();
    let mut held = vec![live.keep_across_fork()];
    held.extend(registries.into_iter().map(Shared::hold_shared_across_fork));
    held
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

//! The process-wide registry and the moment it is wired to the C library's
//! exit machinery: on the first registration, never before, so that a
//! program that registers nothing starts no thread, allocates nothing and
//! takes no lock.

use std::any::TypeId;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use crate::hook::{Handle, Owner};
use crate::registry::Shared;
use crate::store::{Callback, Meta, Site};
use crate::sys;

static GLOBAL: Shared = Shared::new();

/// Whether the C library will call us at exit. Cleared once the exit run is
/// over, so that a handler registered after it (from a later C exit entry)
/// re-arms the hook and still runs.
static EXIT_HOOK_ARMED: AtomicBool = AtomicBool::new(false);
static FORK_HOOKS: Once = Once::new();

pub(crate) fn shared() -> &'static Shared {
    &GLOBAL
}

/// Registers in the process-wide registry, arming the exit hook first so
/// that a registration that has returned is always covered.
pub(crate) fn register(
    callback: Callback,
    site: Site,
    key: Option<TypeId>,
    meta: Option<Box<Meta>>,
) -> Handle {
    if !EXIT_HOOK_ARMED.load(Ordering::Acquire) {
        arm_exit_hook();
    }
    let ticket = GLOBAL.insert(callback, site, key, meta);
    Handle::new(Owner::Global, ticket)
}

#[cold]
fn arm_exit_hook() {
    // Fork hooks first and outside our lock: `pthread_atfork` takes the C
    // library's fork lock, which `fork` holds while calling our prepare hook.
    ensure_fork_hooks();
    // Arming under the registry lock serialises it with other first
    // registrations and with `fork` (whose prepare hook takes this lock).
    let _store = GLOBAL.lock();
    if !EXIT_HOOK_ARMED.load(Ordering::Acquire) {
        sys::install_exit_hook();
        EXIT_HOOK_ARMED.store(true, Ordering::Release);
    }
}

/// Installs the hooks that hold every registry lock across `fork`.
pub(crate) fn ensure_fork_hooks() {
    FORK_HOOKS.call_once(sys::install_fork_hooks);
}

/// Called when the exit run is over.
pub(crate) fn disarm_exit_hook() {
    EXIT_HOOK_ARMED.store(false, Ordering::Release);
}

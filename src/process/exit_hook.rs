//! Registering in the process-wide registry, and the moment it is wired to
//! the C library's exit machinery: on the first registration, never
//! before, so that a program that registers nothing starts no thread,
//! allocates nothing and takes no lock.

use std::any::TypeId;

#[cfg(panic = "abort")]
use crate::process::panic_abort;
use crate::process::{exit_run, fork, global};
use crate::registry::Handle;
use crate::store::{Callback, Meta, Site};
use crate::sys;

/// Registers in the process-wide registry, arming the exit hook first so
/// that a registration that has returned is always covered.
pub(crate) fn register(
    callback: Callback,
    site: Site,
    key: Option<TypeId>,
    meta: Option<Box<Meta>>,
) -> Handle {
    register_inline(callback, site, key, meta)
}

/// `register` of a function item (`key` its type) without options: the
/// common case, compiled with what it need not check left out.
pub(crate) fn register_function(callback: Callback, site: Site, key: TypeId) -> Handle {
    ensure_armed();
    let shared = global::shared();
    let ticket = shared.insert_function(callback, site, key);
    Handle::in_static(shared, ticket)
}

/// `register` of a closure with captures, without options.
pub(crate) fn register_closure(callback: Callback, site: Site) -> Handle {
    register_inline(callback, site, None, None)
}

#[inline(always)]
fn register_inline(
    callback: Callback,
    site: Site,
    key: Option<TypeId>,
    meta: Option<Box<Meta>>,
) -> Handle {
    ensure_armed();
    let shared = global::shared();
    let ticket = shared.insert(callback, site, key, meta);
    Handle::in_static(shared, ticket)
}

/// Makes sure the C library will call the exit run (the guardian needs
/// every normal ending to finish one, even with no handler registered).
#[inline]
pub(crate) fn ensure_armed() {
    if !global::exit_hook_armed() {
        arm();
    }
}

#[cold]
fn arm() {
    // Fork hooks first and outside our lock: `pthread_atfork` takes the C
    // library's fork lock, which `fork` holds while calling our prepare hook.
    fork::ensure_hooks();
    #[cfg(panic = "abort")]
    panic_abort::install();
    // Arming under the registry lock serialises it with other first
    // registrations and with `fork` (whose prepare hook takes this lock).
    let _store = global::shared().lock();
    if !global::exit_hook_armed() {
        sys::install_exit_hook(exit_run::on_process_exit);
        global::set_exit_hook_armed(true);
    }
}

//! `fork`: every registry lock is held across it, so that a child never
//! inherits a registry in the middle of a change (and never a held lock),
//! and the child learns that the parent's exit run is not its own.

use std::sync::Once;

use crate::process::{exit_run, global, observers};
use crate::registry;
use crate::sys::{self, HeldAcrossFork, Lock};

static INSTALLED: Once = Once::new();

/// The locks taken by `before_fork`, released on both sides after it.
/// Only the fork hooks touch it, and the C library runs those one fork at
/// a time.
static HELD: Lock<Vec<HeldAcrossFork>> = Lock::new(Vec::new());

/// Installs the fork hooks, once: before the first registration in the
/// process-wide registry, and when the first `Registry` value is made.
pub(crate) fn ensure_hooks() {
    INSTALLED.call_once(|| sys::install_fork_hooks(before_fork, in_parent, in_child));
}

fn before_fork() {
    // Waits for any registration in progress, so the child's copies are whole.
    let mut held = registry::hold_live_across_fork();
    held.push(global::shared().hold_across_fork());
    *HELD.lock() = held;
}

fn release() {
    // Dropping the holds releases the locks; the registries they kept alive
    // may be freed then, after their locks are released.
    let holds = std::mem::take(&mut *HELD.lock());
    drop(holds);
}

fn in_parent() {
    release();
}

fn in_child() {
    release();
    exit_run::after_fork_in_child();
    observers::forked_child();
}

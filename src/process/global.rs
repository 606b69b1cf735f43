//! The one process-wide registry, and what its runs must respect in this
//! process: a hook registered with `InChild::Skip` runs only in the process
//! that registered it.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::registry::run::Observer;
use crate::registry::Shared;
use crate::store::Meta;

static GLOBAL: Shared = Shared::new();

/// Whether the C library will call the exit run. Cleared once the exit run
/// is over, so that a handler registered after it (from a later C exit
/// entry) re-arms the hook and still runs.
static EXIT_HOOK_ARMED: AtomicBool = AtomicBool::new(false);

pub(crate) fn shared() -> &'static Shared {
    &GLOBAL
}

pub(crate) fn exit_hook_armed() -> bool {
    EXIT_HOOK_ARMED.load(Ordering::Acquire)
}

pub(crate) fn set_exit_hook_armed(armed: bool) {
    EXIT_HOOK_ARMED.store(armed, Ordering::Release);
}

/// Runs outside the exit run: `run_now`, and `Registry` values (whose
/// handlers never carry an owner, so it has nothing to refuse there; one
/// observer type for both keeps one copy of the run loop).
pub(crate) struct InThisProcess;

impl Observer for InThisProcess {
    fn may_run(&self, meta: &Meta) -> bool {
        // A hook with `InChild::Skip`, inherited through `fork`, does not.
        meta.owner_pid
            .is_none_or(|owner| owner == std::process::id())
    }
}

//! `panic = "abort"`: a panic runs the exit handlers before the process
//! aborts. Built only with that strategy; with unwinding, a panic in `main`
//! returns through it and the C library's exit runs the handlers.
//!
//! The crate's panic hook is installed on the first registration and calls
//! the hook installed before it first, so the panic message is printed as
//! usual; then it runs the exit run on the panicking thread. When the hook
//! returns, the standard library aborts the process: it still dies of
//! SIGABRT. A hook installed later with `std::panic::set_hook` replaces
//! this one (handlers then do not run on a panic) unless it calls the hook
//! it took with `take_hook`.

use std::io::{self, Write};
use std::panic;
use std::sync::Once;

use crate::process::ending::park_forever;
use crate::process::exit_run::{self, Begin};
use crate::process::reason::ExitReason;

static INSTALLED: Once = Once::new();

/// Chains the crate's panic hook in front of the current one, once.
pub(crate) fn install() {
    INSTALLED.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            previous(info);
            on_panic();
        }));
    });
}

fn on_panic() {
    match exit_run::begin(ExitReason::Panic) {
        Begin::Owner => {
            exit_run::run_handlers();
            exit_run::finish();
            let _ = io::stdout().flush();
        }
        // A handler of the exit run panicked (on its thread, or on a hook's
        // own thread): the handlers left still run, then the abort.
        Begin::Nested => exit_run::run_handlers(),
        // Another thread is ending the process: let it finish its run.
        Begin::Elsewhere => park_forever(),
    }
}

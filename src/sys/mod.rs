//! Platform dispatch: the only place that talks to the C library, and the
//! only module allowed `unsafe`.

mod erased;
mod lock;
#[cfg(unix)]
mod unix;

pub(crate) use erased::Callback;
pub(crate) use lock::{Guard, Lock};
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(not(unix))]
compile_error!("the atexit crate supports Unix-like systems (Linux, the BSDs, macOS) only");

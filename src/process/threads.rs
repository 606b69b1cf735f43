//! The crate's own named threads (signals, deadline, grace period, flush,
//! hooks on a thread of their own), all started by one non-generic
//! function: std's spawn code is generic over the closure, and one copy of
//! it per thread kind would end up in every program.

use std::io;
use std::thread::{self, JoinHandle};

/// Starts `f` on a new thread called `name`.
pub(crate) fn spawn(name: &str, f: Box<dyn FnOnce() + Send>) -> io::Result<JoinHandle<()>> {
    thread::Builder::new().name(name.to_owned()).spawn(f)
}

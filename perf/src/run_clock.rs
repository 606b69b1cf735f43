//! The clock of an exit-run measurement: the newest handler starts it and
//! the oldest reads it, so it times the run loop itself. Shared by
//! `atexit-perf` and the criterion benches.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Instant;

/// How many times `count` ran.
pub static CALLS: AtomicU64 = AtomicU64::new(0);
static ORIGIN: OnceLock<Instant> = OnceLock::new();
static STARTED_NS: AtomicU64 = AtomicU64::new(0);

/// Nanoseconds since the first call (which fixes the origin).
pub fn now_ns() -> u64 {
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// The handler every measurement registers: the same work as the C
/// anchor's `count`.
pub fn count() {
    CALLS.fetch_add(1, Relaxed);
}

/// Registered newest: runs first and starts the clock.
pub fn start() {
    STARTED_NS.store(now_ns(), Relaxed);
}

/// Nanoseconds since `start`: what the oldest handler reads.
pub fn elapsed_ns() -> u64 {
    now_ns() - STARTED_NS.load(Relaxed)
}

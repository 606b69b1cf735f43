//! [`set_failure_code`](crate::set_failure_code): whether a handler of the
//! exit run failed, and the status that turns a success into then.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// `set_failure_code`: 0 when unset, else `SET | code`.
static FAILURE_CODE: AtomicU64 = AtomicU64::new(0);
const SET: u64 = 1 << 32;
/// Whether a handler of the exit run failed, counting nested runs whose
/// outer loop never resumes (a handler that called `exit`).
static EXIT_RUN_FAILED: AtomicBool = AtomicBool::new(false);

pub(crate) fn set_failure_code(code: Option<i32>) {
    let packed = code.map_or(0, |code| SET | u64::from(code as u32));
    FAILURE_CODE.store(packed, Ordering::Relaxed);
}

/// A handler of the exit run failed.
pub(crate) fn note_failure() {
    EXIT_RUN_FAILED.store(true, Ordering::Relaxed);
}

/// The code `set_failure_code` asks for, if it applies to an exit with
/// `status`.
pub(crate) fn failure_override(status: Option<i32>) -> Option<i32> {
    let packed = FAILURE_CODE.load(Ordering::Relaxed);
    // Only the low byte reaches the parent: `exit(256)` is a success too.
    let succeeded = status.is_some_and(|status| status & 0xff == 0);
    let failed = EXIT_RUN_FAILED.load(Ordering::Relaxed);
    (packed != 0 && succeeded && failed).then_some(packed as u32 as i32)
}

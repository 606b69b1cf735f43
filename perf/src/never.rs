//! What a program that never registers pays: measured in a child
//! (`--child never`) that links the crate and uses nothing that registers.
//!
//! Three counters, all read at the very end of the child's exit:
//! - allocations through the Rust allocator (counted only in this child);
//! - threads, from `/proc/self/task`;
//! - calls to `on_exit` and `pthread_atfork`, the two C library calls by
//!   which the crate arms its exit and fork hooks. This binary defines both
//!   symbols itself (counting, then forwarding to the C library), so the
//!   crate's calls land here. With neither hook armed, no crate code runs
//!   at exit or at fork, so the registry lock is never taken.
//!
//! `--child never-control` registers one handler, to show that the same
//! counters do see the crate when it is used.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::io::{self, Write};
use std::os::raw::{c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

/// The allocator of this whole binary: the system allocator, counting
/// allocations only while `COUNTING` is set, so that the timed children pay
/// one relaxed load and nothing else.
pub struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static EXIT_HOOKS: AtomicUsize = AtomicUsize::new(0);
static FORK_HOOKS: AtomicUsize = AtomicUsize::new(0);
static THREADS_AT_START: AtomicUsize = AtomicUsize::new(0);

fn note_allocation() {
    if COUNTING.load(Relaxed) {
        ALLOCATIONS.fetch_add(1, Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's own
// arguments, so `System`'s guarantees are this allocator's.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded as received (see the impl).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded as received (see the impl).
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded as received (see the impl).
        unsafe { System.realloc(block, layout, new_size) }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received (see the impl).
        unsafe { System.dealloc(block, layout) }
    }
}

type ExitCallback = extern "C" fn(c_int, *mut c_void);
type ForkCallback = Option<unsafe extern "C" fn()>;

/// glibc's `RTLD_NEXT`: the next definition after this binary's own.
const RTLD_NEXT: *mut c_void = -1isize as *mut c_void;

extern "C" {
    /// What glibc's `pthread_atfork` (a static stub) calls.
    fn __register_atfork(
        prepare: ForkCallback,
        parent: ForkCallback,
        child: ForkCallback,
        dso_handle: *mut c_void,
    ) -> c_int;
}

/// Counts, then does what the C library's `on_exit` does.
#[no_mangle]
pub extern "C" fn on_exit(callback: ExitCallback, arg: *mut c_void) -> c_int {
    EXIT_HOOKS.fetch_add(1, Relaxed);
    // SAFETY: the name is a NUL-terminated literal; RTLD_NEXT asks for the
    // C library's definition, not this one.
    let real = unsafe { libc::dlsym(RTLD_NEXT, c"on_exit".as_ptr()) };
    if real.is_null() {
        return -1;
    }
    // SAFETY: `real` is glibc's `on_exit`, whose C type this is.
    let real: extern "C" fn(ExitCallback, *mut c_void) -> c_int =
        unsafe { std::mem::transmute(real) };
    real(callback, arg)
}

/// Counts, then does what the C library's `pthread_atfork` does.
#[no_mangle]
pub extern "C" fn pthread_atfork(
    prepare: ForkCallback,
    parent: ForkCallback,
    child: ForkCallback,
) -> c_int {
    FORK_HOOKS.fetch_add(1, Relaxed);
    // SAFETY: the callbacks come from our caller, who made the same promise
    // to `pthread_atfork`; a null DSO handle only means "never unloaded".
    unsafe { __register_atfork(prepare, parent, child, ptr::null_mut()) }
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

fn handler() {}

/// The child's `main`: `register_one` is the control.
pub fn child(register_one: bool) {
    THREADS_AT_START.store(threads(), Relaxed);
    // SAFETY: `report` is a plain function that lives as long as the
    // program. Registered before anything of the crate, it runs after it.
    unsafe { libc::atexit(report) };
    COUNTING.store(true, Relaxed);
    if register_one {
        atexit::register(handler);
    } else {
        // What a library that never registers might still ask.
        black_box(atexit::is_exiting());
        black_box(atexit::reason());
    }
}

extern "C" fn report() {
    COUNTING.store(false, Relaxed);
    let allocations = ALLOCATIONS.load(Relaxed);
    let _ = writeln!(
        io::stdout(),
        "threads_at_start {}\nthreads_at_exit {}\nallocations {allocations}\nexit_hooks {}\nfork_hooks {}",
        THREADS_AT_START.load(Relaxed),
        threads(),
        EXIT_HOOKS.load(Relaxed),
        FORK_HOOKS.load(Relaxed),
    );
    let _ = io::stdout().flush();
}

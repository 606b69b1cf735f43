//! The registry lock: a spin lock that yields, which the fork hooks can
//! hold across `fork` and release in both processes, and which skips the
//! atomic read-modify-write while the process has a single thread.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[cfg(all(target_os = "linux", target_env = "gnu", not(miri)))]
fn single_threaded() -> bool {
    use std::sync::atomic::AtomicU8;
    extern "C" {
        /// glibc (2.32 and later) keeps this non-zero until the process
        /// creates its first thread, and sets it again in a forked child.
        static __libc_single_threaded: AtomicU8;
    }
    // SAFETY: a byte exported by glibc for exactly this use; it is only
    // read, atomically.
    unsafe { __libc_single_threaded.load(Ordering::Relaxed) != 0 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu", not(miri))))]
fn single_threaded() -> bool {
    false
}

/// A lock around `T`. Critical sections are short and never run user code.
pub(crate) struct Lock<T> {
    held: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a `Guard`, and the lock makes
// guards exclusive, so sharing the lock shares `T` between threads one at
// a time: `T: Send` is what that needs.
unsafe impl<T: Send> Sync for Lock<T> {}

/// Exclusive access to the value of a [`Lock`]; unlocks when dropped.
pub(crate) struct Guard<'a, T> {
    lock: &'a Lock<T>,
}

impl<T> Lock<T> {
    pub(crate) const fn new(value: T) -> Self {
        Lock {
            held: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> Guard<'_, T> {
        // With one thread nobody can contend, and a new thread can only be
        // made by this one, outside the lock (creating it orders our plain
        // stores before anything the new thread does): the flag is left
        // alone, as glibc's own locks do while the process has one thread.
        // Taking the lock again on the same thread would be a bug of this
        // crate (no user code runs under it) or a registration from a
        // signal handler, which is not async-signal-safe; debug builds say so.
        if single_threaded() {
            debug_assert!(
                !self.held.load(Ordering::Relaxed),
                "atexit: the registry lock was taken twice on one thread"
            );
        } else {
            self.lock_contended();
        }
        Guard { lock: self }
    }

    #[cold]
    fn lock_contended(&self) {
        while self
            .held
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            let mut spins = 0;
            while self.held.load(Ordering::Relaxed) {
                if spins < 64 {
                    spins += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
    }

    /// Takes the lock and keeps it until the returned hold is dropped, for a
    /// lock that lives as long as the program.
    pub(crate) fn hold_across_fork(&'static self) -> HeldAcrossFork {
        self.lock().keep_across_fork()
    }

    /// Takes the lock that `lock_of` finds in `owner` and keeps it until
    /// the returned hold is dropped; the hold keeps `owner` alive.
    pub(crate) fn hold_in_across_fork<O>(
        owner: Arc<O>,
        lock_of: fn(&O) -> &Lock<T>,
    ) -> HeldAcrossFork
    where
        O: Send + Sync + 'static,
    {
        let lock = lock_of(&owner);
        std::mem::forget(lock.lock());
        let held: *const AtomicBool = &lock.held;
        HeldAcrossFork {
            held,
            _owner: Some(owner),
        }
    }
}

/// A lock taken in the fork prepare hook and kept across `fork`: dropping
/// it, in the parent and in the child, releases the lock. (A `Guard` cannot
/// be kept in a static between the hooks: it borrows its lock.)
pub(crate) struct HeldAcrossFork {
    held: *const AtomicBool,
    /// What keeps the lock's memory alive, when it is not a static.
    _owner: Option<Arc<dyn Send + Sync>>,
}

// SAFETY: `held` points to an `AtomicBool` (itself `Sync`) that lives in a
// static or inside `_owner`, which this value keeps alive; moving the hold
// to another thread moves nothing but that pointer.
unsafe impl Send for HeldAcrossFork {}

impl Drop for HeldAcrossFork {
    fn drop(&mut self) {
        // SAFETY: the pointee lives in a static or in `_owner`, which is
        // dropped after this body runs.
        let held = unsafe { &*self.held };
        // This hold is the lock's one owner: it took the lock and forgot
        // the guard, so releasing it here is what that guard would have done.
        held.store(false, Ordering::Release);
    }
}

impl<T> Guard<'static, T> {
    /// Keeps the lock of a static held until the returned hold is dropped
    /// (after `fork`, on both sides).
    pub(crate) fn keep_across_fork(self) -> HeldAcrossFork {
        let held: *const AtomicBool = &self.lock.held;
        std::mem::forget(self);
        HeldAcrossFork { held, _owner: None }
    }
}

impl<T> Drop for Guard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.held.store(false, Ordering::Release);
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: this guard is the only one: the lock is held for its life.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this borrow unique.
        unsafe { &mut *self.lock.value.get() }
    }
}

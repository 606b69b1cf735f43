//! The registry lock: a spin lock that yields, which the fork hooks can
//! hold across `fork` and release in both processes, and which skips the
//! atomic read-modify-write while the process has a single thread.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

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
        // stores before anything the new thread does).
        if single_threaded() && !self.held.load(Ordering::Relaxed) {
            self.held.store(true, Ordering::Relaxed);
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

    /// Takes the lock and keeps it until [`Lock::release_after_fork`]: the
    /// fork prepare hook's half.
    pub(crate) fn hold_for_fork(&self) {
        std::mem::forget(self.lock());
    }

    /// Releases a lock taken by [`Lock::hold_for_fork`].
    ///
    /// # Safety
    ///
    /// The calling thread (or, in a child, the thread that forked) must
    /// have called `hold_for_fork` on this lock and not released it since.
    pub(crate) unsafe fn release_after_fork(&self) {
        self.held.store(false, Ordering::Release);
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

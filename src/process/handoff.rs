//! One value handed from one thread to another that waits for it: what the
//! exit path uses where `std::sync::mpsc` would do, since a channel's
//! generic code is large (it ends up in every program) for a value that is
//! sent at most once.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

enum State<T> {
    /// Nothing given yet, and the giver is alive.
    Waiting,
    Given(T),
    /// The giver is gone without giving.
    Gone,
}

struct Slot<T> {
    state: Mutex<State<T>>,
    changed: Condvar,
}

impl<T> Slot<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing is ever left half-changed under this lock.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The sending side: gives one value, or, dropped, tells the taker that
/// none will come.
pub(crate) struct Giver<T> {
    slot: Arc<Slot<T>>,
}

/// The waiting side.
pub(crate) struct Taker<T> {
    slot: Arc<Slot<T>>,
}

/// A new handoff.
pub(crate) fn handoff<T>() -> (Giver<T>, Taker<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(State::Waiting),
        changed: Condvar::new(),
    });
    (
        Giver {
            slot: Arc::clone(&slot),
        },
        Taker { slot },
    )
}

impl<T> Giver<T> {
    pub(crate) fn give(self, value: T) {
        *self.slot.lock() = State::Given(value);
        self.slot.changed.notify_all();
    }
}

impl<T> Drop for Giver<T> {
    fn drop(&mut self) {
        let mut state = self.slot.lock();
        if matches!(*state, State::Waiting) {
            *state = State::Gone;
            self.slot.changed.notify_all();
        }
    }
}

impl<T> Taker<T> {
    /// Waits for the value; `None` once the giver is gone without giving.
    pub(crate) fn take(self) -> Option<T> {
        self.take_until(None)
    }

    /// As `take`, waiting `limit` at most.
    #[cfg_attr(not(feature = "signal"), allow(dead_code))]
    pub(crate) fn take_within(self, limit: Duration) -> Option<T> {
        self.take_until(Instant::now().checked_add(limit))
    }

    fn take_until(self, end: Option<Instant>) -> Option<T> {
        let mut state = self.slot.lock();
        loop {
            match std::mem::replace(&mut *state, State::Gone) {
                State::Given(value) => return Some(value),
                State::Gone => return None,
                State::Waiting => *state = State::Waiting,
            }
            state = match end {
                None => self
                    .slot
                    .changed
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
                Some(end) => {
                    let now = Instant::now();
                    if now >= end {
                        return None;
                    }
                    self.slot
                        .changed
                        .wait_timeout(state, end - now)
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn a_given_value_arrives_across_threads() {
        let (giver, taker) = handoff();
        let thread = thread::spawn(move || giver.give(7));
        assert_eq!(taker.take(), Some(7));
        thread.join().unwrap();
    }

    #[test]
    fn a_giver_dropped_without_giving_ends_the_wait() {
        let (giver, taker) = handoff::<i32>();
        let thread = thread::spawn(move || drop(giver));
        assert_eq!(taker.take(), None);
        thread.join().unwrap();
    }

    #[test]
    fn the_wait_is_bounded() {
        let (giver, taker) = handoff::<()>();
        let started = Instant::now();
        assert_eq!(taker.take_within(Duration::from_millis(50)), None);
        assert!(started.elapsed() >= Duration::from_millis(50));
        drop(giver);
    }

    #[test]
    fn a_value_given_before_the_wait_is_kept() {
        let (giver, taker) = handoff();
        giver.give("early");
        assert_eq!(taker.take_within(Duration::ZERO), Some("early"));
    }
}

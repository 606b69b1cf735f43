//! [`join_at_exit`]: waiting for a thread at exit, with a time limit.
//!
//! The standard library has no join with a timeout, so the handler polls
//! [`JoinHandle::is_finished`] with short, growing sleeps and joins once
//! the thread has ended.

use std::io::{self, Write};
use std::panic::Location;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::hook::{Hook, InChild};
use crate::registry::Handle;

/// Waits for `thread` when the process exits, for at most `timeout`.
///
/// Rust joins no thread at exit: other threads are simply cut off when the
/// process ends, mid-write if they were writing. This registers a handler
/// that waits until `thread` has finished, then joins it. A thread still
/// running after `timeout` is reported on stderr and left behind, so a
/// stuck thread delays the exit by `timeout` and no more:
///
/// ```text
/// atexit: thread `uploader` still running after 2s; exiting without it (join registered at src/main.rs:12:5)
/// ```
///
/// The handler only waits; telling the thread to finish is up to you, with
/// whatever the thread listens to (an `AtomicBool`, a channel, a token).
/// Handlers run newest first, so register the stop *after* the join: at
/// exit the stop runs first, then the join waits.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use std::thread;
/// use std::time::Duration;
///
/// let stop = Arc::new(AtomicBool::new(false));
/// let worker = thread::Builder::new()
///     .name("flusher".into())
///     .spawn({
///         let stop = Arc::clone(&stop);
///         move || {
///             while !stop.load(Ordering::Relaxed) {
///                 thread::sleep(Duration::from_millis(5));
///             }
///             println!("flusher: last batch written");
///         }
///     })
///     .unwrap();
///
/// atexit::join_at_exit(worker, Duration::from_secs(2));
/// // Newest first: at exit this stops the worker, then the join waits for it.
/// atexit::register(move || stop.store(true, Ordering::Relaxed));
/// ```
///
/// For a worker that blocks on a channel, the stop is dropping the sender:
/// `atexit::register(move || drop(sender))`.
///
/// # Details
///
/// - Each call has its own `timeout`, counted from the moment its handler
///   starts; several stuck threads cost their timeouts one after another.
///   Give them one stop handler, and bound the whole exit run with
///   [`set_deadline`](crate::set_deadline) if needed. `Duration::MAX` waits
///   without limit.
/// - A thread that panicked is joined like any other, without a further
///   report: its panic message was printed when it panicked.
/// - If `thread` is the one ending the process (it called
///   `std::process::exit`), the handler returns at once: it cannot wait for
///   itself.
/// - A process made by `fork` does not wait: the thread was not copied into
///   it (the hook is registered with [`InChild::Skip`]).
/// - The returned [`Handle`] cancels the wait; the thread is then detached.
///   The hook is named `join thread NAME` (or `join thread` for an unnamed
///   thread) in reports such as a missed deadline.
#[track_caller]
pub fn join_at_exit<T: Send + 'static>(thread: JoinHandle<T>, timeout: Duration) -> Handle {
    let site = Location::caller();
    let (who, hook_name) = match thread.thread().name() {
        Some(name) => (format!("thread `{name}`"), format!("join thread {name}")),
        None => ("an unnamed thread".to_owned(), "join thread".to_owned()),
    };
    Hook::new(move || {
        if join_within(thread, timeout) == Joined::TimedOut {
            // Never `eprintln!`: stderr may be gone at exit.
            let _ = writeln!(
                io::stderr(),
                "atexit: {who} still running after {timeout:?}; exiting without it (join registered at {site})"
            );
        }
    })
    .name(hook_name)
    .in_child(InChild::Skip)
    .register()
}

/// How a [`join_within`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Joined {
    /// The thread ended (returned or panicked) and was joined.
    Finished,
    /// The thread was still running when the time was up; it is detached.
    TimedOut,
    /// The thread is the calling thread; nothing was waited for.
    Current,
}

/// The longest sleep between two looks at the thread: the most a finished
/// thread can delay the exit beyond its own end.
const MAX_NAP: Duration = Duration::from_millis(10);

/// Joins `thread` if it ends within `timeout`; detaches it otherwise.
pub(crate) fn join_within<T>(thread: JoinHandle<T>, timeout: Duration) -> Joined {
    if thread.thread().id() == thread::current().id() {
        return Joined::Current;
    }
    // `None`: a timeout too large to represent, so no limit.
    let end = Instant::now().checked_add(timeout);
    let mut nap = Duration::from_micros(50);
    while !thread.is_finished() {
        let now = Instant::now();
        let left = match end {
            Some(end) if now >= end => return Joined::TimedOut,
            Some(end) => end - now,
            None => MAX_NAP,
        };
        thread::sleep(nap.min(left));
        nap = (nap * 2).min(MAX_NAP);
    }
    // Finished, so this does not block; a panic was already reported by
    // the thread's own panic message.
    let _ = thread.join();
    Joined::Finished
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_finished_thread_is_joined_at_once() {
        let thread = thread::spawn(|| 7);
        while !thread.is_finished() {
            thread::yield_now();
        }
        let started = Instant::now();
        assert_eq!(join_within(thread, Duration::ZERO), Joined::Finished);
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_thread_that_ends_in_time_is_waited_for() {
        let (tell, told) = mpsc::channel::<()>();
        let (done, finished) = mpsc::channel();
        let thread = thread::spawn(move || {
            let _ = told.recv();
            thread::sleep(Duration::from_millis(30));
            done.send("finished").unwrap();
        });
        drop(tell);
        assert_eq!(
            join_within(thread, Duration::from_secs(10)),
            Joined::Finished
        );
        // Joined means the thread's last action happened before we returned.
        assert_eq!(finished.try_recv(), Ok("finished"));
    }

    #[test]
    fn a_stuck_thread_is_given_up_on_after_the_timeout() {
        let (release, stuck) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            let _ = stuck.recv();
        });
        let started = Instant::now();
        assert_eq!(
            join_within(thread, Duration::from_millis(50)),
            Joined::TimedOut
        );
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        drop(release);
    }

    #[test]
    fn a_panicked_thread_counts_as_finished() {
        let thread = thread::Builder::new()
            .name("join-test-panics".into())
            .spawn(|| panic!("worker failed"))
            .unwrap();
        assert_eq!(
            join_within(thread, Duration::from_secs(10)),
            Joined::Finished
        );
    }

    #[test]
    fn a_thread_does_not_wait_for_itself() {
        let (handle_to, handle_from) = mpsc::channel::<JoinHandle<()>>();
        let (result_to, result_from) = mpsc::channel();
        let thread = thread::spawn(move || {
            let own = handle_from.recv().unwrap();
            result_to.send(join_within(own, Duration::MAX)).unwrap();
        });
        handle_to.send(thread).unwrap();
        let joined = result_from
            .recv_timeout(Duration::from_secs(10))
            .expect("join_within on the current thread returned");
        assert_eq!(joined, Joined::Current);
    }
}

//! The crate's side of the comparison. Each measurement runs in a child
//! process (`atexit-perf --child ...`): every sample starts from a fresh
//! heap, like the C and Python children, and the exit run is a real exit.
//!
//! Children print `key value` lines, the same keys as the anchors in
//! `anchors/`.

use std::hint::black_box;
use std::io::{self, Write};
use std::process;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use atexit::{Handle, Registry};

use crate::run_clock::{self, count, now_ns, start, CALLS};

static HANDLERS: AtomicUsize = AtomicUsize::new(0);

/// The oldest handler: runs last and stops the clock.
fn stop() {
    let elapsed = run_clock::elapsed_ns();
    let handlers = HANDLERS.load(Relaxed);
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "run_ns_per_handler {:.3}\nran {}",
        elapsed as f64 / (handlers - 1) as f64,
        CALLS.load(Relaxed)
    );
    let _ = out.flush();
}

fn say(key: &str, value: f64) {
    let _ = writeln!(io::stdout(), "{key} {value:.3}");
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("reading /proc/self/statm");
    let resident: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|pages| pages.parse().ok())
        .expect("parsing /proc/self/statm");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    resident * u64::try_from(page).unwrap_or(4096)
}

/// Where a child registers: the process-wide registry or a `Registry`.
trait Sink {
    fn register<F: FnOnce() + Send + 'static>(&self, f: F) -> Handle;
}

struct Global;

impl Sink for Global {
    #[inline]
    fn register<F: FnOnce() + Send + 'static>(&self, f: F) -> Handle {
        atexit::register(f)
    }
}

impl Sink for Registry {
    #[inline]
    fn register<F: FnOnce() + Send + 'static>(&self, f: F) -> Handle {
        Registry::register(self, f)
    }
}

/// Registers `stop`, `handlers - 2` counting handlers (timed), then
/// `start`; reports the time per registration and the memory per handler.
fn fill(sink: &impl Sink, handlers: usize, closures: bool) {
    HANDLERS.store(handlers, Relaxed);
    now_ns();
    rss_bytes();
    let before = rss_bytes();
    sink.register(stop);
    let t0 = Instant::now();
    if closures {
        // A closure capturing 8 bytes, so that it needs its own box.
        let step: u64 = black_box(1);
        for _ in 0..handlers - 2 {
            sink.register(move || {
                CALLS.fetch_add(step, Relaxed);
            });
        }
    } else {
        for _ in 0..handlers - 2 {
            sink.register(count);
        }
    }
    let elapsed = t0.elapsed();
    sink.register(start);
    let after = rss_bytes();
    say(
        "register_ns",
        elapsed.as_nanos() as f64 / (handlers - 2) as f64,
    );
    say(
        "bytes_per_handler",
        after.saturating_sub(before) as f64 / handlers as f64,
    );
    let _ = io::stdout().flush();
}

/// A function type per `I`, so that `unregister` has 256 distinct
/// functions to remove, each registered once.
fn distinct<const I: usize>() {
    count();
}

fn register_distinct<const I: usize>() {
    atexit::register(distinct::<I>);
}

fn unregister_distinct<const I: usize>() -> usize {
    atexit::unregister(distinct::<I>)
}

static REGISTER: [[fn(); 16]; 16] = table!(register_distinct);
static UNREGISTER: [[fn() -> usize; 16]; 16] = table!(unregister_distinct);
const DISTINCT: usize = 256;

/// `live` handlers pending, then: `unregister(f)` of 256 distinct
/// functions registered once each (`rounds` times), and `pairs` register +
/// `Handle::unregister` pairs.
fn unregister(live: usize, rounds: usize, pairs: usize) {
    for _ in 0..live {
        atexit::register(count);
    }
    let mut timed = Duration::ZERO;
    let mut removed = 0;
    for _ in 0..rounds {
        REGISTER.iter().flatten().for_each(|register| register());
        let t0 = Instant::now();
        for unregister in UNREGISTER.iter().flatten() {
            removed += unregister();
        }
        timed += t0.elapsed();
    }
    check(
        removed == rounds * DISTINCT,
        "unregister(f) removed the wrong count",
    );
    say(
        "unregister_ns",
        timed.as_nanos() as f64 / (rounds * DISTINCT) as f64,
    );

    let mut cancelled = 0;
    let t0 = Instant::now();
    for _ in 0..pairs {
        cancelled += usize::from(atexit::register(count).unregister());
    }
    let elapsed = t0.elapsed();
    check(cancelled == pairs, "a Handle::unregister failed");
    check(atexit::pending() == live, "pending() is off");
    say("pair_ns", elapsed.as_nanos() as f64 / pairs as f64);
    atexit::clear();
    let _ = io::stdout().flush();
}

fn check(ok: bool, what: &str) {
    if !ok {
        let _ = writeln!(io::stderr(), "atexit-perf child: {what}");
        process::exit(3);
    }
}

fn number(text: &str) -> usize {
    text.parse().unwrap_or_else(|_| {
        let _ = writeln!(io::stderr(), "atexit-perf child: not a count: {text}");
        process::exit(2);
    })
}

/// `--child MODE ARGS..`
pub fn main(args: &[String]) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["lifecycle", "global", callable, handlers] => {
            // The handlers run when `main` returns: a real exit.
            fill(&Global, number(handlers).max(3), *callable == "closure");
        }
        ["register-only", "global", callable, handlers] => {
            fill(&Global, number(handlers).max(3), *callable == "closure");
            // Ends without the exit run, so that the run's instruction
            // count is what `lifecycle` executes beyond this (`instructions`).
            // SAFETY: `_exit` only ends the process; `fill` flushed stdout.
            unsafe { libc::_exit(0) };
        }
        ["lifecycle", "registry", callable, handlers] => {
            let registry = Registry::new();
            fill(&registry, number(handlers).max(3), *callable == "closure");
            if registry.run().is_err() {
                check(false, "a handler panicked");
            }
        }
        ["unregister", live, rounds, pairs] => {
            unregister(number(live), number(rounds), number(pairs));
        }
        ["never"] => crate::never::child(false),
        ["never-control"] => crate::never::child(true),
        _ => {
            let _ = writeln!(io::stderr(), "atexit-perf: unknown child mode {args:?}");
            process::exit(2);
        }
    }
}

//! Criterion benchmarks of the process-wide functions and of `Registry`:
//! registering, the run per handler, unregistering with many handlers live,
//! `pending()`, and what a program that never registers pays.
//!
//! `cargo bench --bench registry` measures; `cargo bench --bench registry
//! -- --test` runs each benchmark once, and so does `cargo test --bench
//! registry` (the CI smoke mode, without a release build). The comparison
//! with glibc and CPython is `cargo run --release -p atexit-perf`.

#[macro_use]
#[path = "../perf/src/fn_table.rs"]
mod fn_table;
#[path = "../perf/src/run_clock.rs"]
mod run_clock;

use run_clock::{count, start, CALLS};

use std::env;
use std::hint::black_box;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use atexit::Registry;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};

/// Handlers pending while unregister and `pending()` are timed.
const LIVE: usize = 100_000;
/// Handlers per exit run.
const RUN: usize = 1_000_000;
/// Set in a child process started by the `never_registers` benchmarks.
const CHILD: &str = "ATEXIT_BENCH_CHILD";

static ELAPSED_NS: AtomicU64 = AtomicU64::new(0);

/// Registered oldest: runs last and stops the clock.
fn stop() {
    ELAPSED_NS.store(run_clock::elapsed_ns(), Relaxed);
}

/// A function type per `I`: `unregister` needs functions registered once
/// each, or the first call would take them all.
fn distinct<const I: usize>() {
    count();
}

fn register_global<const I: usize>(_: &Registry) {
    atexit::register(distinct::<I>);
}

fn unregister_global<const I: usize>(_: &Registry) -> usize {
    atexit::unregister(distinct::<I>)
}

fn register_local<const I: usize>(registry: &Registry) {
    registry.register(distinct::<I>);
}

fn unregister_local<const I: usize>(registry: &Registry) -> usize {
    registry.unregister(distinct::<I>)
}

/// 256 functions, one per `distinct::<I>`. They all take the registry so
/// that one table type serves both kinds; the global ones ignore it.
type Table<T> = [[fn(&Registry) -> T; 16]; 16];

static REGISTER_GLOBAL: Table<()> = table!(register_global);
static UNREGISTER_GLOBAL: Table<usize> = table!(unregister_global);
static REGISTER_LOCAL: Table<()> = table!(register_local);
static UNREGISTER_LOCAL: Table<usize> = table!(unregister_local);

/// Times `iters` calls of `unregister(f)`, each removing the one
/// registration of its own function, in batches of 256.
fn time_unregister(
    registry: &Registry,
    register: &Table<()>,
    unregister: &Table<usize>,
    iters: u64,
) -> Duration {
    let mut timed = Duration::ZERO;
    let mut left = iters as usize;
    while left > 0 {
        let batch = left.min(256);
        register
            .iter()
            .flatten()
            .take(batch)
            .for_each(|f| f(registry));
        let t0 = Instant::now();
        let removed: usize = unregister
            .iter()
            .flatten()
            .take(batch)
            .map(|f| f(registry))
            .sum();
        timed += t0.elapsed();
        assert_eq!(removed, batch, "each unregister removes one registration");
        left -= batch;
    }
    timed
}

/// Registrations per batch: the store is emptied (untimed) after each, so
/// every batch reuses memory the allocator already has.
const BATCH: u64 = 10_000;

/// Times `iters` calls of `register`, in batches followed by `clear`.
fn time_registrations(iters: u64, mut register: impl FnMut(), clear: impl Fn()) -> Duration {
    let mut timed = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let batch = left.min(BATCH);
        let t0 = Instant::now();
        for _ in 0..batch {
            register();
        }
        timed += t0.elapsed();
        clear();
        left -= batch;
    }
    timed
}

/// Registering into warm memory: the cost of the code. Registering into
/// fresh pages, as a new process does, is what `atexit-perf` times.
fn register(c: &mut Criterion) {
    let mut group = c.benchmark_group("register");
    let step: u64 = black_box(1);
    group.bench_function("global/fn_item", |b| {
        b.iter_custom(|iters| {
            time_registrations(
                iters,
                || drop(black_box(atexit::register(count))),
                atexit::clear,
            )
        });
    });
    group.bench_function("global/closure_8_bytes", |b| {
        b.iter_custom(|iters| {
            time_registrations(
                iters,
                || {
                    drop(black_box(atexit::register(move || {
                        CALLS.fetch_add(step, Relaxed);
                    })))
                },
                atexit::clear,
            )
        });
    });
    let registry = Registry::new();
    group.bench_function("registry/fn_item", |b| {
        b.iter_custom(|iters| {
            time_registrations(
                iters,
                || drop(black_box(registry.register(count))),
                || registry.clear(),
            )
        });
    });
    group.bench_function("registry/closure_8_bytes", |b| {
        b.iter_custom(|iters| {
            time_registrations(
                iters,
                || {
                    drop(black_box(registry.register(move || {
                        CALLS.fetch_add(step, Relaxed);
                    })))
                },
                || registry.clear(),
            )
        });
    });
    group.finish();
}

/// A million handlers per iteration: criterion's time per iteration over
/// the throughput gives the time per handler.
fn run_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .throughput(Throughput::Elements(RUN as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group
}

fn exit_run(c: &mut Criterion) {
    let mut group = run_group(c, "run_1M_handlers");
    // The clock starts in the newest handler and stops in the oldest, so
    // only the run loop is timed.
    group.bench_function("global/run_now", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                atexit::register(stop);
                for _ in 0..RUN - 2 {
                    atexit::register(count);
                }
                atexit::register(start);
                atexit::run_now().expect("no handler panics");
                total += Duration::from_nanos(ELAPSED_NS.load(Relaxed));
            }
            total
        });
    });
    group.bench_function("registry/run", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let registry = Registry::new();
                for _ in 0..RUN {
                    registry.register(count);
                }
                let t0 = Instant::now();
                registry.run().expect("no handler panics");
                total += t0.elapsed();
            }
            total
        });
    });
    group.finish();
}

fn unregister(c: &mut Criterion) {
    let mut group = c.benchmark_group("unregister_100k_live");
    let local = Registry::new();
    for _ in 0..LIVE {
        atexit::register(count);
        local.register(count);
    }
    group.bench_function("global/handle_pair", |b| {
        b.iter(|| atexit::register(count).unregister());
    });
    group.bench_function("registry/handle_pair", |b| {
        b.iter(|| local.register(count).unregister());
    });
    group.bench_function("global/unregister_fn", |b| {
        b.iter_custom(|iters| time_unregister(&local, &REGISTER_GLOBAL, &UNREGISTER_GLOBAL, iters));
    });
    group.bench_function("registry/unregister_fn", |b| {
        b.iter_custom(|iters| time_unregister(&local, &REGISTER_LOCAL, &UNREGISTER_LOCAL, iters));
    });
    group.bench_function("global/pending", |b| b.iter(atexit::pending));
    group.bench_function("registry/pending", |b| b.iter(|| local.pending()));
    group.finish();
    assert_eq!(atexit::pending(), LIVE);
    assert_eq!(local.pending(), LIVE);
    atexit::clear();
    local.clear();
}

/// A program that never registers arms nothing, so criterion can show only
/// what is left: the queries such a program may make, and whole processes
/// (this binary re-executed) that exit having registered nothing or one
/// handler. `atexit-perf` checks threads, allocations and hooks.
fn never_registers(c: &mut Criterion) {
    let mut group = c.benchmark_group("never_registers");
    group.bench_function("is_exiting", |b| b.iter(atexit::is_exiting));
    group.bench_function("reason", |b| b.iter(atexit::reason));
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    let exe = env::current_exe().expect("the bench binary");
    for mode in ["never", "one_handler"] {
        group.bench_function(format!("process_exit/{mode}"), |b| {
            b.iter(|| {
                let status = Command::new(&exe)
                    .env(CHILD, mode)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .status()
                    .expect("starting the child");
                assert!(status.success(), "child {mode}: {status}");
            });
        });
    }
    group.finish();
}

/// The child of `never_registers`: ends at once, after registering nothing
/// or one handler.
fn child(mode: &str) {
    match mode {
        "never" => {
            black_box(atexit::is_exiting());
        }
        "one_handler" => {
            atexit::register(count);
        }
        _ => panic!("unknown {CHILD}={mode}"),
    }
}

fn main() {
    if let Ok(mode) = env::var(CHILD) {
        child(&mode);
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    register(&mut criterion);
    exit_run(&mut criterion);
    unregister(&mut criterion);
    never_registers(&mut criterion);
    criterion.final_summary();
}

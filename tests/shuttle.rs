#![cfg(atexit_shuttle)]
//! Shuttle check of a Registry: registration, unregistration and a run
//! racing, with context switches between registry calls and inside handlers.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use shuttle::sync::Mutex;
use shuttle::thread;

const HANDLERS: usize = 4;

fn race() {
    let registry = Arc::new(atexit::Registry::new());
    let ran: Arc<Vec<AtomicUsize>> = Arc::new((0..HANDLERS).map(|_| AtomicUsize::new(0)).collect());
    let handles = Arc::new(Mutex::new(Vec::new()));
    let removed: Arc<Vec<AtomicUsize>> =
        Arc::new((0..HANDLERS).map(|_| AtomicUsize::new(0)).collect());

    let registrar = {
        let (registry, ran, handles) = (registry.clone(), ran.clone(), handles.clone());
        thread::spawn(move || {
            for i in 0..HANDLERS {
                let ran = ran.clone();
                let handle = registry.register(move || {
                    ran[i].fetch_add(1, Ordering::SeqCst);
                    thread::yield_now();
                });
                handles.lock().unwrap().push((i, handle));
                thread::yield_now();
            }
        })
    };
    let remover = {
        let (handles, removed) = (handles.clone(), removed.clone());
        thread::spawn(move || {
            for _ in 0..HANDLERS {
                let taken = handles.lock().unwrap().pop();
                if let Some((i, handle)) = taken {
                    if i % 2 == 0 && handle.unregister() {
                        removed[i].fetch_add(1, Ordering::SeqCst);
                    }
                }
                thread::yield_now();
            }
        })
    };
    let runner = {
        let registry = registry.clone();
        thread::spawn(move || {
            registry.run().unwrap();
        })
    };
    registrar.join().unwrap();
    remover.join().unwrap();
    runner.join().unwrap();
    registry.run().unwrap();
    assert_eq!(registry.pending(), 0);
    for i in 0..HANDLERS {
        let (r, u) = (
            ran[i].load(Ordering::SeqCst),
            removed[i].load(Ordering::SeqCst),
        );
        assert!(r + u == 1, "handler {i}: ran {r}, unregistered {u}");
    }
}

#[test]
fn register_unregister_run_race_random() {
    shuttle::check_random(race, 2000);
}

#[test]
fn register_unregister_run_race_pct() {
    shuttle::check_pct(race, 2000, 3);
}

//! The API in-process, through `Registry` values (the process-wide registry
//! is exercised in real child processes by `tests/process`).

use std::panic::{self, Location};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use atexit::{Handle, Registry};

type Log = Arc<Mutex<Vec<String>>>;

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn push(log: &Log, text: &str) -> impl FnOnce() + Send + 'static {
    let log = Arc::clone(log);
    let text = text.to_owned();
    move || log.lock().unwrap().push(text)
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// Runs `f` with the panic hook silenced, so expected panics stay quiet.
fn quietly<T>(f: impl FnOnce() -> T) -> T {
    static HOOK: Mutex<()> = Mutex::new(());
    let _guard = HOOK.lock().unwrap_or_else(|p| p.into_inner());
    let previous = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let result = f();
    panic::set_hook(previous);
    result
}

#[test]
fn runs_newest_first_and_empties() {
    let log = log();
    let registry = Registry::new();
    for name in ["a", "b", "c"] {
        registry.register(push(&log, name));
    }
    assert_eq!(registry.pending(), 3);
    registry.run().unwrap();
    assert_eq!(entries(&log), ["c", "b", "a"]);
    assert_eq!(registry.pending(), 0);
    registry.run().unwrap();
    assert_eq!(entries(&log).len(), 3, "a second run runs nothing");
}

#[test]
fn handler_registered_during_run_runs_next() {
    let log = log();
    let registry = Arc::new(Registry::new());
    registry.register(push(&log, "oldest"));
    {
        let inner = Arc::clone(&registry);
        let log2 = Arc::clone(&log);
        registry.register(move || {
            log2.lock().unwrap().push("outer".into());
            inner.register(push(&log2, "newcomer"));
        });
    }
    registry.run().unwrap();
    assert_eq!(entries(&log), ["outer", "newcomer", "oldest"]);
}

#[test]
fn handler_unregistered_during_run_does_not_run() {
    let log = log();
    let registry = Arc::new(Registry::new());
    registry.register(push(&log, "kept"));
    let victim = registry.register(push(&log, "victim"));
    let victim = Mutex::new(Some(victim));
    registry.register(move || {
        assert!(victim.lock().unwrap().take().unwrap().unregister());
    });
    registry.run().unwrap();
    assert_eq!(entries(&log), ["kept"]);
}

#[test]
fn nested_run_of_the_same_registry_returns_ok() {
    let log = log();
    let registry = Arc::new(Registry::new());
    registry.register(push(&log, "older"));
    let inner = Arc::clone(&registry);
    let log2 = Arc::clone(&log);
    registry.register(move || {
        let nested = inner.run();
        log2.lock().unwrap().push(format!("nested: {nested:?}"));
    });
    registry.run().unwrap();
    assert_eq!(entries(&log), ["nested: Ok(())", "older"]);
}

#[test]
fn failures_are_collected_in_run_order_and_the_rest_run() {
    let log = log();
    let registry = Registry::new();
    registry.register(push(&log, "first"));
    let str_line = line!() + 1;
    registry.register(|| panic!("static text"));
    registry.register(push(&log, "middle"));
    registry.register(|| panic!("{} {}", "formatted", 2));
    registry.register(|| panic::panic_any(42_u8));
    let err = quietly(|| registry.run()).unwrap_err();
    assert_eq!(entries(&log), ["middle", "first"]);
    let messages: Vec<_> = err.failures().iter().map(|f| f.message()).collect();
    assert_eq!(
        messages,
        ["non-string panic payload", "formatted 2", "static text"]
    );
    let site = err.failures()[2].location();
    assert_eq!((site.file(), site.line()), (file!(), str_line));
    assert_eq!(err.failures()[2].name(), None);
    let text = err.to_string();
    assert!(
        text.starts_with("3 exit handlers panicked; exit handler registered at tests/api.rs:"),
        "{text}"
    );
    assert!(text.ends_with("panicked: static text"), "{text}");
    let source: &dyn std::error::Error = &err;
    assert!(source.source().is_none());
}

#[test]
fn one_failure_displays_alone() {
    let registry = Registry::new();
    let line = line!() + 1;
    registry.register(|| panic!("disk full"));
    let err = quietly(|| registry.run()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("exit handler registered at tests/api.rs:{line}:14 panicked: disk full")
    );
}

#[test]
fn dropping_a_registry_runs_what_is_pending() {
    let log = log();
    let registry = Registry::new();
    registry.register(push(&log, "a"));
    registry.register(push(&log, "b"));
    drop(registry);
    assert_eq!(entries(&log), ["b", "a"]);
}

#[test]
fn dropping_a_registry_with_a_failing_handler_does_not_panic() {
    let log = log();
    let registry = Registry::new();
    registry.register(push(&log, "after the failure"));
    registry.register(|| panic!("failing at drop"));
    quietly(|| drop(registry));
    assert_eq!(entries(&log), ["after the failure"]);
}

#[test]
fn handle_unregisters_once() {
    let log = log();
    let registry = Registry::new();
    let handle = registry.register(push(&log, "never"));
    let other = registry.register(push(&log, "kept"));
    assert!(handle.is_registered());
    assert!(handle.clone().unregister());
    assert!(!handle.is_registered());
    assert!(!handle.unregister());
    assert_eq!(registry.pending(), 1);
    registry.run().unwrap();
    assert!(!other.is_registered(), "ran, so no longer pending");
    assert!(!other.unregister());
    assert_eq!(entries(&log), ["kept"]);
}

#[test]
fn handle_outlives_its_registry() {
    let registry = Registry::new();
    let handle = registry.register(|| {});
    registry.clear();
    drop(registry);
    assert!(!handle.is_registered());
    assert!(!handle.unregister());
}

#[test]
fn stale_handle_cannot_remove_a_newer_registration_in_its_slot() {
    let log = log();
    let registry = Registry::new();
    let old = registry.register(push(&log, "old"));
    assert!(old.clone().unregister());
    let _new = registry.register(push(&log, "new"));
    assert!(!old.is_registered());
    assert!(!old.unregister());
    registry.run().unwrap();
    assert_eq!(entries(&log), ["new"]);
}

#[test]
fn register_with_passes_up_to_eight_values() {
    static SUM: AtomicUsize = AtomicUsize::new(0);
    fn none() {
        SUM.fetch_add(1, Ordering::SeqCst);
    }
    fn one(a: u8) {
        SUM.fetch_add(a as usize, Ordering::SeqCst);
    }
    #[allow(clippy::too_many_arguments)]
    fn eight(a: u8, b: u16, c: u32, d: u64, e: usize, f: String, g: &str, h: Vec<u8>) {
        let total = a as usize + b as usize + c as usize + d as usize + e + f.len() + g.len();
        SUM.fetch_add(total + h.len(), Ordering::SeqCst);
    }
    let registry = Registry::new();
    registry.register_with(none, ());
    registry.register_with(one, (10,));
    registry.register_with(eight, (1, 2, 3, 4, 5, "six".to_owned(), "se", vec![8]));
    registry.run().unwrap();
    assert_eq!(
        SUM.load(Ordering::SeqCst),
        1 + 10 + (1 + 2 + 3 + 4 + 5 + 3 + 2 + 1)
    );
}

#[test]
fn unregister_removes_every_registration_of_a_function() {
    fn cleanup(_name: &str) {
        unreachable!("unregistered");
    }
    fn flush() {
        unreachable!("unregistered");
    }
    let log = log();
    let registry = Registry::new();
    registry.register_with(cleanup, ("first",));
    registry.register(flush);
    registry.register(push(&log, "closure"));
    registry.register_with(cleanup, ("second",));
    let noop = || {};
    registry.register(noop);
    assert_eq!(registry.unregister(cleanup), 2);
    assert_eq!(registry.unregister(cleanup), 0);
    assert_eq!(registry.unregister(flush), 1);
    assert_eq!(registry.unregister(noop), 1);
    assert_eq!(registry.pending(), 1);
    registry.run().unwrap();
    assert_eq!(entries(&log), ["closure"]);
}

#[test]
fn clear_drops_without_running() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let registry = Registry::new();
    for _ in 0..3 {
        let counted = Counted(Arc::clone(&drops));
        registry.register(move || {
            let _keep = &counted;
            unreachable!("cleared");
        });
    }
    registry.clear();
    assert_eq!(
        drops.load(Ordering::SeqCst),
        3,
        "captured values are dropped"
    );
    assert_eq!(registry.pending(), 0);
    registry.run().unwrap();
}

#[test]
fn handlers_may_run_on_another_thread() {
    let log = log();
    let registry = Arc::new(Registry::new());
    registry.register(push(&log, "ran"));
    let remote = Arc::clone(&registry);
    std::thread::spawn(move || remote.run().unwrap())
        .join()
        .unwrap();
    assert_eq!(entries(&log), ["ran"]);
}

#[test]
fn concurrent_registration_loses_nothing() {
    let registry = Arc::new(Registry::new());
    let ran = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let registry = Arc::clone(&registry);
            let ran = Arc::clone(&ran);
            std::thread::spawn(move || {
                for n in 0..2000 {
                    let ran = Arc::clone(&ran);
                    let handle = registry.register(move || {
                        ran.fetch_add(1, Ordering::SeqCst);
                    });
                    if n % 2 == 0 {
                        assert!(handle.unregister());
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(registry.pending(), 4000);
    registry.run().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 4000);
}

#[test]
fn public_types_are_thread_safe_and_debuggable() {
    fn check<T: Send + Sync + std::fmt::Debug>() {}
    check::<Handle>();
    check::<Registry>();
    check::<atexit::RunError>();
    check::<atexit::Failure>();
    check::<atexit::Error>();
    check::<atexit::ExitReason>();
    check::<atexit::InChild>();
    let registry = Registry::new();
    let handle = registry.register(|| {});
    assert!(format!("{handle:?}").starts_with("Handle { registry: \"local\""));
    assert_eq!(format!("{registry:?}"), "Registry { pending: 1 }");
    let hook = atexit::Hook::new(|| {}).name("flush-db");
    assert!(format!("{hook:?}").contains("flush-db"));
    registry.clear();
}

#[test]
fn global_handle_round_trip() {
    // Only this test touches the process-wide registry in this binary.
    let handle = atexit::register(|| unreachable!("unregistered"));
    assert!(format!("{handle:?}").starts_with("Handle { registry: \"process\""));
    assert!(handle.is_registered());
    assert!(handle.clone().unregister());
    assert!(!handle.unregister());
    assert!(!atexit::is_exiting());
    assert_eq!(atexit::reason(), None);
    let _ = Location::caller();
}

#[cfg(all(unix, feature = "signal"))]
#[test]
fn refused_signals_say_which_and_why() {
    let cases = [
        (
            libc::SIGKILL,
            "refused to handle signal 9 (SIGKILL): it cannot be caught",
        ),
        (libc::SIGSTOP, "(SIGSTOP): it cannot be caught"),
        (0, "signal 0 (unnamed signal): signal numbers start at 1"),
        (-3, "signal -3 (unnamed signal): signal numbers start at 1"),
        (9999, "no signal with that number"),
        (libc::SIGSEGV, "(SIGSEGV): a fault signal"),
        (libc::SIGBUS, "(SIGBUS): a fault signal"),
        (libc::SIGILL, "(SIGILL): a fault signal"),
        (libc::SIGFPE, "(SIGFPE): a fault signal"),
        (
            libc::SIGCHLD,
            "(SIGCHLD): its default action does not end the process",
        ),
        (33, "reserves it"),
    ];
    assert_refused(&cases);
    // A refused list installs nothing, even its valid members.
    assert!(atexit::handle_signals_for(&[libc::SIGUSR2, libc::SIGKILL]).is_err());
    assert!(atexit::handle_signals_for(&[]).is_ok());
}

/// Windows: the C runtime's SIGINT, SIGBREAK and SIGTERM name console
/// events; every other number is refused, with the reason.
#[cfg(all(windows, feature = "signal"))]
#[test]
fn refused_signals_say_which_and_why() {
    let cases = [
        (0, "signal 0 (unnamed signal): signal numbers start at 1"),
        (-3, "signal -3 (unnamed signal): signal numbers start at 1"),
        (libc::SIGSEGV, "(SIGSEGV): a fault signal"),
        (libc::SIGILL, "(SIGILL): a fault signal"),
        (libc::SIGFPE, "(SIGFPE): a fault signal"),
        (libc::SIGABRT, "(SIGABRT): abort() does not wait"),
        (6, "(SIGABRT): abort() does not wait"),
        (9, "signal 9 (unnamed signal): Windows has no such event"),
        (1, "Windows has no such event"),
    ];
    assert_refused(&cases);
    // A refused list installs nothing, even its valid members.
    assert!(atexit::handle_signals_for(&[atexit::SIGBREAK, 9]).is_err());
    assert!(atexit::handle_signals_for(&[]).is_ok());
}

/// Each signal is refused by `handle_signals_for` alone, with a message
/// that contains its reason and says nothing was changed.
#[cfg(feature = "signal")]
fn assert_refused(cases: &[(i32, &str)]) {
    for &(signal, expected) in cases {
        let err = atexit::handle_signals_for(&[signal]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(expected), "{signal}: {text}");
        assert!(text.ends_with("no signal handling was changed"), "{text}");
        assert!(matches!(
            err,
            atexit::Error::ForbiddenSignal { signal: s, .. } if s == signal
        ));
    }
}

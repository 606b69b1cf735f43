//! The child side: each scenario registers handlers and ends the process
//! its own way. Output goes to stdout/stderr for the parent to check.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

pub const RACING_HANDLERS: usize = 20;
#[cfg(unix)]
pub const FORKS: usize = 40;

fn say(text: &str) -> impl FnOnce() + Send + 'static {
    let text = text.to_owned();
    move || println!("{text}")
}

pub fn play(name: &str) -> Result<(), String> {
    match name {
        "main_returns" => {
            atexit::register(say("first"));
            atexit::register(say("second"));
            atexit::register(say("third"));
            println!("main done");
        }
        "process_exit_from_thread" => {
            atexit::register(say("first"));
            atexit::register(say("second"));
            thread::spawn(|| std::process::exit(3)).join().unwrap();
        }
        "atexit_exit" => {
            atexit::register(say("first"));
            atexit::register(say("second"));
            atexit::exit(5);
        }
        "main_panics" => {
            atexit::register(say("handler ran"));
            panic!("main gave up");
        }
        "main_returns_err" => {
            atexit::register(say("handler ran"));
            return Err("main failed".into());
        }
        "abort" => {
            atexit::register(say("handler must not run"));
            println!("aborting");
            std::process::abort();
        }
        "underscore_exit" => {
            atexit::register(say("handler must not run"));
            println!("leaving by _exit");
            // SAFETY: `_exit` ends the process at once; nothing is left to
            // uphold (stdout was flushed by the newline above).
            unsafe { libc::_exit(4) };
        }
        "register_during_run" => {
            atexit::register(say("first"));
            atexit::register(|| {
                println!("outer");
                atexit::register(say("registered during the run"));
            });
        }
        "unregister_during_run" => unregister_during_run(),
        "panicking_handler" => {
            atexit::register(say("oldest"));
            atexit::register(|| panic!("cleanup failed")); // reported site
            atexit::register(say("newest"));
        }
        "panicking_handler_keeps_code" => {
            atexit::register(say("oldest"));
            atexit::register(|| panic!("cleanup failed"));
            exit_running_handlers(7);
        }
        "racing_exits" => racing_exits(),
        "no_lock_held_in_handler" => no_lock_held_in_handler(),
        #[cfg(unix)]
        "fork_inherits_handlers" => fork_inherits_handlers(),
        #[cfg(unix)]
        "fork_while_registering" => fork_while_registering(),
        "thread_local_gone" => thread_local_gone(),
        "million_handlers" => million_handlers(),
        "run_now_empties" => {
            atexit::register(say("early"));
            atexit::run_now().map_err(|err| err.to_string())?;
            let again = atexit::run_now();
            println!("run_now again: {again:?}, pending {}", atexit::pending());
            atexit::register(say("registered later"));
        }
        "run_now_inside_handler" => {
            atexit::register(say("older"));
            atexit::register(|| {
                let nested = atexit::run_now();
                println!("outer: nested run_now gave {nested:?}");
            });
            atexit::run_now().map_err(|err| err.to_string())?;
        }
        "run_now_reports_failures" => {
            atexit::register(|| panic!("first"));
            let line = line!() - 1;
            atexit::register(|| panic!("second"));
            let err = atexit::run_now().expect_err("two handlers panicked");
            let messages: Vec<_> = err.failures().iter().map(|f| f.message()).collect();
            let lines: Vec<_> = err
                .failures()
                .iter()
                .zip([line + 2, line])
                .map(|(f, l)| f.location().line() == l && f.location().file() == file!())
                .collect();
            println!("failures: {messages:?} at lines {lines:?}");
            atexit::register(say("ok ran"));
        }
        "atexit_exit_inside_handler" => {
            atexit::register(say("older still runs"));
            atexit::register(|| {
                println!("exiting from a handler");
                atexit::exit(9);
            });
        }
        "process_exit_inside_handler_aborts" => {
            atexit::register(say("older would run"));
            atexit::register(|| {
                println!("calling std::process::exit");
                std::process::exit(2);
            });
        }
        "is_exiting_and_reason" => {
            println!("before: {} {:?}", atexit::is_exiting(), atexit::reason());
            atexit::register(|| {
                println!("inside: {} {:?}", atexit::is_exiting(), atexit::reason());
            });
            exit_running_handlers(6);
        }
        "reason_when_main_returns" => {
            atexit::register(|| println!("inside: {:?}", atexit::reason()));
        }
        "unregister_function" => {
            fn cleanup(name: &str) {
                println!("cleanup({name}) must not run");
            }
            fn flush() {
                println!("flush must not run");
            }
            atexit::register(say("other"));
            atexit::register_with(cleanup, ("first",));
            atexit::register(flush);
            atexit::register_with(cleanup, ("second",));
            atexit::register_with(cleanup, ("third",));
            let removed = atexit::unregister(cleanup);
            let again = atexit::unregister(cleanup);
            println!("removed {removed}, then {again}");
            atexit::unregister(flush);
        }
        "clear_then_register" => {
            atexit::register(say("cleared, must not run"));
            atexit::clear();
            println!("pending after clear: {}", atexit::pending());
            atexit::register(say("after clear"));
        }
        "new_thread_hook" => {
            thread_local! {
                static LOCAL: Vec<u8> = const { Vec::new() };
            }
            LOCAL.with(|_| {});
            atexit::register(say("older"));
            atexit::Hook::new(|| {
                let name = std::thread::current().name().map(str::to_owned);
                LOCAL.with(|local| println!("on {name:?}, thread-local holds {}", local.len()));
                println!("inside the exit run: {}", atexit::is_exiting());
            })
            .on_new_thread()
            .register();
        }
        "new_thread_hook_panics" => {
            atexit::register(say("older"));
            atexit::Hook::new(|| panic!("failed on its own thread"))
                .name("worker")
                .on_new_thread()
                .register();
        }
        "new_thread_hook_exits" => {
            atexit::register(say("older still runs"));
            atexit::Hook::new(|| atexit::exit(8))
                .on_new_thread()
                .register();
        }
        "failure_code_across_nested_exit" => {
            atexit::set_failure_code(Some(70));
            atexit::register(|| atexit::exit(0));
            atexit::register(|| panic!("cleanup failed"));
        }
        "stdout_closed" => {
            atexit::register(|| {
                let _ = writeln!(std::io::stderr(), "older ran");
            });
            atexit::register(|| println!("to a closed pipe"));
            // Wait until the parent has closed its end of our stdout.
            while std::io::stdout().write_all(b"probe\n").is_ok() {
                thread::sleep(Duration::from_millis(1));
            }
        }
        other => return Err(format!("unknown scenario {other}")),
    }
    Ok(())
}

/// `std::process::exit(code)`, which runs the handlers on Unix; on Windows
/// it runs none (std calls `ExitProcess`), so `atexit::exit(code)` there.
fn exit_running_handlers(code: i32) -> ! {
    if cfg!(windows) {
        atexit::exit(code)
    } else {
        std::process::exit(code)
    }
}

fn unregister_during_run() {
    static VICTIM: Mutex<Option<atexit::Handle>> = Mutex::new(None);
    fn victim_fn() {
        println!("victim function ran");
    }
    atexit::register(say("kept"));
    atexit::register(victim_fn);
    *VICTIM.lock().unwrap() = Some(atexit::register(say("victim by handle ran")));
    atexit::register(victim_fn);
    atexit::register(|| {
        let by_handle = VICTIM.lock().unwrap().take().unwrap().unregister();
        let by_function = atexit::unregister(victim_fn);
        println!("remover: handle {by_handle}, function {by_function}");
    });
}

fn racing_exits() {
    for n in 0..RACING_HANDLERS {
        atexit::register(move || {
            // Slow enough that a second exit would overlap the run.
            thread::sleep(Duration::from_millis(1));
            println!("handler {n:02}");
        });
    }
    let barrier = Arc::new(Barrier::new(5));
    for code in 10..14 {
        let barrier = Arc::clone(&barrier);
        thread::spawn(move || {
            barrier.wait();
            // On Windows `std::process::exit` runs no handler: only
            // `atexit::exit` races there.
            if code % 2 == 0 || cfg!(windows) {
                atexit::exit(code);
            } else {
                std::process::exit(code);
            }
        });
    }
    barrier.wait();
    thread::sleep(Duration::from_secs(5));
    println!("no thread exited");
}

fn no_lock_held_in_handler() {
    atexit::register(say("first"));
    atexit::register(|| {
        println!("pending inside: {}", atexit::pending());
        let from_thread = thread::spawn(|| atexit::register(say("registered by a thread")))
            .join()
            .unwrap();
        println!("thread registered");
        let doomed = atexit::register(say("doomed"));
        println!("unregistered: {}", doomed.unregister());
        drop(from_thread);
    });
    // Newest, so it runs first: a handler may take its time.
    atexit::register(|| {
        thread::sleep(Duration::from_millis(200));
        println!("slow done");
    });
}

#[cfg(unix)]
fn fork_inherits_handlers() {
    let parent = std::process::id();
    atexit::register(move || {
        let who = if std::process::id() == parent {
            "parent"
        } else {
            "child"
        };
        println!("handler in {who}");
    });
    // SAFETY: the process is single-threaded here; the child only returns
    // from this function and exits normally.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid > 0 {
        wait_for(pid, Duration::from_secs(10)).expect("child exited in time");
    }
}

#[cfg(unix)]
fn fork_while_registering() {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let handle = atexit::register(|| {});
                handle.unregister();
            }
        })
    };
    let mut in_time = 0;
    for _ in 0..FORKS {
        // SAFETY: the child calls only `exit` (via atexit::exit), which
        // takes the registry lock that the fork hooks keep consistent.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            atexit::exit(0);
        }
        if wait_for(pid, Duration::from_secs(5)).is_ok() {
            in_time += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    busy.join().unwrap();
    atexit::clear();
    println!("{in_time} children exited in time");
}

#[cfg(unix)]
/// Waits for `pid` until `limit`, killing it if it has not exited by then.
fn wait_for(pid: i32, limit: Duration) -> Result<(), ()> {
    let started = std::time::Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid status pointer.
        let reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if reaped == pid {
            return Ok(());
        }
        if started.elapsed() > limit {
            // SAFETY: killing and reaping our own, unreaped child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return Err(());
        }
        thread::sleep(Duration::from_millis(2));
    }
}

fn thread_local_gone() {
    struct Noisy;
    impl Drop for Noisy {
        fn drop(&mut self) {}
    }
    thread_local! {
        static LOCAL: Noisy = const { Noisy };
    }
    LOCAL.with(|_| {});
    atexit::register(say("older handler ran"));
    atexit::register(|| LOCAL.with(|_| println!("thread-local still alive")));
}

fn million_handlers() {
    static RAN: AtomicUsize = AtomicUsize::new(0);
    fn count() {
        RAN.fetch_add(1, Ordering::Relaxed);
    }
    atexit::register(|| {
        let _ = writeln!(
            std::io::stdout(),
            "{} handlers ran",
            RAN.load(Ordering::Relaxed)
        );
    });
    for _ in 0..1_000_000 {
        atexit::register(count);
    }
    assert_eq!(atexit::pending(), 1_000_001);
}

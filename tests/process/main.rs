//! Every way a process ends, each in a real child process: this binary
//! re-executes itself with `ATEXIT_SCENARIO=<name>`, the child plays the
//! scenario, and the parent checks exact stdout, stderr, exit status and
//! terminating signal.

#[path = "../common/mod.rs"]
mod common;
mod scenarios;

use std::process::Stdio;

use common::Outcome;

const MARKER: &str = "ATEXIT_SCENARIO";

fn main() -> Result<(), String> {
    if let Ok(name) = std::env::var(MARKER) {
        return scenarios::play(&name);
    }
    let filter: Option<String> = std::env::args().skip(1).find(|arg| !arg.starts_with('-'));
    let started = std::time::Instant::now();
    let mut failed = Vec::new();
    let mut passed = 0;
    let tests = CHECKS
        .iter()
        .map(|&(name, check)| (name, Box::new(move || check(play(name))) as Box<dyn Fn()>))
        .chain(std::iter::once((
            "stdout_closed",
            Box::new(stdout_closed) as Box<dyn Fn()>,
        )));
    for (name, test) in tests {
        if filter
            .as_deref()
            .is_some_and(|filter| !name.contains(filter))
        {
            continue;
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(test));
        match result {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok");
            }
            Err(_) => {
                failed.push(name);
                println!("test {name} ... FAILED");
            }
        }
    }
    common::summary(passed + failed.len(), &failed, started)
}

fn play(name: &str) -> Outcome {
    common::run(common::scenario(MARKER, name))
}

type Check = fn(Outcome);

/// Item 7: a handler's `println!` fails on a closed stdout; it is reported,
/// older handlers still run, and the crate's own report does not panic.
fn stdout_closed() {
    let mut command = common::scenario(MARKER, "stdout_closed");
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn child");
    drop(child.stdout.take());
    let out = common::finish_child(child);
    let panics = out.panic_messages();
    assert_eq!(panics.len(), 1, "{}", out.stderr);
    assert!(
        panics[0].1.starts_with("failed printing to stdout"),
        "{:?}",
        panics[0]
    );
    let rest = out.stderr_without_panics();
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert!(rest[0].starts_with("atexit: exit handler registered at tests/process/scenarios.rs:"));
    assert_eq!(rest[1], "older ran");
    assert_eq!((out.code, out.signal), (Some(0), None));
}

/// The line of `scenarios.rs` that carries `marker`.
fn line_of(marker: &str) -> usize {
    let source = include_str!("scenarios.rs");
    source
        .lines()
        .position(|line| line.contains(marker))
        .expect("marker in scenarios.rs")
        + 1
}

/// Each scenario (played by `scenarios::play`) and what its process must show.
const CHECKS: &[(&str, Check)] = &[
    ("main_returns", |out| {
        assert_eq!(out.stdout, "main done\nthird\nsecond\nfirst\n");
        assert_eq!(out.stderr, "", "a clean run prints nothing on stderr");
        assert_eq!((out.code, out.signal), (Some(0), None));
    }),
    ("process_exit_from_thread", |out| {
        // Windows: std calls `ExitProcess`, which runs no C exit entry.
        let ran = if cfg!(windows) { "" } else { "second\nfirst\n" };
        assert_eq!(out.stdout, ran);
        assert_eq!(out.stderr, "");
        assert_eq!(out.code, Some(3));
    }),
    ("atexit_exit", |out| {
        assert_eq!(out.stdout, "second\nfirst\n");
        assert_eq!(out.stderr, "");
        assert_eq!(out.code, Some(5));
    }),
    ("main_panics", |out| {
        assert_eq!(out.stdout, "handler ran\n");
        assert_eq!(out.panic_messages().len(), 1);
        assert_eq!(out.panic_messages()[0].1, "main gave up");
        assert_eq!(out.stderr_without_panics(), Vec::<String>::new());
        assert_eq!(out.code, Some(101));
    }),
    ("main_returns_err", |out| {
        assert_eq!(out.stdout, "handler ran\n");
        assert_eq!(out.stderr, "Error: \"main failed\"\n");
        assert_eq!(out.code, Some(1));
    }),
    ("abort", |out| {
        assert_eq!(out.stdout, "aborting\n");
        if cfg!(windows) {
            // std aborts with `__fastfail`: STATUS_STACK_BUFFER_OVERRUN.
            assert_eq!((out.code, out.signal), (Some(0xC000_0409_u32 as i32), None));
        } else {
            assert_eq!(out.signal, Some(libc::SIGABRT));
        }
    }),
    ("underscore_exit", |out| {
        assert_eq!(out.stdout, "leaving by _exit\n");
        assert_eq!(out.stderr, "");
        assert_eq!(out.code, Some(4));
    }),
    ("register_during_run", |out| {
        assert_eq!(out.stdout, "outer\nregistered during the run\nfirst\n");
        assert_eq!(out.code, Some(0));
    }),
    ("unregister_during_run", |out| {
        assert_eq!(out.stdout, "remover: handle true, function 2\nkept\n");
        assert_eq!(out.stderr, "");
        assert_eq!(out.code, Some(0));
    }),
    ("panicking_handler", |out| {
        assert_eq!(out.stdout, "newest\noldest\n");
        let panics = out.panic_messages();
        assert_eq!(panics.len(), 1, "{}", out.stderr);
        assert_eq!(panics[0].1, "cleanup failed");
        assert_eq!(
            out.stderr_without_panics(),
            [format!(
                "atexit: exit handler registered at tests/process/scenarios.rs:{}:13 panicked",
                line_of("// reported site")
            )]
        );
        assert_eq!(
            out.code,
            Some(0),
            "a failing handler leaves the status alone"
        );
    }),
    ("panicking_handler_keeps_code", |out| {
        assert_eq!(out.stdout, "oldest\n");
        assert_eq!(out.stderr_without_panics().len(), 1);
        assert_eq!(out.code, Some(7));
    }),
    ("racing_exits", |out| {
        let mut lines: Vec<&str> = out.stdout.lines().collect();
        lines.sort_unstable();
        let expected: Vec<String> = (0..scenarios::RACING_HANDLERS)
            .map(|n| format!("handler {n:02}"))
            .collect();
        assert_eq!(lines, expected, "every handler exactly once");
        assert_eq!(out.stderr, "");
        let code = out.code.expect("exited, not killed");
        assert!((10..=13).contains(&code), "code {code} is one of theirs");
    }),
    ("no_lock_held_in_handler", |out| {
        assert_eq!(
            out.stdout,
            "slow done\npending inside: 1\nthread registered\nunregistered: true\nregistered by a thread\nfirst\n"
        );
        assert_eq!(out.stderr, "");
        assert_eq!(out.code, Some(0));
    }),
    #[cfg(unix)]
    ("fork_inherits_handlers", |out| {
        let mut lines: Vec<&str> = out.stdout.lines().collect();
        lines.sort_unstable();
        assert_eq!(lines, ["handler in child", "handler in parent"]);
        assert_eq!(out.code, Some(0));
    }),
    #[cfg(unix)]
    ("fork_while_registering", |out| {
        assert_eq!(
            out.stdout,
            format!("{} children exited in time\n", scenarios::FORKS)
        );
        assert_eq!(out.stderr, "");
        assert_eq!(out.code, Some(0));
    }),
    ("thread_local_gone", |out| {
        if common::THREAD_LOCALS_GONE_IN_HANDLERS {
            assert_eq!(out.stdout, "older handler ran\n");
            assert_eq!(out.stderr_without_panics().len(), 1, "{}", out.stderr);
            assert!(out.panic_messages()[0].1.contains("Thread Local"));
        } else {
            assert_eq!(out.stdout, "thread-local still alive\nolder handler ran\n");
            assert_eq!(out.stderr, "");
        }
        assert_eq!(out.code, Some(0));
    }),
    ("million_handlers", |out| {
        assert_eq!(out.stdout, "1000000 handlers ran\n");
        assert_eq!(out.code, Some(0));
    }),
    ("run_now_empties", |out| {
        assert_eq!(
            out.stdout,
            "early\nrun_now again: Ok(()), pending 0\nregistered later\n"
        );
        assert_eq!(out.code, Some(0));
    }),
    ("run_now_inside_handler", |out| {
        assert_eq!(out.stdout, "outer: nested run_now gave Ok(())\nolder\n");
        assert_eq!(out.code, Some(0));
    }),
    ("run_now_reports_failures", |out| {
        assert_eq!(
            out.stdout,
            "failures: [\"second\", \"first\"] at lines [true, true]\nok ran\n"
        );
        assert_eq!(out.stderr_without_panics(), Vec::<String>::new());
        assert_eq!(out.code, Some(0));
    }),
    ("atexit_exit_inside_handler", |out| {
        assert_eq!(out.stdout, "exiting from a handler\nolder still runs\n");
        assert_eq!(out.stderr, "");
        assert_eq!(out.code, Some(9));
    }),
    ("process_exit_inside_handler_aborts", |out| {
        assert_eq!(out.stdout, "calling std::process::exit\n");
        if cfg!(windows) {
            // No abort there: `ExitProcess` ends the process at once with
            // that code, and the older handler does not run either.
            assert_eq!(out.stderr, "");
            assert_eq!(out.code, Some(2));
        } else {
            assert!(out
                .stderr
                .contains("std::process::exit called re-entrantly"));
            assert_eq!(out.signal, Some(libc::SIGABRT));
        }
    }),
    ("is_exiting_and_reason", |out| {
        // On Windows the scenario exits with `atexit::exit(6)` (see there),
        // whose code is always known.
        let reason = if cfg!(windows) {
            "Some(Exit(Some(6)))".to_owned()
        } else {
            common::exit_reason(6)
        };
        assert_eq!(
            out.stdout,
            format!("before: false None\ninside: true {reason}\n")
        );
        assert_eq!(out.code, Some(6));
    }),
    ("reason_when_main_returns", |out| {
        assert_eq!(out.stdout, format!("inside: {}\n", common::exit_reason(0)));
        assert_eq!(out.code, Some(0));
    }),
    ("unregister_function", |out| {
        assert_eq!(out.stdout, "removed 3, then 0\nother\n");
        assert_eq!(out.code, Some(0));
    }),
    ("clear_then_register", |out| {
        assert_eq!(out.stdout, "pending after clear: 0\nafter clear\n");
        assert_eq!(out.code, Some(0));
    }),
    ("new_thread_hook", |out| {
        assert_eq!(
            out.stdout,
            "on Some(\"atexit-hook\"), thread-local holds 0\ninside the exit run: true\nolder\n"
        );
        assert_eq!(out.stderr, "");
        assert_eq!(out.code, Some(0));
    }),
    ("new_thread_hook_panics", |out| {
        assert_eq!(out.stdout, "older\n");
        assert_eq!(out.panic_messages().len(), 1, "{}", out.stderr);
        assert_eq!(out.panic_messages()[0].1, "failed on its own thread");
        let rest = out.stderr_without_panics();
        assert_eq!(rest.len(), 1, "{rest:?}");
        assert!(
            rest[0].starts_with(
                "atexit: exit handler `worker` (registered at tests/process/scenarios.rs:"
            ),
            "{rest:?}"
        );
        assert_eq!(out.code, Some(0));
    }),
    ("failure_code_across_nested_exit", |out| {
        // The panic came before the handler that exits: it still counts.
        assert_eq!(out.panic_messages().len(), 1, "{}", out.stderr);
        assert_eq!(out.code, Some(70));
    }),
    ("new_thread_hook_exits", |out| {
        assert_eq!(out.stdout, "older still runs\n");
        assert_eq!(out.stderr, "");
        assert_eq!(out.code, Some(8));
    }),
];

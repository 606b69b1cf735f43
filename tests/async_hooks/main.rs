//! Async exit hooks (feature `tokio`) on every way a tokio program ends,
//! each in a real child process: this binary re-executes itself with
//! `ATEXIT_ASYNC=<name>`, the child plays the scenario (`scenarios.rs`), and
//! the parent checks exact stdout, stderr, status and how long it took.
//! Run it with `cargo test --features tokio --test async_hooks`.

#[path = "../common/mod.rs"]
mod common;
mod scenarios;

use std::io::Read;
use std::net::TcpListener;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::Outcome;

const MARKER: &str = "ATEXIT_ASYNC";

fn main() -> Result<(), String> {
    if let Ok(name) = std::env::var(MARKER) {
        // A hang fails fast: SIGALRM ends the child.
        let play: common::Scenario = |_| scenarios::play(&std::env::var(MARKER).expect("marker"));
        return common::play(leak(&name), vec![(leak(&name), play)], 15);
    }
    common::run_tests_in_turn(TESTS)
}

/// Scenario `name` printed `first`, then its four hooks ran on `thread`;
/// nothing on stderr, exit status `code`, and no bound waited out.
fn four_ran(name: &str, first: &str, thread: &str, code: i32) {
    let (out, took) = play(name);
    assert_eq!(out.stdout, format!("{first}\n{}", four_ran_on(thread)));
    assert_eq!(out.stderr, "");
    assert_eq!(out.code, Some(code));
    assert!(took < PROMPT, "took {took:?}");
}

/// `common::play` takes a scenario table; this binary has one dispatcher.
fn leak(name: &str) -> &'static str {
    Box::leak(name.to_owned().into_boxed_str())
}

fn command(name: &str) -> Command {
    common::scenario(MARKER, name)
}

/// Plays `name`; also returns how long the child took.
fn play(name: &str) -> (Outcome, Duration) {
    timed(command(name))
}

fn timed(command: Command) -> (Outcome, Duration) {
    let started = Instant::now();
    let out = common::run(command);
    (out, started.elapsed())
}

/// The line and column of the `.register()` call marked `marker` in
/// `scenarios.rs`, as `#[track_caller]` records it.
fn site_of(marker: &str) -> String {
    let source = include_str!("scenarios.rs");
    let (index, line) = source
        .lines()
        .enumerate()
        .find(|(_, line)| line.contains(marker))
        .expect("marker in scenarios.rs");
    let column = line
        .find(".register()")
        .expect(".register() on the marked line")
        + 2;
    format!("tests/async_hooks/scenarios.rs:{}:{column}", index + 1)
}

/// The four hooks of `four_hooks`, newest first, async ones on `on`.
fn four_ran_on(on: &str) -> String {
    format!("async 4 on {on}\nsync 3\nasync 2 on {on}\nsync 1\n")
}

/// The name tokio gives a multi-thread runtime's workers.
const WORKER: &str = "tokio-rt-worker";

/// Well under the 5 s bound: the hook was not left to time out.
const PROMPT: Duration = Duration::from_secs(3);

type Test = fn();

const TESTS: &[(&str, Test)] = &[
    ("drain_then_run_async_now_multi", || {
        let (out, _) = play("drain_then_run_async_now_multi");
        assert_eq!(
            out.stdout,
            format!("drained\n{}pending 0\n", four_ran_on(WORKER))
        );
        assert_eq!(out.stderr, "");
        assert_eq!(out.code, Some(0));
    }),
    ("drain_then_run_async_now_current", || {
        // The program's own runtime: its only thread is `main`.
        let (out, _) = play("drain_then_run_async_now_current");
        assert_eq!(
            out.stdout,
            format!("drained\n{}pending 0\n", four_ran_on("main"))
        );
        assert_eq!(out.stderr, "");
        assert_eq!(out.code, Some(0));
    }),
    ("main_returns_multi", || {
        // `#[tokio::main]` dropped its runtime: a fresh one runs them.
        four_ran("main_returns_multi", "main done", "atexit-async", 0)
    }),
    ("main_returns_current", || {
        four_ran("main_returns_current", "main done", "atexit-async", 0)
    }),
    ("process_exit_from_task_multi", || {
        // Another worker of the program's runtime runs them.
        four_ran(
            "process_exit_from_task_multi",
            "exiting from a task",
            WORKER,
            3,
        )
    }),
    ("atexit_exit_from_task_multi", || {
        four_ran(
            "atexit_exit_from_task_multi",
            "exiting from a task",
            WORKER,
            3,
        )
    }),
    ("process_exit_from_task_current", || {
        // The exiting thread drives the runtime: a fresh one, at once.
        four_ran(
            "process_exit_from_task_current",
            "exiting from a task",
            "atexit-async",
            4,
        )
    }),
    ("atexit_exit_from_task_current", || {
        four_ran(
            "atexit_exit_from_task_current",
            "exiting from a task",
            "atexit-async",
            4,
        )
    }),
    ("exit_from_task_one_worker", || {
        // The exiting thread is the only worker, but the hook was registered
        // from `main` (not a worker): only the bound ends the wait.
        let (out, took) = play("exit_from_task_one_worker");
        assert_eq!(out.stdout, "older still runs\n");
        assert!(
            out.stderr.starts_with("atexit: async exit hook `one-worker` (registered at tests/async_hooks/scenarios.rs:"),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr
                .ends_with(") did not start within 300ms: its runtime is blocked; skipped\n"),
            "{}",
            out.stderr
        );
        assert_eq!(out.code, Some(2));
        assert!(took < PROMPT, "took {took:?}");
    }),
    ("panic_in_main", || {
        let (out, took) = play("panic_in_main");
        assert_eq!(out.stdout, four_ran_on("atexit-async"));
        let panics = out.panic_messages();
        assert_eq!(panics.len(), 1, "{}", out.stderr);
        assert_eq!(panics[0].1, "main gave up");
        assert_eq!(out.stderr_without_panics(), Vec::<String>::new());
        assert_eq!(out.code, Some(101));
        assert!(took < PROMPT, "took {took:?}");
    }),
    ("signal_multi", || {
        let out = common::signalled(command("signal_multi"), libc::SIGTERM);
        assert_eq!(out.stdout, format!("READY\n{}", four_ran_on(WORKER)));
        assert_eq!(out.stderr, "");
        assert_eq!((out.code, out.signal), (None, Some(libc::SIGTERM)));
    }),
    ("signal_current", || {
        // `main` waits in the runtime's driver: it runs them there.
        let out = common::signalled(command("signal_current"), libc::SIGTERM);
        assert_eq!(out.stdout, format!("READY\n{}", four_ran_on("main")));
        assert_eq!(out.stderr, "");
        assert_eq!((out.code, out.signal), (None, Some(libc::SIGTERM)));
    }),
    ("hung_hook", || {
        let (out, took) = play("hung_hook");
        assert_eq!(out.stdout, "newer on tokio-rt-worker\nolder still runs\n");
        assert_eq!(
            out.stderr,
            format!(
                "atexit: async exit hook `stuck` (registered at {}) did not finish within 300ms; skipped\n",
                site_of("// hung site")
            )
        );
        assert_eq!(out.code, Some(6));
        assert!(took >= Duration::from_millis(300), "took {took:?}");
        assert!(took < PROMPT, "took {took:?}");
    }),
    ("blocked_runtime", || {
        let (out, took) = play("blocked_runtime");
        assert_eq!(out.stdout, "older still runs\n");
        assert_eq!(
            out.stderr,
            format!(
                "atexit: async exit hook registered at {} did not start within 300ms: its runtime is blocked; skipped\n",
                site_of("// blocked site")
            )
        );
        assert_eq!(out.code, Some(7));
        assert!(took < PROMPT, "took {took:?}");
    }),
    ("panicking_hook", || {
        let (out, _) = play("panicking_hook");
        assert_eq!(out.stdout, "older still runs\n");
        let panics = out.panic_messages();
        assert_eq!(panics.len(), 1, "{}", out.stderr);
        assert_eq!(panics[0].1, "flush failed");
        assert_eq!(
            out.stderr_without_panics(),
            [format!(
                "atexit: exit handler `boom` (registered at {}) panicked",
                site_of("// panicking site")
            )]
        );
        assert_eq!(out.code, Some(0));
    }),
    ("tcp_on_runtime", || {
        let (received, out) = with_listener(|port| {
            let mut command = command("tcp_on_runtime");
            command.env("ATEXIT_TEST_PORT", port.to_string());
            common::signalled(command, libc::SIGTERM)
        });
        assert_eq!(received, "flushed 3 records\n");
        assert_eq!(out.stdout, "READY\nsent on tokio-rt-worker\n");
        assert_eq!(out.stderr, "");
        assert_eq!(out.signal, Some(libc::SIGTERM));
    }),
    ("tcp_after_main", || {
        let (received, out) = with_listener(|port| {
            let mut command = command("tcp_after_main");
            command.env("ATEXIT_TEST_PORT", port.to_string());
            common::run(command)
        });
        assert_eq!(received, "flushed after main\n");
        assert_eq!(out.stdout, "sent on atexit-async\n");
        assert_eq!(out.stderr, "");
        assert_eq!(out.code, Some(0));
    }),
    ("file_after_exit_current", || {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("saved.txt");
        let mut command = command("file_after_exit_current");
        command.env("ATEXIT_TEST_FILE", &path);
        let (out, took) = timed(command);
        assert_eq!(out.stdout, "saved on atexit-async\n");
        assert_eq!(out.stderr, "");
        assert_eq!(out.code, Some(5));
        assert_eq!(
            std::fs::read_to_string(&path).expect("the hook wrote it"),
            "saved by an async hook\n"
        );
        assert!(took < PROMPT, "took {took:?}");
    }),
    ("fork_child", || {
        let (out, took) = play("fork_child");
        assert_eq!(
            out.stdout,
            format!("hook on atexit-async\nchild exited with 0\nhook on {WORKER}\n")
        );
        assert_eq!(out.stderr, "");
        assert_eq!(out.code, Some(0));
        assert!(took < PROMPT, "took {took:?}");
    }),
    ("outside_runtime", || {
        let (out, _) = play("outside_runtime");
        assert!(
            out.stdout.starts_with(
                "refused to register the async exit hook at tests/async_hooks/scenarios.rs:"
            ),
            "{}",
            out.stdout
        );
        assert!(out.stdout.contains("no tokio runtime is running here"));
        assert!(out.stdout.ends_with("nothing was registered\npending 0\n"));
        assert_eq!(out.code, Some(0));
    }),
];

/// Runs `child` with the port of a listener this test holds; returns what
/// one connection sent, and the child's outcome.
fn with_listener(child: impl FnOnce(u16) -> Outcome) -> (String, Outcome) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local listener");
    let port = listener.local_addr().expect("its address").port();
    let reader = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("the hook connects");
        stream
            .set_read_timeout(Some(common::DEADLINE))
            .expect("read timeout");
        let mut text = String::new();
        stream.read_to_string(&mut text).expect("read what it sent");
        text
    });
    let out = child(port);
    let received = if reader.is_finished() || out.stdout.contains("sent on") {
        reader.join().expect("reader")
    } else {
        String::new()
    };
    (received, out)
}

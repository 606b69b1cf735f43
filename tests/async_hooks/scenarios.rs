//! The child side: each scenario builds a tokio runtime (with
//! `#[tokio::main]`, as programs do), registers async and sync hooks, and
//! ends the process its own way. Hooks print the thread they ran on:
//! `tokio-runtime-worker` or `main` is the program's runtime, `atexit-async`
//! the fresh one.

use std::io::Write;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

fn say(text: &'static str) -> impl FnOnce() + Send + 'static {
    move || println!("{text}")
}

/// Prints `label` and the thread the hook runs on, after an await on a
/// timer (which needs a driven runtime).
async fn report(label: &'static str) {
    tokio::time::sleep(Duration::from_millis(10)).await;
    let thread = std::thread::current();
    println!("{label} on {}", thread.name().unwrap_or("?"));
}

fn async_hook(label: &'static str) {
    atexit::register_async(move || report(label)).expect("inside a runtime");
}

/// Sync and async hooks interleaved: they must run as one list.
fn four_hooks() {
    atexit::register(say("sync 1"));
    async_hook("async 2");
    atexit::register(say("sync 3"));
    async_hook("async 4");
}

pub fn play(name: &str) -> Result<(), String> {
    match name {
        "drain_then_run_async_now_multi" => drain_then_run_async_now_multi(),
        "drain_then_run_async_now_current" => drain_then_run_async_now_current(),
        "main_returns_multi" => main_returns_multi(),
        "main_returns_current" => main_returns_current(),
        "process_exit_from_task_multi" => exit_from_task_multi(false),
        "atexit_exit_from_task_multi" => exit_from_task_multi(true),
        "process_exit_from_task_current" => exit_from_task_current(false),
        "atexit_exit_from_task_current" => exit_from_task_current(true),
        "exit_from_task_one_worker" => exit_from_task_one_worker(),
        "panic_in_main" => panic_in_main(),
        "signal_multi" => signal_multi(),
        "signal_current" => signal_current(),
        "hung_hook" => hung_hook(),
        "blocked_runtime" => blocked_runtime(),
        "panicking_hook" => panicking_hook(),
        "tcp_on_runtime" => tcp_on_runtime(),
        "tcp_after_main" => tcp_after_main(),
        "file_after_exit_current" => file_after_exit_current(),
        "outside_runtime" => outside_runtime(),
        "fork_child" => fork_child(),
        other => return Err(format!("no scenario {other}")),
    }
    Ok(())
}

#[tokio::main]
async fn drain_then_run_async_now_multi() {
    four_hooks();
    println!("drained");
    atexit::run_async_now().await.expect("no hook panicked");
    println!("pending {}", atexit::pending());
}

#[tokio::main(flavor = "current_thread")]
async fn drain_then_run_async_now_current() {
    four_hooks();
    println!("drained");
    atexit::run_async_now().await.expect("no hook panicked");
    println!("pending {}", atexit::pending());
}

#[tokio::main]
async fn main_returns_multi() {
    four_hooks();
    println!("main done");
}

#[tokio::main(flavor = "current_thread")]
async fn main_returns_current() {
    four_hooks();
    println!("main done");
}

#[tokio::main(worker_threads = 2)]
async fn exit_from_task_multi(through_atexit: bool) {
    four_hooks();
    let task = tokio::spawn(async move {
        println!("exiting from a task");
        if through_atexit {
            atexit::exit(3);
        }
        std::process::exit(3);
    });
    let _ = task.await;
    unreachable!("the task ends the process");
}

#[tokio::main(flavor = "current_thread")]
async fn exit_from_task_current(through_atexit: bool) {
    four_hooks();
    let task = tokio::spawn(async move {
        println!("exiting from a task");
        if through_atexit {
            atexit::exit(4);
        }
        std::process::exit(4);
    });
    let _ = task.await;
    unreachable!("the task ends the process");
}

/// A multi-thread runtime with one worker, whose task exits: nothing is
/// left to run the hook (the limit of the detection, caught by the bound).
#[tokio::main(worker_threads = 1)]
async fn exit_from_task_one_worker() {
    atexit::register(say("older still runs"));
    atexit::Hook::new_async(|| report("never"))
        .name("one-worker")
        .timeout(Duration::from_millis(300))
        .register()
        .expect("inside a runtime");
    let task = tokio::spawn(async { std::process::exit(2) });
    let _ = task.await;
    unreachable!("the task ends the process");
}

#[tokio::main]
async fn panic_in_main() {
    four_hooks();
    panic!("main gave up");
}

#[tokio::main(worker_threads = 2)]
async fn signal_multi() {
    atexit::handle_signals().expect("handle signals");
    four_hooks();
    println!("READY");
    std::future::pending::<()>().await;
}

#[tokio::main(flavor = "current_thread")]
async fn signal_current() {
    atexit::handle_signals().expect("handle signals");
    four_hooks();
    println!("READY");
    std::future::pending::<()>().await;
}

#[tokio::main]
async fn hung_hook() {
    atexit::register(say("older still runs"));
    atexit::Hook::new_async(std::future::pending::<()>)
        .name("stuck")
        .timeout(Duration::from_millis(300))
        .register() // hung site
        .expect("inside a runtime");
    atexit::register_async(|| report("newer")).expect("inside a runtime");
    atexit::exit(6);
}

/// A current-thread runtime whose only thread is busy in blocking code
/// when another thread ends the process.
#[tokio::main(flavor = "current_thread")]
async fn blocked_runtime() {
    atexit::register(say("older still runs"));
    atexit::Hook::new_async(|| report("never"))
        .timeout(Duration::from_millis(300))
        .register() // blocked site
        .expect("inside a runtime");
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(50));
        std::process::exit(7);
    });
    std::thread::sleep(Duration::from_secs(30));
}

#[tokio::main]
async fn panicking_hook() {
    atexit::register(say("older still runs"));
    atexit::Hook::new_async(|| async {
        tokio::task::yield_now().await;
        panic!("flush failed");
    })
    .name("boom")
    .register() // panicking site
    .expect("inside a runtime");
}

fn port() -> u16 {
    std::env::var("ATEXIT_TEST_PORT")
        .expect("port from the parent")
        .parse()
        .expect("a port number")
}

async fn send_over_tcp(text: &'static str) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port()))
        .await
        .expect("connect to the test's listener");
    stream.write_all(text.as_bytes()).await.expect("write");
    stream.shutdown().await.expect("shutdown");
    println!("sent on {}", std::thread::current().name().unwrap_or("?"));
}

/// Tokio I/O on the program's runtime: a handled signal's run.
#[tokio::main(worker_threads = 2)]
async fn tcp_on_runtime() {
    atexit::handle_signals().expect("handle signals");
    atexit::register_async(|| send_over_tcp("flushed 3 records\n")).expect("inside a runtime");
    println!("READY");
    std::future::pending::<()>().await;
}

/// Tokio I/O on the fresh runtime, after `#[tokio::main]` dropped its own.
#[tokio::main(flavor = "current_thread")]
async fn tcp_after_main() {
    atexit::register_async(|| send_over_tcp("flushed after main\n")).expect("inside a runtime");
}

/// `tokio::fs` in a hook, from `std::process::exit` on a current-thread
/// runtime's only thread.
#[tokio::main(flavor = "current_thread")]
async fn file_after_exit_current() {
    let path = std::env::var("ATEXIT_TEST_FILE").expect("file from the parent");
    atexit::register_async(move || async move {
        tokio::fs::write(&path, b"saved by an async hook\n")
            .await
            .expect("write the file");
        println!("saved on {}", std::thread::current().name().unwrap_or("?"));
    })
    .expect("inside a runtime");
    tokio::task::yield_now().await;
    std::process::exit(5);
}

fn outside_runtime() {
    let err = atexit::register_async(|| async {}).expect_err("no runtime here");
    let _ = writeln!(std::io::stdout(), "{err}");
    println!("pending {}", atexit::pending());
}

/// A child made by `fork` inherits the hook, not the runtime's workers.
#[tokio::main(worker_threads = 2)]
async fn fork_child() {
    async_hook("hook");
    // SAFETY: fork(2) in a test child; the new process only runs the exit
    // handlers and exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        atexit::exit(0);
    }
    let mut status = 0;
    // SAFETY: waitpid(2) on the child just made, with a valid status pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    println!("child exited with {}", libc::WEXITSTATUS(status));
    atexit::exit(0);
}

//! The recipes in `examples/`, each run as a real process; each test checks
//! the effect the recipe exists for (rows in the database, lines in the
//! log, the config file, deleted files, the workers' last words), not just
//! the exit status.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::Outcome;

const SIGTERM: i32 = 15;
const SIGKILL: i32 = 9;

/// The names in `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn run_example(name: &str, args: &[&str]) -> Outcome {
    let mut command = common::example(name);
    command.args(args);
    common::run(command)
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn arg(dir: &Path) -> &str {
    dir.to_str().expect("UTF-8 temp dir path")
}

// ---- sqlite_cleanup -------------------------------------------------------

fn rows(db: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).expect("reopen the database");
    let mut statement = conn
        .prepare("SELECT name FROM events ORDER BY id")
        .expect("query");
    let names = statement
        .query_map([], |row| row.get(0))
        .expect("rows")
        .collect::<Result<Vec<String>, _>>()
        .expect("row");
    names
}

const SQLITE_WORK: &str = "recorded alpha\nrecorded beta\nrecorded gamma\n";

#[test]
fn sqlite_the_handler_commits_closes_and_removes_the_temp_file() {
    let dir = temp_dir();
    let outcome = run_example("sqlite_cleanup", &[arg(dir.path())]);
    assert_eq!(
        outcome.stdout,
        format!(
            "{SQLITE_WORK}exiting with status 0\n\
             [cleanup] Closing DB and removing temp file...\n[cleanup] COMMIT\n"
        )
    );
    assert_eq!(outcome.stderr, "");
    assert_eq!(outcome.code, Some(0));
    // No temp file, no journal: closed cleanly.
    assert_eq!(entries(dir.path()), ["app.db"]);
    assert_eq!(rows(&dir.path().join("app.db")), ["alpha", "beta", "gamma"]);
}

#[test]
fn sqlite_the_handler_rolls_back_when_exiting_with_a_failure_status() {
    let dir = temp_dir();
    let outcome = run_example("sqlite_cleanup", &[arg(dir.path()), "--fail"]);
    assert_eq!(
        outcome.stdout,
        format!(
            "{SQLITE_WORK}exiting with status 1\n\
             [cleanup] Closing DB and removing temp file...\n[cleanup] ROLLBACK\n"
        )
    );
    assert_eq!(outcome.stderr, "");
    assert_eq!(outcome.code, Some(1));
    assert_eq!(entries(dir.path()), ["app.db"]);
    assert!(rows(&dir.path().join("app.db")).is_empty());
}

#[test]
fn sqlite_without_the_handler_the_rows_are_lost_and_the_temp_file_stays() {
    let dir = temp_dir();
    let outcome = run_example("sqlite_cleanup", &[arg(dir.path()), "--no-handler"]);
    assert_eq!(
        outcome.stdout,
        format!("{SQLITE_WORK}exiting with status 0\n")
    );
    assert_eq!(outcome.stderr, "");
    assert_eq!(outcome.code, Some(0));
    let left = entries(dir.path());
    assert!(
        left.iter().any(|name| name.starts_with("scratch-")),
        "the temp file should be left behind: {left:?}"
    );
    // The open transaction is rolled back when the database is reopened.
    assert!(rows(&dir.path().join("app.db")).is_empty());
}

// ---- exit_log -------------------------------------------------------------

const LOG_LINES: usize = 100;

fn processed_line(record: usize) -> String {
    format!(" INFO exit_log: processed record={record}")
}

fn log_lines(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("app.log"))
        .expect("read app.log")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn assert_every_line_logged(flags: &[&str]) {
    let dir = temp_dir();
    let mut args = vec![arg(dir.path())];
    args.extend_from_slice(flags);
    let outcome = run_example("exit_log", &args);
    assert_eq!(outcome.stdout, format!("logged {LOG_LINES} lines\n"));
    assert_eq!(outcome.stderr, "");
    assert_eq!(outcome.code, Some(0));
    let mut expected: Vec<String> = (0..LOG_LINES).map(processed_line).collect();
    expected.push(" INFO exit_log: exiting".to_owned());
    assert_eq!(log_lines(dir.path()), expected);
}

#[test]
fn exit_log_the_handler_writes_every_line_and_the_exit_line() {
    assert_every_line_logged(&[]);
}

#[test]
fn exit_log_the_handler_waits_for_lines_queued_for_a_slow_disk() {
    assert_every_line_logged(&["--slow-disk"]);
}

#[test]
fn exit_log_without_the_handler_queued_lines_are_lost() {
    let dir = temp_dir();
    let outcome = run_example(
        "exit_log",
        &[arg(dir.path()), "--no-handler", "--slow-disk"],
    );
    assert_eq!(outcome.stdout, format!("logged {LOG_LINES} lines\n"));
    assert_eq!(outcome.stderr, "");
    assert_eq!(outcome.code, Some(0));
    let written = log_lines(dir.path());
    // The worker needs ~100 ms for the queue; the process ends right after
    // the last line is queued. What was written is a prefix, whole lines.
    assert!(
        written.len() < LOG_LINES,
        "expected lost lines, all {} were written",
        written.len()
    );
    let expected: Vec<String> = (0..written.len()).map(processed_line).collect();
    assert_eq!(written, expected);
}

// ---- save_config ----------------------------------------------------------

fn config_after(runs: u32) -> String {
    let recent: Vec<String> = (1..=runs)
        .map(|run| format!("    \"session {run}\""))
        .collect();
    format!(
        "{{\n  \"theme\": \"dark\",\n  \"runs\": {runs},\n  \"recent\": [\n{}\n  ]\n}}\n",
        recent.join(",\n")
    )
}

fn read_config(dir: &Path) -> String {
    fs::read_to_string(dir.join("config.json")).expect("read config.json")
}

fn save_config_normally(dir: &Path, runs: u32) {
    let outcome = run_example("save_config", &[arg(dir)]);
    assert_eq!(outcome.stdout, format!("[saved] runs={runs} theme=dark\n"));
    assert_eq!(outcome.stderr, "");
    assert_eq!(outcome.code, Some(0));
    assert_eq!(read_config(dir), config_after(runs));
    assert_eq!(entries(dir), ["config.json"], "no temp file left");
}

#[test]
fn save_config_saves_at_normal_exit_and_loads_it_next_time() {
    let dir = temp_dir();
    save_config_normally(dir.path(), 1);
    save_config_normally(dir.path(), 2);
}

#[test]
fn save_config_saves_on_sigterm_and_still_dies_of_it() {
    let dir = temp_dir();
    let mut command = common::example("save_config");
    command.args([arg(dir.path()), "--wait"]);
    let running = common::start(command);
    running.signal(SIGTERM);
    let outcome = running.finish();
    assert_eq!(outcome.stdout, "READY\n[saved] runs=1 theme=dark\n");
    assert_eq!(outcome.stderr, "");
    assert_eq!(outcome.signal, Some(SIGTERM));
    assert_eq!(read_config(dir.path()), config_after(1));
    assert_eq!(entries(dir.path()), ["config.json"], "no temp file left");
}

#[test]
fn save_config_killed_mid_save_leaves_the_old_file_whole() {
    let dir = temp_dir();
    save_config_normally(dir.path(), 1);

    let mut command = common::example("save_config");
    command.args([arg(dir.path()), "--wait", "--pause-mid-save"]);
    let mut running = common::start(command);
    running.signal(SIGTERM);
    assert_eq!(running.read_line(), "SAVING");
    running.signal(SIGKILL);
    let outcome = running.finish();
    assert_eq!(outcome.signal, Some(SIGKILL));
    assert_eq!(outcome.stderr, "");

    // The half-written copy is only ever the temporary file.
    assert_eq!(read_config(dir.path()), config_after(1));
    let temps: Vec<String> = entries(dir.path())
        .into_iter()
        .filter(|name| name != "config.json")
        .collect();
    assert_eq!(temps.len(), 1, "{temps:?}");
    assert!(temps[0].starts_with(".config.json.") && temps[0].ends_with(".tmp"));
    let half = fs::read_to_string(dir.path().join(&temps[0])).expect("read temp file");
    assert!(
        !half.is_empty() && config_after(2).starts_with(&half) && half != config_after(2),
        "expected the first half of the new settings, found {half:?}"
    );

    // The next run loads the whole old file and clears the leftover.
    save_config_normally(dir.path(), 2);
}

// ---- partial_args ---------------------------------------------------------

#[test]
fn partial_args_deletes_both_files_with_their_arguments() {
    let dir = temp_dir();
    let outcome = run_example("partial_args", &[arg(dir.path())]);
    assert_eq!(
        outcome.stdout,
        format!(
            "wrote output.log and cache.tmp\nDeleting {}\n",
            dir.path().join("output.log").display()
        )
    );
    assert_eq!(outcome.stderr, "");
    assert_eq!(outcome.code, Some(0));
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}

// ---- wait_for_threads -----------------------------------------------------

const WORKERS_STARTED: &str = "[flusher] started\n[stuck] waiting for a reply\n[main] done\n";

/// Where the example registers the join of `stuck`, as `#[track_caller]`
/// records it.
fn stuck_join_site() -> String {
    let source = include_str!("../examples/wait_for_threads.rs");
    let call = "atexit::join_at_exit(stuck";
    let (index, line) = source
        .lines()
        .enumerate()
        .find(|(_, line)| line.contains(call))
        .expect("the join of `stuck` in the example");
    let column = line.find(call).unwrap() + 1;
    format!("examples/wait_for_threads.rs:{}:{column}", index + 1)
}

#[test]
fn wait_for_threads_joins_the_worker_and_reports_the_stuck_one() {
    let started = Instant::now();
    let outcome = run_example("wait_for_threads", &[]);
    let took = started.elapsed();
    assert_eq!(
        outcome.stdout,
        format!(
            "{WORKERS_STARTED}[atexit] telling the workers to stop\n[flusher] last batch written\n"
        )
    );
    assert_eq!(
        outcome.stderr,
        format!(
            "atexit: thread `stuck` still running after 300ms; exiting without it \
             (join registered at {})\n",
            stuck_join_site()
        )
    );
    assert_eq!(outcome.code, Some(0));
    // It waited for the stuck worker, but only for its time limit.
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn wait_for_threads_without_the_handler_the_worker_is_cut_off() {
    let outcome = run_example("wait_for_threads", &["--no-handler"]);
    assert_eq!(outcome.stdout, WORKERS_STARTED);
    assert_eq!(outcome.stderr, "");
    assert_eq!(outcome.code, Some(0));
}

// ---- join_at_exit, beyond the example ------------------------------------
//
// These re-execute this test binary, filtered to the one test, with a
// marker variable: in that child the test runs its scenario instead.

const SCENARIO: &str = "ATEXIT_RECIPES_SCENARIO";

fn in_scenario(name: &str) -> bool {
    std::env::var_os(SCENARIO).is_some_and(|value| value == name)
}

fn run_scenario(test: &str) -> Outcome {
    let mut command = common::scenario(SCENARIO, test);
    command.args(["--exact", test, "--nocapture", "--test-threads=1"]);
    common::run(command)
}

#[test]
fn join_at_exit_does_not_wait_in_a_forked_child() {
    const NAME: &str = "join_at_exit_does_not_wait_in_a_forked_child";
    if in_scenario(NAME) {
        let stuck = std::thread::Builder::new()
            .name("stuck".into())
            .spawn(|| loop {
                std::thread::park();
            })
            .unwrap();
        atexit::join_at_exit(stuck, Duration::from_millis(100));
        // SAFETY: fork(2) has no preconditions; the child only exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // The thread was not copied into this process: nothing to wait for.
            std::process::exit(0);
        }
        let mut status = 0;
        // SAFETY: waits for the child this process just made.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid);
        eprintln!("child exit status {}", libc::WEXITSTATUS(status));
        std::process::exit(0);
    }
    let outcome = run_scenario(NAME);
    let stderr: Vec<&str> = outcome.stderr.lines().collect();
    assert_eq!(stderr.len(), 2, "{stderr:?}");
    // The child neither waited nor reported; the parent did both.
    assert_eq!(stderr[0], "child exit status 0");
    assert!(
        stderr[1].starts_with(
            "atexit: thread `stuck` still running after 100ms; exiting without it \
             (join registered at tests/recipes.rs:"
        ),
        "{stderr:?}"
    );
    assert_eq!(outcome.code, Some(0));
}

#[test]
fn join_at_exit_of_the_thread_that_exits_does_not_wait_for_itself() {
    const NAME: &str = "join_at_exit_of_the_thread_that_exits_does_not_wait_for_itself";
    if in_scenario(NAME) {
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let exiter = std::thread::Builder::new()
            .name("exiter".into())
            .spawn(move || {
                wait.recv().unwrap();
                std::process::exit(3);
            })
            .unwrap();
        atexit::join_at_exit(exiter, Duration::MAX);
        go.send(()).unwrap();
        loop {
            std::thread::park();
        }
    }
    // Waiting for itself would hang until the child's deadline.
    let outcome = run_scenario(NAME);
    assert_eq!(outcome.stderr, "");
    assert_eq!(outcome.code, Some(3));
}

/// The C library destroys the exiting thread's thread-locals before exit
/// handlers run, and `tracing-subscriber` formats each line in one: a hook
/// that logs runs on a new thread (`Hook::on_new_thread`).
#[test]
fn exit_log_a_hook_on_a_new_thread_can_log() {
    const NAME: &str = "exit_log_a_hook_on_a_new_thread_can_log";
    if in_scenario(NAME) {
        let dir = std::env::var_os("LOG_DIR").expect("LOG_DIR");
        let (writer, guard) =
            tracing_appender::non_blocking(tracing_appender::rolling::never(dir, "app.log"));
        tracing_subscriber::fmt()
            .with_writer(writer)
            .with_ansi(false)
            .without_time()
            .init();
        tracing::info!("working");
        atexit::Hook::new(move || {
            tracing::info!("exiting");
            drop(guard);
        })
        .on_new_thread()
        .register();
        std::process::exit(0);
    }
    let dir = temp_dir();
    let mut command = common::scenario(SCENARIO, NAME);
    command
        .args(["--exact", NAME, "--nocapture"])
        .env("LOG_DIR", dir.path());
    let outcome = common::run(command);
    assert_eq!(outcome.stderr, "");
    assert_eq!(
        log_lines(dir.path()),
        [" INFO recipes: working", " INFO recipes: exiting"]
    );
}

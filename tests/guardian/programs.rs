//! The guarded programs, and the tests that end them.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use atexit::Guardian;

use crate::common::{self, Running, Scenario};
use crate::MARKER;

pub const SCENARIOS: &[(&str, Scenario)] = &[
    ("program", program),
    ("bad_input", bad_input_program),
    ("start_twice", start_twice_program),
    ("raw_terminal", crate::terminal::raw_terminal_program),
];

/// How long the guardian may take to finish its actions in these tests
/// (the README reports the measured latency; this only catches a miss).
const ACT_WITHIN: Duration = Duration::from_secs(2);

fn say(line: impl std::fmt::Display) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn err(err: impl std::fmt::Display) -> String {
    err.to_string()
}

/// `program:MODE`: a guardian, a temp dir and a child process group, both
/// declared; then `READY`, a line `DIR GROUP GUARDIAN`, and MODE's ending.
fn program(mode: &str) -> Result<(), String> {
    if mode == "sigterm" {
        atexit::handle_signals().map_err(err)?;
    }
    if mode == "threads" {
        // Eight busy threads, registering and allocating, while it starts.
        for n in 0..8 {
            thread::spawn(move || loop {
                let handle = atexit::register(move || drop(vec![n; 16]));
                handle.unregister();
            });
        }
    }
    let guardian = Guardian::start().map_err(err)?;
    let dir = std::env::temp_dir().join(format!("atexit-guardian-{}", std::process::id()));
    fs::create_dir_all(dir.join("inner")).map_err(err)?;
    fs::write(dir.join("inner/file"), "data").map_err(err)?;
    let remove = guardian.remove_path(&dir).map_err(err)?;
    let child = Command::new("sleep")
        .arg("60")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        // Its own stderr: the test reads the program's to its end.
        .stderr(Stdio::null())
        .spawn()
        .map_err(err)?;
    guardian.kill_process_group(child.id()).map_err(err)?;
    match mode {
        "cancel" => remove.cancel(),
        "command" => {
            guardian
                .run_command(Command::new("touch").arg(dir.with_extension("ran")))
                .map_err(err)?;
        }
        // Keeps the guardian busy for a second after the program's death.
        "holds" => {
            guardian
                .run_command(Command::new("sleep").arg("1"))
                .map_err(err)?;
        }
        "forked" => {
            // SAFETY: this process has one thread; the child only sleeps
            // and leaves by _exit.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                thread::sleep(Duration::from_secs(3));
                unsafe { libc::_exit(0) };
            }
        }
        _ => {}
    }
    say("READY");
    say(format!(
        "{} {} {}",
        dir.display(),
        child.id(),
        guardian.id()
    ));
    match mode {
        // A real fault: Rust's own SIGSEGV handler passes it on.
        "segv" => unsafe {
            // SAFETY: not safe at all, on purpose: a write through null.
            std::ptr::null_mut::<u8>().write_volatile(1);
        },
        "abort" => std::process::abort(),
        "exit" => return Ok(()),
        _ => {}
    }
    loop {
        thread::park();
    }
}

/// What `program` reported after `READY`.
struct Declared {
    dir: PathBuf,
    group: i32,
    guardian: i32,
}

fn start(mode: &str) -> (Running, Declared) {
    start_command(common::scenario(MARKER, &format!("program:{mode}")))
}

fn start_command(command: Command) -> (Running, Declared) {
    let mut running = common::start(command);
    let line = running.read_line();
    let mut parts = line.split(' ');
    let declared = Declared {
        dir: PathBuf::from(parts.next().expect("dir")),
        group: parts.next().and_then(|p| p.parse().ok()).expect("group"),
        guardian: parts.next().and_then(|p| p.parse().ok()).expect("guardian"),
    };
    (running, declared)
}

/// The state of process `pid`, from `/proc/PID/stat`: (state, group,
/// session); `None` if it is gone.
fn stat(pid: i32) -> Option<(char, i32, i32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = text.rsplit_once(") ")?;
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let _parent = fields.next()?;
    let group = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    Some((state, group, session))
}

fn running_process(pid: i32) -> bool {
    stat(pid).is_some_and(|(state, _, _)| state != 'Z' && state != 'X')
}

/// Whether any process of `group` still runs.
fn group_alive(group: i32) -> bool {
    fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .any(|pid| {
            stat(pid).is_some_and(|(state, g, _)| g == group && state != 'Z' && state != 'X')
        })
}

/// Waits until `done` holds; how long that took, or `None` past `limit`.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if done() {
            return Some(started.elapsed());
        }
        if started.elapsed() > limit {
            return None;
        }
        thread::sleep(Duration::from_micros(200));
    }
}

fn both_gone(declared: &Declared) -> bool {
    !declared.dir.exists() && !group_alive(declared.group)
}

/// After a clean ending: the dir and the group are left as they were.
fn tidy(declared: &Declared) {
    // SAFETY: kill(2) of a process group this test's child started.
    unsafe { libc::kill(-declared.group, libc::SIGKILL) };
    let _ = fs::remove_dir_all(&declared.dir);
}

fn killed_and_cleaned(mode: &str, signal: Option<i32>, died_of: i32) {
    let (running, declared) = start(mode);
    if let Some(signal) = signal {
        running.signal(signal);
    }
    let outcome = running.finish();
    assert_eq!(outcome.signal, Some(died_of), "{outcome:?}");
    let took = wait_until(ACT_WITHIN, || both_gone(&declared));
    assert!(
        took.is_some(),
        "after {mode}: dir there: {}, group alive: {}",
        declared.dir.exists(),
        group_alive(declared.group)
    );
    assert!(
        wait_until(ACT_WITHIN, || !running_process(declared.guardian)).is_some(),
        "the guardian did not exit after acting"
    );
}

pub fn sigkill() {
    killed_and_cleaned("wait", Some(libc::SIGKILL), libc::SIGKILL);
}

pub fn started_among_threads() {
    killed_and_cleaned("threads", Some(libc::SIGKILL), libc::SIGKILL);
}

pub fn sigsegv() {
    killed_and_cleaned("segv", None, libc::SIGSEGV);
}

pub fn abort() {
    killed_and_cleaned("abort", None, libc::SIGABRT);
}

fn clean_ending(mode: &str, signal: Option<i32>) {
    let (running, declared) = start(mode);
    if let Some(signal) = signal {
        running.signal(signal);
    }
    let outcome = running.finish();
    let ended = Instant::now();
    let guardian_gone = wait_until(Duration::from_secs(2), || {
        !running_process(declared.guardian)
    });
    let kept = declared.dir.join("inner/file").exists() && group_alive(declared.group);
    tidy(&declared);
    assert!(
        kept,
        "a clean ending ({mode}) had its actions carried out: {outcome:?}"
    );
    let gone = guardian_gone.expect("the guardian outlived a clean ending");
    assert!(
        gone < Duration::from_millis(100),
        "the guardian took {gone:?} to go ({:?} since the end)",
        ended.elapsed()
    );
}

pub fn clean_exit() {
    clean_ending("exit", None);
}

pub fn handled_sigterm() {
    clean_ending("sigterm", Some(libc::SIGTERM));
}

pub fn cancelled() {
    let (running, declared) = start("cancel");
    running.signal(libc::SIGKILL);
    running.finish();
    assert!(wait_until(ACT_WITHIN, || !group_alive(declared.group)).is_some());
    // The group's kill and the guardian's exit come after the (cancelled)
    // removal would have.
    assert!(wait_until(ACT_WITHIN, || !running_process(declared.guardian)).is_some());
    let kept = declared.dir.join("inner/file").exists();
    let _ = fs::remove_dir_all(&declared.dir);
    assert!(kept, "a cancelled remove_path was carried out");
}

pub fn command_runs() {
    let (running, declared) = start("command");
    running.signal(libc::SIGKILL);
    running.finish();
    let marker = declared.dir.with_extension("ran");
    let ran = wait_until(ACT_WITHIN, || marker.exists());
    let _ = fs::remove_file(&marker);
    assert!(ran.is_some(), "the declared command did not run");
    assert!(wait_until(ACT_WITHIN, || both_gone(&declared)).is_some());
}

pub fn forked_child() {
    let (running, declared) = start("forked");
    running.signal(libc::SIGKILL);
    running.finish();
    // The forked child sleeps 3 s with a copy of everything: the guardian
    // must not wait for it.
    let took = wait_until(ACT_WITHIN, || both_gone(&declared));
    assert!(
        took.is_some_and(|took| took < Duration::from_secs(1)),
        "the guardian waited for the forked child: {took:?}"
    );
}

pub fn holds_nothing() {
    // The program leads a group of its own, to be killed as a whole.
    let mut command = common::scenario(MARKER, "program:holds");
    command.process_group(0);
    let (mut running, declared) = start_command(command);
    let pid = declared.guardian;
    // Its descriptors: /dev/null, /dev/null, the program's stderr, the socket.
    let fds: Vec<(String, String)> = fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("guardian fds")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let target = fs::read_link(entry.path()).ok()?;
            Some((
                entry.file_name().to_string_lossy().into_owned(),
                target.display().to_string(),
            ))
        })
        .collect();
    assert_eq!(fds.len(), 4, "{fds:?}");
    let target = |fd: &str| {
        fds.iter()
            .find(|(n, _)| n == fd)
            .map(|(_, t)| t.clone())
            .unwrap_or_default()
    };
    assert_eq!(target("0"), "/dev/null");
    assert_eq!(target("1"), "/dev/null");
    assert!(target("2").starts_with("pipe:"), "stderr: {fds:?}");
    let others: Vec<&(String, String)> = fds
        .iter()
        .filter(|(fd, _)| !["0", "1", "2"].contains(&fd.as_str()))
        .collect();
    assert!(
        others.len() == 1 && others[0].1.starts_with("socket:"),
        "{fds:?}"
    );
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        Path::new("/")
    );
    let (_, group, session) = stat(pid).expect("guardian running");
    assert_eq!(group, pid, "the guardian is not in a group of its own");
    assert_eq!(session, pid, "the guardian is not in a session of its own");
    // Killing the program's group leaves the guardian; the program's
    // stdout ends at once although the guardian lives on (it runs
    // `sleep 1`, with the program's stderr).
    // SAFETY: kill(2) of the program's own group (this test's child).
    unsafe { libc::kill(-running.pid(), libc::SIGKILL) };
    let killed = Instant::now();
    while !running.read_line().is_empty() {}
    let eof = killed.elapsed();
    assert!(
        eof < Duration::from_millis(500),
        "stdout stayed open {eof:?}"
    );
    assert!(
        running_process(pid),
        "killing the program's group killed the guardian"
    );
    let outcome = running.finish();
    assert_eq!(outcome.signal, Some(libc::SIGKILL), "{outcome:?}");
    assert!(wait_until(Duration::from_secs(5), || both_gone(&declared)).is_some());
}

/// Every refusal, one line each, and the one relative path accepted.
fn bad_input_program(_: &str) -> Result<(), String> {
    let guardian = Guardian::start().map_err(err)?;
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let show = |result: Result<atexit::GuardianAction, atexit::Error>| match result {
        Ok(action) => {
            action.cancel();
            "accepted".to_owned()
        }
        Err(error) => error.to_string(),
    };
    say(show(guardian.remove_path("/")));
    say(show(guardian.remove_path(&home)));
    say(show(guardian.remove_path("/home/someone")));
    say(show(guardian.remove_path("relative/dir")));
    say(show(guardian.kill_process_group(0)));
    say(show(guardian.kill_process_group(1)));
    say(show(guardian.kill_process_group(guardian.id()))
        .replace(&guardian.id().to_string(), "GUARDIAN"));
    say(show(guardian.kill_process_group(std::process::id()))
        .replace(&std::process::id().to_string(), "SELF"));
    Ok(())
}

pub fn bad_input() {
    let outcome = common::run(common::scenario(MARKER, "bad_input"));
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let refused = |action: &str, given: &str, reason: &str| {
        format!("refused to declare {action}({given}): {reason}; nothing was declared")
    };
    let expected = [
        refused("remove_path", "/", "it is the root directory"),
        refused("remove_path", &home, "it is a home directory"),
        refused("remove_path", "/home/someone", "it is a home directory"),
        "accepted".to_owned(),
        refused("kill_process_group", "0", "0 means the caller's own group"),
        refused("kill_process_group", "1", "1 is the init process"),
        refused(
            "kill_process_group",
            "GUARDIAN",
            "it is the guardian's own group",
        ),
        refused(
            "kill_process_group",
            "SELF",
            "it is this program's own process group leader",
        ),
    ];
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(lines, expected, "{outcome:?}");
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
}

fn start_twice_program(_: &str) -> Result<(), String> {
    fn shareable<T: Clone + Send + Sync + std::fmt::Debug>(_: &T) {}
    let first = Guardian::start().map_err(err)?;
    let second = Guardian::start().map_err(err)?;
    shareable(&first);
    say(format!("same guardian: {}", first.id() == second.id()));
    Ok(())
}

pub fn start_twice() {
    let outcome = common::run(common::scenario(MARKER, "start_twice"));
    assert_eq!(outcome.stdout, "same guardian: true\n", "{outcome:?}");
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
}

/// 200 programs killed with SIGKILL, one after another: every action
/// carried out, and how long after the kill they were done.
pub fn kills_in_a_row() {
    const KILLS: usize = 200;
    let mut latencies = Vec::with_capacity(KILLS);
    let mut missed = Vec::new();
    for n in 0..KILLS {
        let (running, declared) = start("wait");
        running.signal(libc::SIGKILL);
        let killed = Instant::now();
        match wait_until(ACT_WITHIN, || both_gone(&declared)) {
            Some(_) => latencies.push(killed.elapsed()),
            None => missed.push(n),
        }
        running.finish();
    }
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    println!(
        "{KILLS} kills: {} missed; dir removed and group killed {:.1?} (p50), {:.1?} (p99), {:.1?} (max) after SIGKILL",
        missed.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
    assert!(
        missed.is_empty(),
        "runs whose actions were missed: {missed:?}"
    );
}

/// `examples/guardian_tempdir`: its parent kills it and finds both gone.
pub fn example_tempdir() {
    let outcome = common::run(common::example("guardian_tempdir"));
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{outcome:?}");
    assert!(lines[0].starts_with("program: temp dir /"), "{outcome:?}");
    assert_eq!(lines[1], "parent: sent SIGKILL to the program");
    assert!(
        lines[2].starts_with("parent: temp dir gone, child group gone, "),
        "{outcome:?}"
    );
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
}

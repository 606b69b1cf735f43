//! Scenario 2, fork at a bad moment: the main thread forks again and again
//! while other threads register and unregister in a loop. Every child must
//! exit in time and run exactly the handlers its policy says: all pending
//! ones once, newest first, except `InChild::Skip` hooks, which it drops
//! unrun.
//!
//! The forking process checks its children itself (it alone can `waitpid`
//! them) and prints one `summary` line for the test to read.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use atexit::{Hook, InChild};

use crate::child;
use crate::{describe, record, recorded, say, Group, Plan, Rng, Scenario, Scratch};

pub const SCENARIOS: &[(&str, Scenario)] = &[
    ("fork-churn", fork_churn),
    ("fork-library-registry", fork_library_registry),
    #[cfg(feature = "signal")]
    ("fork-signals", fork_signals),
];
pub const GROUPS: &[Group] = &[
    ("fork at a bad moment", fork_group),
    ("fork with a busy library Registry", library_group),
    #[cfg(feature = "signal")]
    ("fork after handle_signals", signals_group),
];

const FULL_FORKS: usize = 200;
/// How long a forked child may take to exit.
const CHILD_DEADLINE: Duration = Duration::from_secs(3);
/// How long a whole forking scenario may take.
const SCENARIO_DEADLINE: Duration = Duration::from_secs(120);
/// A scenario stops forking after this many hung children: each costs
/// `CHILD_DEADLINE`, and a few make the point.
const MAX_HUNG: usize = 2;

/// The directory where every process records what its handlers did, one
/// file per pid.
static DIR: OnceLock<PathBuf> = OnceLock::new();
/// The process that registered the hooks (the forking one).
static OWNER: AtomicU32 = AtomicU32::new(0);
static STOP: AtomicBool = AtomicBool::new(false);

fn note(line: &str) {
    let dir = DIR.get().expect("DIR set before any handler");
    record(&dir.join(std::process::id().to_string()), line);
}

fn ran(label: String) -> impl FnOnce() + Send + 'static {
    move || note(&format!("ran {label}"))
}

fn ran_with(label: &'static str) {
    note(&format!("ran {label}"));
}

fn churn_b(i: u64) {
    note(&format!("ran churn-b-{i}"));
}

/// Captured by `InChild::Skip` hooks: records its drop when that happens in
/// a forked child, where the hook must be dropped unrun.
struct DropProbe(String);

impl Drop for DropProbe {
    fn drop(&mut self) {
        if std::process::id() != OWNER.load(Ordering::Relaxed) {
            note(&format!("dropped {}", self.0));
        }
    }
}

fn skip_hook(label: String) -> Hook<impl FnOnce() + Send + 'static> {
    let probe = DropProbe(label.clone());
    Hook::new(move || {
        let _probe = probe;
        note(&format!("ran {label}"));
    })
    .in_child(InChild::Skip)
}

/// The handlers of the forking process, registered before the churn
/// starts; as a child sees them, newest first: `with-main`, `plain-main`,
/// `run-main`, then `skip-main` dropped.
fn register_main_handlers() {
    skip_hook("skip-main".into()).name("skip-main").register();
    Hook::new(ran("run-main".into()))
        .name("run-main")
        .in_child(InChild::Run)
        .register();
    atexit::register(ran("plain-main".into()));
    atexit::register_with(ran_with, ("with-main",));
}

/// Starts threads that register and unregister in the process registry
/// until `STOP`; every loop leaves nothing of its own pending.
fn start_churn(ops: &Arc<AtomicU64>) -> Vec<thread::JoinHandle<()>> {
    let mut threads = Vec::new();
    let loops: [fn(u64); 4] = [
        |i| {
            atexit::register(ran(format!("churn-a-{i}"))).unregister();
        },
        |i| {
            for k in 0..3 {
                atexit::register_with(churn_b, (i * 3 + k,));
            }
            atexit::unregister(churn_b);
        },
        |i| {
            skip_hook(format!("churn-c-{i}")).register().unregister();
        },
        |i| {
            Hook::new(ran(format!("churn-d-{i}")))
                .name(format!("churn-d-{i}"))
                .register()
                .unregister();
        },
    ];
    for step in loops {
        let ops = Arc::clone(ops);
        threads.push(thread::spawn(move || {
            let mut i = 0;
            while !STOP.load(Ordering::Relaxed) {
                step(i);
                i += 1;
                ops.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    threads
}

/// Forks; in the child runs `body`, which must end the process.
fn fork(body: impl FnOnce()) -> Result<libc::pid_t, String> {
    // SAFETY: the child runs only `body`: code that takes no lock another
    // thread may have held at the fork, except the crate's registry lock
    // (kept whole by its fork hooks, which is under test) and the C
    // library's allocator lock (reset by glibc in the child).
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(format!("fork failed: {}", std::io::Error::last_os_error())),
        0 => {
            body();
            // SAFETY: `body` did not end the process as it should have; end
            // it without running anything more.
            unsafe { libc::_exit(99) }
        }
        pid => Ok(pid),
    }
}

/// How a forked child ended: its wait status, or `None` if it outlived
/// `CHILD_DEADLINE` and was killed.
fn wait_forked(pid: libc::pid_t) -> Option<libc::c_int> {
    let started = Instant::now();
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child, WNOHANG: only writes `status`.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc == pid {
            return Some(status);
        }
        if started.elapsed() > CHILD_DEADLINE {
            // SAFETY: the child is ours and not reaped (the last waitpid
            // returned 0), so the pid is still its own.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return None;
        }
        thread::sleep(Duration::from_micros(200));
    }
}

fn exit_code(status: libc::c_int) -> Option<i32> {
    libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status))
}

fn term_signal(status: libc::c_int) -> Option<i32> {
    libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status))
}

/// The codes the three exit paths of a forked child use.
const CHILD_CODES: [i32; 3] = [3, 4, 5];

fn child_body(n: usize) {
    let pending = atexit::pending();
    note(&format!("pending {pending}"));
    atexit::register(ran("own".into()));
    match n % 3 {
        0 => std::process::exit(CHILD_CODES[0]),
        1 => atexit::exit(CHILD_CODES[1]),
        // SAFETY: the C library's exit, the path `main` returning takes.
        _ => unsafe { libc::exit(CHILD_CODES[2]) },
    }
}

/// Counts of what went wrong across the forked children.
#[derive(Default)]
struct Tally {
    lost: usize,
    doubled: usize,
    skip_ran: usize,
    hung: usize,
    bad_status: usize,
    misordered: usize,
    problems: Vec<String>,
}

fn check_forked(n: usize, pid: libc::pid_t, status: Option<libc::c_int>, tally: &mut Tally) {
    let lines = recorded(&DIR.get().unwrap().join(pid.to_string()));
    let mut bad = Vec::new();
    let Some(status) = status else {
        tally.hung += 1;
        tally
            .problems
            .push(format!("fork {n}: hung; recorded {lines:?}"));
        return;
    };
    if exit_code(status) != Some(CHILD_CODES[n % 3]) {
        tally.bad_status += 1;
        bad.push(format!("wait status {status:#x}"));
    }
    let pending: Option<usize> = lines
        .first()
        .and_then(|line| line.strip_prefix("pending "))
        .and_then(|count| count.parse().ok());
    let events = lines.get(1..).unwrap_or_default();
    let mut labels = std::collections::BTreeSet::new();
    for event in events {
        let (kind, label) = event.split_once(' ').unwrap_or((event, ""));
        if !labels.insert(label) {
            tally.doubled += 1;
            bad.push(format!("{label} twice"));
        }
        if kind == "ran" && (label.starts_with("skip-") || label.starts_with("churn-c-")) {
            tally.skip_ran += 1;
            bad.push(format!("InChild::Skip hook {label} ran"));
        }
    }
    // Every handler pending at the fork ran or (Skip) was dropped, plus the
    // child's own.
    match pending {
        Some(pending) if events.len() < pending + 1 => {
            tally.lost += pending + 1 - events.len();
            bad.push(format!("{} handlers lost", pending + 1 - events.len()));
        }
        Some(_) => {}
        None => {
            tally.lost += 1;
            bad.push("no pending count".into());
        }
    }
    let expected_tail = [
        "ran with-main",
        "ran plain-main",
        "ran run-main",
        "dropped skip-main",
    ];
    if events.first().map(String::as_str) != Some("ran own")
        || events.len() < expected_tail.len()
        || events[events.len() - expected_tail.len()..] != expected_tail
    {
        tally.misordered += 1;
        bad.push("not own first and main's handlers last".into());
    }
    if !bad.is_empty() {
        tally
            .problems
            .push(format!("fork {n}: {}; recorded {lines:?}", bad.join(", ")));
    }
}

fn fork_churn(arg: &str) -> Result<(), String> {
    let forks: usize = arg.parse().map_err(|_| format!("bad fork count {arg:?}"))?;
    DIR.set(crate::scratch_dir()?).unwrap();
    OWNER.store(std::process::id(), Ordering::Relaxed);
    let mut rng = Rng::new(u64::from(std::process::id()));
    register_main_handlers();
    let ops = Arc::new(AtomicU64::new(0));
    let churn = start_churn(&ops);
    // Let every churn thread get going before the first fork.
    while ops.load(Ordering::Relaxed) < 100 {
        thread::yield_now();
    }
    let mut tally = Tally::default();
    for n in 0..forks {
        if tally.hung >= MAX_HUNG {
            say(format!(
                "problem stopped after {n} forks: {MAX_HUNG} children hung"
            ));
            break;
        }
        let pid = fork(|| child_body(n))?;
        let status = wait_forked(pid);
        check_forked(n, pid, status, &mut tally);
        thread::sleep(rng.duration(Duration::from_micros(300)));
    }
    STOP.store(true, Ordering::Relaxed);
    for thread in churn {
        thread.join().map_err(|_| "churn thread panicked")?;
    }
    for problem in &tally.problems {
        say(format!("problem {problem}"));
    }
    say(format!(
        "summary {forks} {} {} {} {} {} {} {}",
        tally.lost,
        tally.doubled,
        tally.skip_ran,
        tally.hung,
        tally.bad_status,
        tally.misordered,
        ops.load(Ordering::Relaxed)
    ));
    // Now `main` returns: this process runs its own four handlers, the Skip
    // one included.
    Ok(())
}

/// The `summary` line of a forking scenario, as numbers.
fn summary(ended: &child::Ended) -> Option<Vec<u64>> {
    let line = ended
        .lines()
        .into_iter()
        .find(|l| l.starts_with("summary "))?;
    line.split(' ')
        .skip(1)
        .map(|n| n.parse().ok())
        .collect::<Option<Vec<u64>>>()
}

fn problem_lines(ended: &child::Ended) -> Vec<String> {
    ended
        .lines()
        .into_iter()
        .filter_map(|line| line.strip_prefix("problem "))
        .map(str::to_owned)
        .collect()
}

fn fork_group(plan: &Plan) -> Vec<String> {
    let forks = plan.runs(FULL_FORKS);
    let scratch = Scratch::new("fork");
    let mut command = crate::scenario(&format!("fork-churn:{forks}"));
    command.env("ATEXIT_STRESS_DIR", scratch.path());
    let mut live = child::spawn(command);
    let pid = live.pid();
    let ended = live.finish_within(SCENARIO_DEADLINE);
    let mut problems = problem_lines(&ended);
    let Some(counts) = summary(&ended) else {
        println!("fork at a bad moment: no summary ({})", describe(&ended));
        problems.push(no_summary(&ended));
        return problems;
    };
    let [_, lost, doubled, skip_ran, hung, bad_status, misordered, ops] = counts[..] else {
        return vec![format!("malformed summary {counts:?}")];
    };
    println!(
        "fork at a bad moment: {forks} forks while 4 threads made {ops} register/unregister \
         rounds, {lost} lost, {doubled} doubled, {skip_ran} InChild::Skip run in a child, \
         {hung} hung, {bad_status} bad status, {misordered} misordered"
    );
    if lost + doubled + skip_ran + hung + bad_status + misordered > 0 && problems.is_empty() {
        problems.push("non-zero counts".into());
    }
    // The forking process itself ran its four handlers, the Skip one too.
    let own = recorded(&scratch.path().join(pid.to_string()));
    let want = [
        "ran with-main",
        "ran plain-main",
        "ran run-main",
        "ran skip-main",
    ];
    if own != want || ended.code != Some(0) || !ended.stderr.is_empty() {
        problems.push(format!(
            "forking process: {}, its handlers recorded {own:?} (want {want:?}), stderr {:?}",
            describe(&ended),
            ended.stderr
        ));
    }
    problems
}

/// A library's own shutdown list, used from several threads.
static LIBRARY: LazyLock<atexit::Registry> = LazyLock::new(atexit::Registry::new);

/// Like `fork-churn`, but the threads churn a `Registry` in a static, and
/// each child runs that registry before exiting.
fn fork_library_registry(arg: &str) -> Result<(), String> {
    let forks: usize = arg.parse().map_err(|_| format!("bad fork count {arg:?}"))?;
    DIR.set(crate::scratch_dir()?).unwrap();
    OWNER.store(std::process::id(), Ordering::Relaxed);
    LIBRARY.register(ran("library-main".into()));
    let ops = Arc::new(AtomicU64::new(0));
    let mut churn = Vec::new();
    for t in 0..2 {
        let ops = Arc::clone(&ops);
        churn.push(thread::spawn(move || {
            let mut i = 0u64;
            while !STOP.load(Ordering::Relaxed) {
                LIBRARY
                    .register(ran(format!("library-{t}-{i}")))
                    .unregister();
                i += 1;
                ops.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    while ops.load(Ordering::Relaxed) < 100 {
        thread::yield_now();
    }
    let mut tally = Tally::default();
    for n in 0..forks {
        if tally.hung >= MAX_HUNG {
            say(format!(
                "problem stopped after {n} forks: {MAX_HUNG} children hung"
            ));
            break;
        }
        let pid = fork(|| {
            let result = LIBRARY.run();
            note(&format!("run {}", result.is_ok()));
            std::process::exit(CHILD_CODES[0]);
        })?;
        match wait_forked(pid) {
            None => {
                tally.hung += 1;
                tally.problems.push(format!(
                    "fork {n}: hung in Registry::run; recorded {:?}",
                    recorded(&DIR.get().unwrap().join(pid.to_string()))
                ));
            }
            Some(status) => {
                let lines = recorded(&DIR.get().unwrap().join(pid.to_string()));
                if exit_code(status) != Some(CHILD_CODES[0])
                    || lines.last().map(String::as_str) != Some("run true")
                    || !lines.iter().any(|l| l == "ran library-main")
                {
                    tally.bad_status += 1;
                    tally
                        .problems
                        .push(format!("fork {n}: status {status:#x}, recorded {lines:?}"));
                }
            }
        }
    }
    STOP.store(true, Ordering::Relaxed);
    for thread in churn {
        thread.join().map_err(|_| "churn thread panicked")?;
    }
    for problem in &tally.problems {
        say(format!("problem {problem}"));
    }
    say(format!(
        "summary {forks} {} {} {}",
        tally.hung,
        tally.bad_status,
        ops.load(Ordering::Relaxed)
    ));
    Ok(())
}

fn library_group(plan: &Plan) -> Vec<String> {
    let forks = plan.runs(FULL_FORKS);
    let scratch = Scratch::new("library");
    let mut command = crate::scenario(&format!("fork-library-registry:{forks}"));
    command.env("ATEXIT_STRESS_DIR", scratch.path());
    let ended = child::run_within(command, SCENARIO_DEADLINE);
    let mut problems = problem_lines(&ended);
    match summary(&ended).as_deref() {
        Some(&[_, hung, bad, ops]) => {
            println!(
                "fork with a busy library Registry: {forks} forks while 2 threads made {ops} \
                 register/unregister rounds, {hung} hung, {bad} wrong"
            );
            if hung + bad > 0 && problems.is_empty() {
                problems.push("non-zero counts".into());
            }
        }
        _ => problems.push(no_summary(&ended)),
    }
    problems
}

/// `handle_signals`, then fork: a SIGTERM sent to the child must end it,
/// by SIGTERM, within the deadline.
#[cfg(feature = "signal")]
fn fork_signals(arg: &str) -> Result<(), String> {
    let forks: usize = arg.parse().map_err(|_| format!("bad fork count {arg:?}"))?;
    DIR.set(crate::scratch_dir()?).unwrap();
    OWNER.store(std::process::id(), Ordering::Relaxed);
    atexit::handle_signals().map_err(|err| err.to_string())?;
    atexit::register(ran("plain-main".into()));
    let (mut died_of_sigterm, mut hung, mut other, mut handlers_ran) = (0, 0, 0, 0);
    for n in 0..forks {
        if hung >= MAX_HUNG {
            say(format!(
                "problem stopped after {n} forks: {MAX_HUNG} children hung"
            ));
            break;
        }
        let pid = fork(|| {
            note("started");
            crate::park_forever()
        })?;
        // Wait until the child runs, then signal it: its signal handling is
        // the one it inherited.
        let file = DIR.get().unwrap().join(pid.to_string());
        let started = Instant::now();
        while recorded(&file).is_empty() && started.elapsed() < CHILD_DEADLINE {
            thread::sleep(Duration::from_micros(200));
        }
        // SAFETY: kill on our own unreaped child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let status = wait_forked(pid);
        let lines = recorded(&file);
        if lines.iter().any(|l| l == "ran plain-main") {
            handlers_ran += 1;
        }
        match status {
            None => {
                hung += 1;
                say(format!(
                    "problem fork {n}: SIGTERM did not end the forked child within \
                     {CHILD_DEADLINE:?}; recorded {lines:?}"
                ));
            }
            Some(status) if term_signal(status) == Some(libc::SIGTERM) => died_of_sigterm += 1,
            Some(status) => {
                other += 1;
                say(format!(
                    "problem fork {n}: wait status {status:#x}; recorded {lines:?}"
                ));
            }
        }
    }
    say(format!(
        "summary {forks} {died_of_sigterm} {hung} {other} {handlers_ran}"
    ));
    Ok(())
}

#[cfg(feature = "signal")]
fn signals_group(plan: &Plan) -> Vec<String> {
    // Each hang costs the whole child deadline: a few forks tell enough.
    let forks = plan.runs(20).min(10);
    let scratch = Scratch::new("fork-signals");
    let mut command = crate::scenario(&format!("fork-signals:{forks}"));
    command.env("ATEXIT_STRESS_DIR", scratch.path());
    let ended = child::run_within(command, SCENARIO_DEADLINE);
    let mut problems = problem_lines(&ended);
    match summary(&ended).as_deref() {
        Some(&[_, died, hung, other, handlers_ran]) => {
            println!(
                "fork after handle_signals: {forks} children sent SIGTERM, {died} died of it, \
                 {hung} hung, {other} ended otherwise; handlers ran in {handlers_ran}"
            );
            if hung + other > 0 && problems.is_empty() {
                problems.push("non-zero counts".into());
            }
        }
        _ => problems.push(no_summary(&ended)),
    }
    problems
}

/// The problem to report when a child printed no summary line.
fn no_summary(ended: &child::Ended) -> String {
    format!(
        "no summary: {}, stdout {:?}, stderr {:?}",
        describe(ended),
        ended.stdout,
        ended.stderr
    )
}

//! Both sides of the console-event scenarios (Windows only).

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use windows_sys::core::BOOL;
use windows_sys::Win32::System::Console::{
    GenerateConsoleCtrlEvent, SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_C_EVENT,
};

use crate::common::{self, Outcome, Running};

const MARKER: &str = "ATEXIT_CONSOLE";
/// STATUS_CONTROL_C_EXIT: what Windows gives a process that a console
/// event ends, as `ExitStatus::code` reports it.
const CONTROL_C_EXIT: i32 = 0xC000_013A_u32 as i32;

pub fn main() -> Result<(), String> {
    if let Ok(name) = std::env::var(MARKER) {
        return play(&name);
    }
    swallow_console_events();
    if let Err(err) = send(CTRL_C_EVENT) {
        return Err(format!(
            "this binary needs a console to send events to its children ({err}); \
             under Wine run it through a pseudo-terminal: script -qec \"wine {}\" /dev/null",
            std::env::current_exe().map_or_else(|_| "BINARY".into(), |p| p.display().to_string())
        ));
    }
    let filter: Option<String> = std::env::args().skip(1).find(|arg| !arg.starts_with('-'));
    let started = Instant::now();
    let mut failed = Vec::new();
    let mut ran = 0;
    for &(name, check) in CHECKS {
        if filter
            .as_deref()
            .is_some_and(|filter| !name.contains(filter))
        {
            continue;
        }
        if name.contains("ctrl_break") && on_wine() {
            // Wine 8's GenerateConsoleCtrlEvent refuses CTRL_BREAK_EVENT
            // (os error 6), to the whole console and to a process group.
            println!("test {name} ... skipped: Wine cannot send Ctrl-Break");
            continue;
        }
        ran += 1;
        match std::panic::catch_unwind(check) {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                failed.push(name);
                println!("test {name} ... FAILED");
            }
        }
    }
    common::summary(ran, &failed, started)
}

/// The parent gets every event it sends too: it ignores them. Children do
/// not inherit the handler.
fn swallow_console_events() {
    unsafe extern "system" fn swallow(_event: u32) -> BOOL {
        1
    }
    // SAFETY: `swallow` is a plain function that lives as long as the
    // program and does nothing.
    let ok = unsafe { SetConsoleCtrlHandler(Some(swallow), 1) };
    assert_ne!(ok, 0, "SetConsoleCtrlHandler");
}

/// Sends `event` to every process on this console (the child among them).
fn send(event: u32) -> std::io::Result<()> {
    // SAFETY: no pointers; group 0 is every process sharing the console.
    if unsafe { GenerateConsoleCtrlEvent(event, 0) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sends Ctrl-Break to the process group `group` (a child started with
/// `start_in_own_group`). Wine sends Ctrl-Break to a group only, not to
/// the whole console.
fn send_break_to(group: u32) -> std::io::Result<()> {
    // SAFETY: no pointers; `group` is the id of a child's process group.
    if unsafe { GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, group) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn start(name: &str) -> Running {
    common::start(common::scenario(MARKER, name))
}

/// A child in a process group of its own, which Ctrl-Break can be sent to
/// (Ctrl-C is disabled in such a group).
fn start_in_own_group(name: &str) -> Running {
    use std::os::windows::process::CommandExt;
    const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
    let mut command = common::scenario(MARKER, name);
    command.creation_flags(CREATE_NEW_PROCESS_GROUP);
    common::start(command)
}

/// Starts `name`, sends `event` once it is READY, and waits for the end.
fn sent(name: &str, event: u32) -> Outcome {
    if event == CTRL_BREAK_EVENT {
        let running = start_in_own_group(name);
        send_break_to(running.child.id()).expect("send Ctrl-Break");
        return running.finish();
    }
    let running = start(name);
    send(event).expect("send the console event");
    running.finish()
}

/// Whether this is Wine rather than Windows (ntdll exports
/// `wine_get_version`).
fn on_wine() -> bool {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};
    // SAFETY: both names are NUL-terminated; ntdll is always loaded.
    unsafe {
        let ntdll = GetModuleHandleA(c"ntdll.dll".as_ptr().cast());
        !ntdll.is_null() && GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast()).is_some()
    }
}

/// The status of a process that a Ctrl-C or Ctrl-Break ends when no
/// handler takes it: STATUS_CONTROL_C_EXIT on Windows; Wine 8's default
/// handler exits with 0 instead.
fn unhandled_status() -> i32 {
    if on_wine() {
        0
    } else {
        CONTROL_C_EXIT
    }
}

type Check = fn();

const CHECKS: &[(&str, Check)] = &[
    ("ctrl_c_runs_handlers", || {
        let out = sent("handled", CTRL_C_EVENT);
        assert_eq!(
            out.stdout,
            "READY\nnewest: Some(Console(CtrlC)) on Some(\"atexit-signals\")\noldest\n"
        );
        assert_eq!(out.stderr, "");
        assert_eq!(out.code, Some(CONTROL_C_EXIT));
    }),
    ("ctrl_break_runs_handlers", || {
        let out = sent("handled", CTRL_BREAK_EVENT);
        assert_eq!(
            out.stdout,
            "READY\nnewest: Some(Console(CtrlBreak)) on Some(\"atexit-signals\")\noldest\n"
        );
        assert_eq!(out.stderr, "");
        assert_eq!(out.code, Some(CONTROL_C_EXIT));
    }),
    ("ctrl_c_without_handle_signals", || {
        // What Windows does with nothing handling the event: the status
        // the crate copies.
        let out = sent("unhandled", CTRL_C_EVENT);
        assert_eq!(out.stdout, "READY\n");
        assert_eq!(out.code, Some(unhandled_status()));
    }),
    ("ctrl_break_without_handle_signals", || {
        let out = sent("unhandled", CTRL_BREAK_EVENT);
        assert_eq!(out.stdout, "READY\n");
        assert_eq!(out.code, Some(unhandled_status()));
    }),
    ("ctrl_c_not_chosen", || {
        // `handle_signals_for(&[SIGBREAK])` leaves Ctrl-C to Windows.
        let out = sent("break_only", CTRL_C_EVENT);
        assert_eq!(out.stdout, "READY\n");
        assert_eq!(out.code, Some(unhandled_status()));
    }),
    ("duplicate_within_window_ignored", || {
        let running = start("slow_handler:300");
        send(CTRL_C_EVENT).expect("first Ctrl-C");
        send(CTRL_C_EVENT).expect("second Ctrl-C");
        let out = running.finish();
        assert_eq!(out.stdout, "READY\nslow started\nslow done\noldest\n");
        assert_eq!(out.code, Some(CONTROL_C_EXIT));
    }),
    ("second_event_after_window_force_quits", || {
        let mut running = start("slow_handler:10000");
        let started = Instant::now();
        send(CTRL_C_EVENT).expect("first Ctrl-C");
        assert_eq!(running.read_line(), "slow started");
        thread::sleep(common_window() * 3);
        send(CTRL_C_EVENT).expect("second Ctrl-C");
        let out = running.finish();
        // "slow started" was read above; "slow done" and "oldest" never come.
        assert_eq!(out.stdout, "READY\n");
        assert_eq!(out.code, Some(CONTROL_C_EXIT));
        assert!(started.elapsed() < Duration::from_secs(5), "ended at once");
    }),
    ("event_during_normal_exit_ends_at_once", || {
        let mut running = start("slow_normal_exit");
        assert_eq!(running.read_line(), "exiting normally");
        let started = Instant::now();
        send(CTRL_C_EVENT).expect("Ctrl-C");
        let out = running.finish();
        // "exiting normally" was read above.
        assert_eq!(out.stdout, "READY\n");
        assert_eq!(out.code, Some(CONTROL_C_EXIT));
        assert!(started.elapsed() < Duration::from_secs(5), "ended at once");
    }),
    ("atexit_exit_inside_handler", || {
        let out = sent("exit_in_handler", CTRL_C_EVENT);
        assert_eq!(out.stdout, "READY\nexiting with 4\noldest\n");
        assert_eq!(out.stderr, "");
        assert_eq!(out.code, Some(4));
    }),
    ("deadline", || {
        let out = sent("stuck_handler", CTRL_C_EVENT);
        assert_eq!(out.stdout, "READY\n");
        assert_eq!(
            out.stderr,
            "atexit: exit deadline of 200ms exceeded while running exit handler `stuck` \
             (registered at tests/console/events.rs:LINE:18); skipping the remaining handlers\n"
                .replace("LINE", &line_of("// stuck site").to_string())
        );
        assert_eq!(out.code, Some(CONTROL_C_EXIT));
    }),
    ("refused", || {
        let out = common::run(common::scenario(MARKER, "refused"));
        assert_eq!(
            out.stdout,
            "refused to handle signal 11 (SIGSEGV): a fault signal means the process state may be \
             corrupt, so no handler should run on it; no signal handling was changed\n\
             refused to handle signal 1 (unnamed signal): Windows has no such event: only SIGINT \
             (Ctrl-C), SIGBREAK (Ctrl-Break) and SIGTERM (console close, logoff, shutdown) can be \
             handled; no signal handling was changed\n\
             refused to handle signal 22 (SIGABRT): abort() does not wait for handlers to finish; \
             no signal handling was changed\n\
             empty: Ok(())\n"
        );
        assert_eq!(out.code, Some(0));
    }),
];

fn common_window() -> Duration {
    atexit::COALESCE_WINDOW
}

/// The line of this file that carries `marker`.
fn line_of(marker: &str) -> usize {
    include_str!("events.rs")
        .lines()
        .position(|line| line.contains(marker) && !line.contains("line_of"))
        .expect("marker in events.rs")
        + 1
}

fn ready_and_wait() -> ! {
    println!("READY");
    let _ = std::io::stdout().flush();
    loop {
        thread::park();
    }
}

fn play(full_name: &str) -> Result<(), String> {
    let (name, arg) = full_name.split_once(':').unwrap_or((full_name, ""));
    match name {
        "handled" => {
            atexit::handle_signals().map_err(|err| err.to_string())?;
            atexit::register(|| println!("oldest"));
            atexit::register(|| {
                let thread = thread::current().name().map(str::to_owned);
                println!("newest: {:?} on {thread:?}", atexit::reason());
            });
            ready_and_wait();
        }
        "unhandled" => {
            atexit::register(|| println!("must not run"));
            ready_and_wait();
        }
        "break_only" => {
            atexit::handle_signals_for(&[atexit::SIGBREAK]).map_err(|err| err.to_string())?;
            atexit::register(|| println!("must not run"));
            ready_and_wait();
        }
        "slow_handler" => {
            let millis: u64 = arg.parse().map_err(|_| format!("bad millis {arg:?}"))?;
            atexit::handle_signals().map_err(|err| err.to_string())?;
            atexit::register(|| println!("oldest"));
            atexit::register(move || {
                println!("slow started");
                let _ = std::io::stdout().flush();
                thread::sleep(Duration::from_millis(millis));
                println!("slow done");
            });
            ready_and_wait();
        }
        "slow_normal_exit" => {
            atexit::handle_signals().map_err(|err| err.to_string())?;
            atexit::register(|| println!("older must not run"));
            atexit::register(|| {
                println!("exiting normally");
                let _ = std::io::stdout().flush();
                thread::sleep(Duration::from_secs(10));
                println!("slept through the event");
            });
            println!("READY");
        }
        "exit_in_handler" => {
            atexit::handle_signals().map_err(|err| err.to_string())?;
            atexit::register(|| println!("oldest"));
            atexit::register(|| {
                println!("exiting with 4");
                atexit::exit(4);
            });
            ready_and_wait();
        }
        "stuck_handler" => {
            atexit::set_deadline(Duration::from_millis(200));
            atexit::handle_signals().map_err(|err| err.to_string())?;
            atexit::register(|| println!("older must not run"));
            atexit::Hook::new(|| thread::sleep(Duration::from_secs(10)))
                .name("stuck")
                .register(); // stuck site
            ready_and_wait();
        }
        "refused" => {
            for refused in [&[libc::SIGINT, libc::SIGSEGV][..], &[1], &[22]] {
                let err = atexit::handle_signals_for(refused).expect_err("refused");
                println!("{err}");
            }
            println!("empty: {:?}", atexit::handle_signals_for(&[]));
        }
        other => return Err(format!("unknown scenario {other}")),
    }
    Ok(())
}

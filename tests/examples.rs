//! Every example under `examples/`, run as a real process: exact stdout,
//! stderr, exit status and terminating signal. `cargo test` builds the
//! examples before running this.

mod common;

use std::fs;

use common::Outcome;

/// Runs the example `name` with `args` to completion.
fn run(name: &str, args: &[&str]) -> Outcome {
    let mut command = common::example(name);
    command.args(args);
    common::run(command)
}

/// A run that printed `stdout`, nothing on stderr, and exited with status 0.
#[track_caller]
fn assert_clean(out: &Outcome, stdout: &str) {
    assert_eq!(out.stdout, stdout, "stdout of {out:#?}");
    assert_eq!(out.stderr, "", "stderr of {out:#?}");
    assert_eq!(out.code, Some(0), "exit status of {out:#?}");
    assert_eq!(out.signal, None, "signal of {out:#?}");
}

/// `FILE:LINE:COL` of the only place `needle` occurs in `source` (the text
/// of `file`), as Rust reports a panic or a caller location there.
fn site(file: &str, source: &str, needle: &str) -> String {
    let mut found = source.lines().enumerate().filter_map(|(index, line)| {
        line.find(needle)
            .map(|column| format!("{file}:{}:{}", index + 1, column + 1))
    });
    let first = found
        .next()
        .unwrap_or_else(|| panic!("{needle:?} not in {file}"));
    assert_eq!(
        found.next(),
        None,
        "{needle:?} occurs more than once in {file}"
    );
    first
}

/// stderr in order, with each panic message reduced to `panic at LOCATION:
/// MESSAGE` (no thread id) and the backtrace note and blank lines left out.
fn stderr_events(out: &Outcome) -> Vec<String> {
    let mut events = Vec::new();
    let mut lines = out.stderr.lines();
    while let Some(line) = lines.next() {
        if let Some(at) = common::panic_header(line) {
            let message = lines.next().unwrap_or_default();
            events.push(format!("panic at {} {message}", at.trim_end()));
        } else if !line.is_empty() && !line.starts_with("note: run with `RUST_BACKTRACE") {
            events.push(line.to_owned());
        }
    }
    events
}

#[test]
fn atexit_simple() {
    let out = run("atexit_simple", &[]);
    assert_clean(&out, "Registering\nRegistered\nall_done()\n");
}

#[test]
fn atexit_multiple() {
    let out = run("atexit_multiple", &[]);
    assert_clean(
        &out,
        "my_cleanup(third)\nmy_cleanup(second)\nmy_cleanup(first)\n",
    );
}

#[test]
fn atexit_decorator() {
    let out = run("atexit_decorator", &[]);
    assert_clean(&out, "starting main program\nall_done()\n");
}

#[test]
fn atexit_unregister() {
    // The example also asserts that `unregister` removed all three.
    let out = run("atexit_unregister", &[]);
    assert_clean(&out, "");
}

#[test]
fn atexit_unregister_not_registered() {
    // The example also asserts that `unregister` removed nothing.
    let out = run("atexit_unregister_not_registered", &[]);
    assert_clean(&out, "");
}

#[test]
fn atexit_signal_parent_kills_the_child_before_its_handler_runs() {
    // The parent exits 0 only if the child died of SIGTERM; a handler that
    // ran would add its line to the child's output, echoed here.
    let out = run("atexit_signal_parent", &[]);
    assert_clean(
        &out,
        "CHILD: Registering atexit handler\n\
         CHILD: Pausing to wait for signal\n\
         PARENT: Pausing before sending signal...\n\
         PARENT: Signaling child\n",
    );
}

#[test]
fn atexit_os_exit_runs_no_handler() {
    let out = run("atexit_os_exit", &[]);
    assert_clean(&out, "Registering\nRegistered\nExiting...\n");
}

#[test]
fn atexit_sys_exit_runs_the_handler() {
    let out = run("atexit_sys_exit", &[]);
    assert_clean(&out, "Registering\nRegistered\nExiting...\nall_done()\n");
}

#[test]
fn atexit_exception_reports_both_panics_newest_first() {
    const FILE: &str = "examples/atexit_exception.rs";
    let source = include_str!("../examples/atexit_exception.rs");
    let panic_at = site(FILE, source, "panic!(");
    let first = site(
        FILE,
        source,
        "atexit::register_with(exit_with_exception, (\"Registered first\"",
    );
    let second = site(
        FILE,
        source,
        "atexit::register_with(exit_with_exception, (\"Registered second\"",
    );

    let out = run("atexit_exception", &[]);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.panic_messages(),
        [
            (panic_at.clone(), "Registered second".to_owned()),
            (panic_at.clone(), "Registered first".to_owned()),
        ]
    );
    assert_eq!(
        out.stderr_without_panics(),
        [
            format!("atexit: exit handler registered at {second} panicked"),
            format!("atexit: exit handler registered at {first} panicked"),
        ]
    );
    // Each report follows its own panic message.
    assert_eq!(
        stderr_events(&out),
        [
            format!("panic at {panic_at}: Registered second"),
            format!("atexit: exit handler registered at {second} panicked"),
            format!("panic at {panic_at}: Registered first"),
            format!("atexit: exit handler registered at {first} panicked"),
        ]
    );
    assert_eq!(
        out.code,
        Some(0),
        "a panicking handler leaves the status alone"
    );
    assert_eq!(out.signal, None);
}

#[test]
fn counter_persists_across_runs() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("counterfile");
    let counter = |args: &[&str]| {
        let mut command = common::example("counter");
        command.args(args).current_dir(dir.path());
        common::run(command)
    };

    for (args, count) in [(&[][..], 1), (&["5"][..], 6), (&["-2"][..], 4)] {
        let out = counter(args);
        assert_clean(&out, &format!("[saved] counter = {count}\n"));
        assert_eq!(fs::read_to_string(&file).unwrap(), count.to_string());
    }

    // `main` returning `Err` still runs the handler: the count is saved
    // unchanged.
    let out = counter(&["many"]);
    assert_eq!(out.stdout, "[saved] counter = 4\n");
    assert_eq!(out.stderr, "Error: ParseIntError { kind: InvalidDigit }\n");
    assert_eq!((out.code, out.signal), (Some(1), None));
    assert_eq!(fs::read_to_string(&file).unwrap(), "4");

    // A file it cannot read fails before the handler is registered: the
    // file is left as it was.
    fs::write(&file, "not a number").unwrap();
    let out = counter(&[]);
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "Error: ParseIntError { kind: InvalidDigit }\n");
    assert_eq!((out.code, out.signal), (Some(1), None));
    assert_eq!(fs::read_to_string(&file).unwrap(), "not a number");
}

#[test]
fn goodbye_runs_the_decorated_function_last() {
    let out = run("goodbye", &[]);
    assert_clean(
        &out,
        "Goodbye Donny, it was nice to meet you.\n\
         You are now leaving the Python sector.\n",
    );
}

#[test]
fn tour() {
    const FILE: &str = "examples/tour.rs";
    let source = include_str!("../examples/tour.rs");
    let panic_at = site(FILE, source, "panic!(\"the cache directory is gone\")");
    let registered = site(FILE, source, "atexit::register(clear_cache)");
    let out = run("tour", &[]);
    assert_eq!(out.stdout, TOUR_STDOUT, "stdout of {out:#?}");
    assert_eq!(
        out.panic_messages(),
        [(panic_at.clone(), "the cache directory is gone".to_owned())]
    );
    assert_eq!(
        out.stderr_without_panics(),
        [format!(
            "atexit: exit handler registered at {registered} panicked"
        )]
    );
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.signal, None);
}

const TOUR_STDOUT: &str = "\
atexit tour: register cleanup now; it runs when the process exits,
newest first, like Python's atexit.

1. register(f) queues f. run_now() runs the queue at once, newest
   first, and the program carries on (Python's _run_exitfuncs).
   registered: close the socket, then flush the buffer; run_now():
     [run_now] flushing the buffer
     [run_now] closing the socket
   pending() = 0: they ran and are gone

2. Handlers for the real exit, in the order they are registered:
   register(report_reason)
   register(close_database)
   register_with(goodbye, (\"Donny\", \"nice\")), Python's register(func, *args)
   register(..) returns a Handle; handle.unregister() = true
   register_with(remove_temp_file, (path,)) for 3 paths, then
   unregister(remove_temp_file) = 3: all of them are gone
   register(clear_cache), which will panic
   register(a closure that registers another handler)
   pending() = 5

3. atexit::exit(0) runs the handlers, newest first, then exits with
   status 0. Returning from main, std::process::exit and a panic in
   main run them too; atexit::exit also works inside a handler.
     [exit] this handler registers another one...
     [exit] ...which runs next, in the same run
     [exit] clear_cache panics: stderr reports it, the rest still run
     [exit] Goodbye Donny, it was nice to meet you.
     [exit] closing the database
     [exit] report_reason: is_exiting() = true, reason() = Some(Exit(Some(0)))
";

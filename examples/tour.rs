//! A tour of the crate: `cargo run --example tour`.
//!
//! It registers exit handlers with and without arguments, cancels some,
//! runs some early with `run_now`, and ends with `atexit::exit(0)`,
//! explaining each step as it goes. One handler panics on purpose: stderr
//! shows how that is reported, the other handlers still run, and the exit
//! status stays 0.

fn report_reason() {
    println!(
        "     [exit] report_reason: is_exiting() = {}, reason() = {:?}",
        atexit::is_exiting(),
        atexit::reason()
    );
}

fn close_database() {
    println!("     [exit] closing the database");
}

fn goodbye(name: &str, adjective: &str) {
    println!("     [exit] Goodbye {name}, it was {adjective} to meet you.");
}

fn remove_temp_file(path: &str) {
    println!("     [exit] removing {path}");
}

fn clear_cache() {
    println!("     [exit] clear_cache panics: stderr reports it, the rest still run");
    panic!("the cache directory is gone");
}

fn main() {
    println!("atexit tour: register cleanup now; it runs when the process exits,");
    println!("newest first, like Python's atexit.");
    println!();

    println!("1. register(f) queues f. run_now() runs the queue at once, newest");
    println!("   first, and the program carries on (Python's _run_exitfuncs).");
    atexit::register(|| println!("     [run_now] closing the socket"));
    atexit::register(|| println!("     [run_now] flushing the buffer"));
    println!("   registered: close the socket, then flush the buffer; run_now():");
    atexit::run_now().expect("these handlers do not panic");
    println!(
        "   pending() = {}: they ran and are gone",
        atexit::pending()
    );
    println!();

    println!("2. Handlers for the real exit, in the order they are registered:");
    atexit::register(report_reason);
    println!("   register(report_reason)");

    atexit::register(close_database);
    println!("   register(close_database)");

    atexit::register_with(goodbye, ("Donny", "nice"));
    println!("   register_with(goodbye, (\"Donny\", \"nice\")), Python's register(func, *args)");

    let handle = atexit::register(|| println!("     [exit] never printed"));
    let cancelled = handle.unregister();
    println!("   register(..) returns a Handle; handle.unregister() = {cancelled}");

    for path in ["a.tmp", "b.tmp", "c.tmp"] {
        atexit::register_with(remove_temp_file, (path,));
    }
    let removed = atexit::unregister(remove_temp_file);
    println!("   register_with(remove_temp_file, (path,)) for 3 paths, then");
    println!("   unregister(remove_temp_file) = {removed}: all of them are gone");

    atexit::register(clear_cache);
    println!("   register(clear_cache), which will panic");

    atexit::register(|| {
        println!("     [exit] this handler registers another one...");
        atexit::register(|| println!("     [exit] ...which runs next, in the same run"));
    });
    println!("   register(a closure that registers another handler)");
    println!("   pending() = {}", atexit::pending());
    println!();

    println!("3. atexit::exit(0) runs the handlers, newest first, then exits with");
    println!("   status 0. Returning from main, std::process::exit and a panic in");
    println!("   main run them too; atexit::exit also works inside a handler.");
    atexit::exit(0)
}

//! Twin of PyMOTW's `atexit_sys_exit.py`: `std::process::exit`, Python's
//! `sys.exit`, runs the exit handlers before the process ends.
//!
//! Prints `Registering`, `Registered`, `Exiting...`, then `all_done()`.

fn all_done() {
    println!("all_done()");
}

fn main() {
    println!("Registering");
    atexit::register(all_done);
    println!("Registered");

    println!("Exiting...");
    std::process::exit(0);
}

//! Twin of PyMOTW's `atexit_simple.py`: one function registered with
//! `atexit::register`, run when `main` returns.
//!
//! Prints `Registering`, `Registered`, then `all_done()` at exit.

fn all_done() {
    println!("all_done()");
}

fn main() {
    println!("Registering");
    atexit::register(all_done);
    println!("Registered");
}

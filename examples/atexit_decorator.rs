//! Twin of PyMOTW's `atexit_decorator.py`: `#[atexit::register]`, Python's
//! `@atexit.register`, registers the function before `main` starts.
//!
//! Prints `starting main program`, then `all_done()` when `main` returns.

#[atexit::register]
fn all_done() {
    println!("all_done()");
}

fn main() {
    println!("starting main program");
}

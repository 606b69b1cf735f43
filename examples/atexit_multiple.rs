//! Twin of PyMOTW's `atexit_multiple.py`: one function registered three
//! times with different arguments (`register_with`, Python's
//! `register(func, *args)`).
//!
//! Handlers run newest first: `my_cleanup(third)`, `my_cleanup(second)`,
//! `my_cleanup(first)`.

fn my_cleanup(name: &str) {
    println!("my_cleanup({name})");
}

fn main() {
    atexit::register_with(my_cleanup, ("first",));
    atexit::register_with(my_cleanup, ("second",));
    atexit::register_with(my_cleanup, ("third",));
}

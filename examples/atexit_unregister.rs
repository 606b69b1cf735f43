//! Twin of PyMOTW's `atexit_unregister.py`: `atexit::unregister(func)`
//! cancels every registration of a function, however many there were and
//! whatever arguments they carry.
//!
//! Prints nothing: the three handlers are gone before the process exits.

fn my_cleanup(name: &str) {
    println!("my_cleanup({name})");
}

fn main() {
    atexit::register_with(my_cleanup, ("first",));
    atexit::register_with(my_cleanup, ("second",));
    atexit::register_with(my_cleanup, ("third",));

    let removed = atexit::unregister(my_cleanup);
    assert_eq!(removed, 3);
}

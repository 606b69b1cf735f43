//! Twin of PyMOTW's `atexit_unregister_not_registered.py`: unregistering a
//! function that was never registered is not an error.
//!
//! Prints nothing; `unregister` reports that it removed nothing.

fn my_cleanup(name: &str) {
    println!("my_cleanup({name})");
}

fn main() {
    // The registration exists in the code but never happens, as in the
    // Python original.
    if false {
        atexit::register_with(my_cleanup, ("never registered",));
    }

    let removed = atexit::unregister(my_cleanup);
    assert_eq!(removed, 0);
}

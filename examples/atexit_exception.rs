//! Twin of PyMOTW's `atexit_exception.py`: handlers that panic, Python's
//! handlers that raise.
//!
//! Each panic is caught and reported on stderr (the usual panic message,
//! then a line naming where the handler was registered), and the next
//! handler still runs: `Registered second` first, then `Registered first`.
//! Python re-raises the last exception; here the exit status stays 0
//! (`atexit::set_failure_code` can change that).

fn exit_with_exception(message: &str) {
    panic!("{message}");
}

fn main() {
    atexit::register_with(exit_with_exception, ("Registered first",));
    atexit::register_with(exit_with_exception, ("Registered second",));
}

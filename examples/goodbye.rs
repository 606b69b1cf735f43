//! Twin of the `goodbye` examples in Python's `atexit` documentation: a
//! function registered with arguments (`register_with`, Python's
//! `register(func, *args)`), and one registered by `#[atexit::register]`,
//! Python's decorator.
//!
//! The attribute registers before `main` starts, so that handler is the
//! oldest and runs last:
//!
//! ```text
//! Goodbye Donny, it was nice to meet you.
//! You are now leaving the Python sector.
//! ```
//!
//! Python can also pass keyword arguments; Rust has none, so the arguments
//! go in a tuple, in order.

fn goodbye(name: &str, adjective: &str) {
    println!("Goodbye {name}, it was {adjective} to meet you.");
}

// Two functions cannot share a name in one module, so the decorated
// `goodbye` of the Python original lives in its own.
mod sector {
    #[atexit::register]
    fn goodbye() {
        println!("You are now leaving the Python sector.");
    }
}

fn main() {
    atexit::register_with(goodbye, ("Donny", "nice"));
}

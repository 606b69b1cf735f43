//! Twin of `atexit_decorator.py`: a function registered by the attribute
//! before `main` starts, run when `main` returns.

#[atexit::register]
fn all_done() {
    println!("all_done()");
}

fn main() {
    println!("starting main program");
}

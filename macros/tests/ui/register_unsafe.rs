#[atexit::register]
unsafe fn cleanup() {}

fn main() {}

#[atexit::register(name = "db")]
fn cleanup() {}

fn main() {}

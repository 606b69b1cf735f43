#[atexit::register]
fn cleanup() -> i32 {
    0
}

fn main() {}

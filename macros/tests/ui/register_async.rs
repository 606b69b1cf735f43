#[atexit::register]
async fn cleanup() {}

fn main() {}

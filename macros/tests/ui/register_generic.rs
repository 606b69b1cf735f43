#[atexit::register]
fn cleanup<T: Default>() {
    let _ = T::default();
}

fn main() {}

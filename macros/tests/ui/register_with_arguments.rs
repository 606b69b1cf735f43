#[atexit::register]
fn cleanup(name: &str) {
    println!("{name}");
}

fn main() {}

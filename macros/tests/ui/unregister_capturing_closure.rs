fn main() {
    let name = String::from("db");
    atexit::unregister(move || drop(name));
}

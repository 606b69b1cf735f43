// Function items and non-capturing closures, whatever their parameters, are
// what `unregister` takes.
fn flush() {}
fn greet(_name: &str, _times: u32) {}

#[atexit::register]
fn all_done() {}

fn main() {
    atexit::register(flush);
    atexit::register_with(greet, ("Donny", 2));
    assert_eq!(atexit::unregister(flush), 1);
    assert_eq!(atexit::unregister(greet), 1);
    assert_eq!(atexit::unregister(all_done), 1);
    assert_eq!(atexit::unregister(|| {}), 0);
    assert_eq!(atexit::pending(), 0);
}

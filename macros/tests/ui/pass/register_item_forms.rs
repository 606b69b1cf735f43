// What the attribute accepts besides a bare `fn`: attributes and doc
// comments, visibility, `const`, a raw identifier. Each is registered
// before `main`.
/// Documented.
#[inline(never)]
pub(crate) fn documented() {}

const fn constant() {}

fn r#match() {}

#[atexit::register]
/// Documented.
#[inline(never)]
pub(crate) fn documented_registered() {}

#[atexit::register]
const fn constant_registered() {}

#[atexit::register]
fn r#loop() {}

fn main() {
    documented();
    constant();
    r#match();
    assert_eq!(atexit::pending(), 3);
    assert_eq!(atexit::unregister(documented_registered), 1);
    assert_eq!(atexit::unregister(constant_registered), 1);
    assert_eq!(atexit::unregister(r#loop), 1);
}

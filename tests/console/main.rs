//! Windows: console control events end the process as the README says.
//! This binary re-executes itself with `ATEXIT_CONSOLE=<name>`; the child
//! plays the scenario and says `READY`; the parent, which shares its
//! console, sends the event with `GenerateConsoleCtrlEvent` and checks
//! the child's exact stdout and exit status. The parent swallows the
//! events it sends with a handler of its own (not inherited by children).
//!
//! Under Wine the console exists only under a pseudo-terminal:
//! `script -qec "wine console-*.exe" /dev/null` (see .ci/windows). Without
//! one the binary fails and says so.

#[cfg(windows)]
#[path = "../common/mod.rs"]
mod common;
#[cfg(windows)]
mod events;

#[cfg(windows)]
fn main() -> Result<(), String> {
    events::main()
}

#[cfg(not(windows))]
fn main() {
    println!("console events exist on Windows only: nothing to test here");
}

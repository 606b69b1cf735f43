//! Everything that needs `unsafe`, and the only module allowed it: the C
//! library's exit, fork and signal calls (`unix`), or the C runtime's exit
//! and the console control events (`windows`), chosen by platform; the
//! registry lock that can be held across `fork` (`lock`), and callbacks
//! stored in two words with small closures inline (`erased`). The rest of
//! the crate is `#![deny(unsafe_code)]`.

#[cfg(all(unix, feature = "signal"))]
mod arrival;
mod erased;
#[cfg(all(target_os = "linux", feature = "guardian"))]
pub(crate) mod guardian;
mod lock;
#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

#[cfg(all(unix, feature = "signal"))]
pub(crate) use arrival::{first_signal, wake_up_socket, watch_arrivals_of};
pub(crate) use erased::Callback;
pub(crate) use lock::{Guard, HeldAcrossFork, Lock};
#[cfg(unix)]
pub(crate) use unix::*;
#[cfg(windows)]
pub(crate) use windows::*;

#[cfg(not(any(unix, windows)))]
compile_error!(
    "the atexit crate supports Unix-like systems (Linux, the BSDs, macOS) and Windows only"
);

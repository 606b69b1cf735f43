//! The crate's error values: what was refused, and which handlers failed.

use std::borrow::Cow;
use std::fmt;
use std::panic::Location;

/// A request the crate refused, with the reason. Nothing registered before
/// the refused call is lost.
///
/// ```
/// # #[cfg(feature = "signal")] {
/// let err = atexit::handle_signals_for(&[libc::SIGKILL]).unwrap_err();
/// assert!(err.to_string().contains("SIGKILL"));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A signal that cannot or must not be handled: its number and why.
    ForbiddenSignal {
        /// The refused signal number.
        signal: i32,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The operating system refused to install signal handling.
    SignalSetup {
        /// The signal being installed.
        signal: i32,
        /// What the operating system said.
        cause: String,
    },
    /// A signal already handled one way, asked to be handled the other:
    /// by [`handle_signals`](crate::handle_signals) (the exit run) and by
    /// `Shutdown` (a stop request). Nothing was changed.
    SignalTaken {
        /// The signal.
        signal: i32,
        /// What handles it now.
        by: &'static str,
        /// What asked for it.
        wanted: &'static str,
    },
    /// The guardian (`Guardian`, Linux) could not be started, or is gone.
    Guardian {
        /// What went wrong.
        cause: String,
    },
    /// A `Guardian` action that is refused: nothing was
    /// declared.
    GuardianRefused {
        /// The declaring method, e.g. `remove_path`.
        action: &'static str,
        /// What it was given.
        given: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// An async hook registered outside a tokio runtime (feature `tokio`):
    /// it runs on the runtime it is registered from, and there was none.
    #[cfg(feature = "tokio")]
    NoRuntime {
        /// Where it was registered.
        site: &'static Location<'static>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ForbiddenSignal { signal, reason } => write!(
                f,
                "refused to handle signal {} ({}): {}; no signal handling was changed",
                signal,
                signal_name(*signal),
                reason
            ),
            Error::SignalSetup { signal, cause } => write!(
                f,
                "could not install a handler for signal {} ({}): {}",
                signal,
                signal_name(*signal),
                cause
            ),
            Error::SignalTaken { signal, by, wanted } => write!(
                f,
                "refused to handle signal {} ({}) with {}: {} already handles it, and a signal \
                 is handled one way; no signal handling was changed",
                signal,
                signal_name(*signal),
                wanted,
                by
            ),
            Error::Guardian { cause } => write!(f, "the exit guardian: {cause}"),
            Error::GuardianRefused {
                action,
                given,
                reason,
            } => write!(
                f,
                "refused to declare {action}({given}): {reason}; nothing was declared"
            ),
            #[cfg(feature = "tokio")]
            Error::NoRuntime { site } => write!(
                f,
                "refused to register the async exit hook at {site}: no tokio runtime is running \
                 here, and an async hook runs on the runtime it is registered from; register it \
                 from inside one (e.g. in `#[tokio::main]`); nothing was registered"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// The conventional name of a signal number, for messages.
#[cfg(windows)]
pub(crate) fn signal_name(signal: i32) -> &'static str {
    // The C runtime's numbers (signal.h); SIGBREAK is Ctrl-Break.
    match signal {
        2 => "SIGINT",
        4 => "SIGILL",
        6 | 22 => "SIGABRT",
        8 => "SIGFPE",
        11 => "SIGSEGV",
        15 => "SIGTERM",
        21 => "SIGBREAK",
        _ => "unnamed signal",
    }
}

/// The conventional name of a signal number, for messages.
#[cfg(not(windows))]
pub(crate) fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGTTIN => "SIGTTIN",
        libc::SIGTTOU => "SIGTTOU",
        libc::SIGWINCH => "SIGWINCH",
        _ => "unnamed signal",
    }
}

/// One handler that panicked during a run.
///
/// ```
/// let registry = atexit::Registry::new();
/// registry.register(|| panic!("disk full"));
/// let err = registry.run().unwrap_err();
/// let failure = &err.failures()[0];
/// assert_eq!(failure.message(), "disk full");
/// assert_eq!(failure.location().file(), file!());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Failure {
    message: String,
    site: &'static Location<'static>,
    name: Option<Cow<'static, str>>,
}

impl Failure {
    pub(crate) fn new(
        message: String,
        site: &'static Location<'static>,
        name: Option<Cow<'static, str>>,
    ) -> Self {
        Failure {
            message,
            site,
            name,
        }
    }

    /// The panic payload's text (`&str` or `String` payloads; other payloads
    /// read "non-string panic payload").
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where the failed handler was registered.
    pub fn location(&self) -> &'static Location<'static> {
        self.site
    }

    /// The name given with [`Hook::name`](crate::Hook::name), if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} panicked: {}",
            describe(self.site, self.name.as_deref()),
            self.message
        )
    }
}

/// How reports name a handler: its name if it has one, and always its site.
pub(crate) fn describe(site: &Location<'_>, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("exit handler `{name}` (registered at {site})"),
        None => format!("exit handler registered at {site}"),
    }
}

/// How reports name an async hook (feature `tokio`).
#[cfg(feature = "tokio")]
pub(crate) fn describe_async(site: &Location<'_>, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("async exit hook `{name}` (registered at {site})"),
        None => format!("async exit hook registered at {site}"),
    }
}

/// Returned by a run in which one or more handlers panicked. Every other
/// handler still ran.
///
/// ```
/// let registry = atexit::Registry::new();
/// registry.register(|| panic!("first"));
/// registry.register(|| panic!("second"));
/// let err = registry.run().unwrap_err();
/// let messages: Vec<_> = err.failures().iter().map(|f| f.message()).collect();
/// assert_eq!(messages, ["second", "first"]); // run order: newest first
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunError {
    failures: Vec<Failure>,
}

impl RunError {
    pub(crate) fn from_failures(failures: Vec<Failure>) -> Result<(), RunError> {
        if failures.is_empty() {
            Ok(())
        } else {
            Err(RunError { failures })
        }
    }

    /// The handlers that panicked, in the order they ran.
    pub fn failures(&self) -> &[Failure] {
        &self.failures
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.failures.as_slice() {
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} exit handlers panicked", many.len())?;
                for failure in many {
                    write!(f, "; {failure}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for RunError {}

//! [`Guardian`]: cleanup declared to a separate process, carried out even
//! when the program is killed with SIGKILL, crashes or aborts.

use std::fmt;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::error::Error;
use crate::process::{exit_hook, fork, observers};
use crate::sys::guardian::{self as link, Message, MAX_FRAME};

/// A small process that watches this one and, if it ends without finishing
/// its exit run — SIGKILL, the OOM killer, a crash, `abort`, `_exit`, a
/// fatal signal without [`handle_signals`](crate::handle_signals) — carries
/// out the actions declared to it, newest first, and exits. After a clean
/// ending it does nothing and is gone.
///
/// Linux, with the `guardian` feature.
///
/// ```no_run
/// use std::os::unix::process::CommandExt;
/// use std::process::Command;
///
/// let guardian = atexit::Guardian::start()?;
/// let dir = std::env::temp_dir().join("my-app-scratch");
/// std::fs::create_dir_all(&dir)?;
/// guardian.remove_path(&dir)?; // removed even after `kill -9`
/// let server = Command::new("sleep").arg("600").process_group(0).spawn()?;
/// guardian.kill_process_group(server.id())?; // and its whole group killed
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Clean endings
///
/// An ending is clean when the exit run finished: `main` returning,
/// `std::process::exit`, [`exit`](crate::exit), a handled signal whose
/// handlers all ran, a `panic = "abort"` panic after its handlers. Then
/// the guardian does nothing. Everything else — SIGKILL, a fault, `abort`,
/// `_exit`, a missed [`set_deadline`](crate::set_deadline) — leaves the
/// actions to the guardian.
///
/// # What it holds, and what it cannot do
///
/// The guardian is this program's own executable, started again and
/// caught before `main`: it runs none of the program's code or handlers.
/// It keeps only its end of a socket and stderr (the program's original
/// stderr, where it reports failed actions), works from `/`, and lives in
/// a session and process group of its own, so that killing the program's
/// group or closing its terminal does not end it. The kernel tells it of
/// the program's death; a child made by `fork` does not keep the program
/// "alive" for it, and a program started with `Command` does not inherit
/// the link. It cannot act after a power loss, a kernel panic, or a kill
/// of the guardian itself. Linux only: elsewhere `start` returns an error.
#[derive(Clone)]
pub struct Guardian {
    pid: u32,
}

/// One declared action; [`cancel`](GuardianAction::cancel) withdraws it.
///
/// Dropping it keeps the action declared.
pub struct GuardianAction {
    id: u64,
    what: &'static str,
}

static STARTED: Mutex<Option<Guardian>> = Mutex::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Guardian {
    /// Starts the guardian, or returns the one already started.
    ///
    /// # Errors
    ///
    /// [`Error::Guardian`] if the process cannot be started.
    pub fn start() -> Result<Guardian, Error> {
        let mut started = STARTED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(guardian) = started.as_ref() {
            return Ok(guardian.clone());
        }
        // Every normal ending must finish an exit run to be seen as clean,
        // and a forked child must drop its copy of the link.
        observers::observe(tell_clean_ending, link::forget_in_child);
        fork::ensure_hooks();
        exit_hook::ensure_armed();
        let pid = link::start().map_err(|err| Error::Guardian {
            cause: format!("could not start it: {err}"),
        })?;
        let guardian = Guardian { pid };
        *started = Some(guardian.clone());
        Ok(guardian)
    }

    /// The guardian's process id.
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// Declares that `path` (a file, or a directory and all it holds) is to
    /// be removed. A relative path is made absolute now, against the
    /// current directory. A path that is missing then is not an error.
    ///
    /// # Errors
    ///
    /// [`Error::GuardianRefused`] for `/`, a home directory, or a path that
    /// cannot be made absolute; [`Error::Guardian`] if the guardian is gone.
    pub fn remove_path(&self, path: impl AsRef<Path>) -> Result<GuardianAction, Error> {
        let given = path.as_ref();
        let refuse = |reason| Error::GuardianRefused {
            action: "remove_path",
            given: given.display().to_string(),
            reason,
        };
        let path = std::path::absolute(given).map_err(|_| refuse("it cannot be made absolute"))?;
        if path.parent().is_none() {
            return Err(refuse("it is the root directory"));
        }
        if is_home(&path) {
            return Err(refuse("it is a home directory"));
        }
        self.declare("remove_path", |id| Message::RemovePath { id, path })
    }

    /// Declares that process group `pgid` is to be killed with SIGKILL:
    /// every process in it. `pgid` is what [`Child::id`](std::process::Child::id)
    /// gives for a child started with
    /// [`process_group(0)`](std::os::unix::process::CommandExt::process_group).
    ///
    /// # Errors
    ///
    /// [`Error::GuardianRefused`] for 0, 1, this process's own group or the
    /// guardian's; [`Error::Guardian`] if the guardian is gone.
    pub fn kill_process_group(&self, pgid: u32) -> Result<GuardianAction, Error> {
        let refuse = |reason| Error::GuardianRefused {
            action: "kill_process_group",
            given: pgid.to_string(),
            reason,
        };
        match pgid {
            0 => return Err(refuse("0 means the caller's own group")),
            1 => return Err(refuse("1 is the init process")),
            _ if pgid == self.pid => return Err(refuse("it is the guardian's own group")),
            _ if pgid == std::process::id() => {
                return Err(refuse("it is this program's own process group leader"))
            }
            _ if pgid > i32::MAX as u32 => return Err(refuse("there is no such process group")),
            _ => {}
        }
        self.declare("kill_process_group", |id| Message::KillGroup { id, pgid })
    }

    /// Declares that the controlling terminal is to get back its attributes
    /// as they are now (echo, line editing: what raw mode changes).
    ///
    /// # Errors
    ///
    /// [`Error::GuardianRefused`] if the program has no controlling
    /// terminal; [`Error::Guardian`] if the guardian is gone.
    pub fn restore_terminal(&self) -> Result<GuardianAction, Error> {
        let (terminal, tty, termios) =
            link::terminal_now().map_err(|_| Error::GuardianRefused {
                action: "restore_terminal",
                given: String::new(),
                reason: "this process has no controlling terminal",
            })?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let message = Message::RestoreTerminal { id, tty, termios };
        // The open terminal goes with it: its path may not resolve for the
        // guardian (a container's own /dev/pts), the file does.
        link::send_with_fd(&message, terminal.as_raw_fd()).map_err(gone)?;
        Ok(GuardianAction {
            id,
            what: "restore_terminal",
        })
    }

    /// Declares that `command` is to be run (and waited for), with its
    /// arguments, environment changes and directory as they are now. Its
    /// stdin and stdout are `/dev/null`; its stderr is the guardian's. A
    /// command that cannot be started then is reported on that stderr.
    ///
    /// # Errors
    ///
    /// [`Error::GuardianRefused`] if the command is too large to send
    /// (about 4 KiB in all); [`Error::Guardian`] if the guardian is gone.
    pub fn run_command(&self, command: &Command) -> Result<GuardianAction, Error> {
        let message = |id| Message::RunCommand {
            id,
            program: command.get_program().to_owned(),
            args: command.get_args().map(ToOwned::to_owned).collect(),
            env: command
                .get_envs()
                .map(|(key, value)| (key.to_owned(), value.map(ToOwned::to_owned)))
                .collect(),
            dir: command.get_current_dir().map(Path::to_path_buf),
        };
        self.declare("run_command", message)
    }

    fn declare(
        &self,
        what: &'static str,
        message: impl FnOnce(u64) -> Message,
    ) -> Result<GuardianAction, Error> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let message = message(id);
        if message.encode().len() > MAX_FRAME {
            return Err(Error::GuardianRefused {
                action: what,
                given: format!("{message:?}").chars().take(60).collect(),
                reason: "it does not fit in one message to the guardian",
            });
        }
        link::send(&message).map_err(gone)?;
        Ok(GuardianAction { id, what })
    }
}

impl GuardianAction {
    /// Withdraws the action: the program did it itself, or it is no longer
    /// wanted. If the guardian is gone there is nothing to withdraw.
    pub fn cancel(self) {
        let _ = link::send(&Message::Cancel { id: self.id });
    }
}

fn gone(err: std::io::Error) -> Error {
    Error::Guardian {
        cause: format!("it is not running any more ({err})"),
    }
}

/// At the end of the exit run: nothing is left for the guardian to do.
fn tell_clean_ending() {
    let _ = link::send(&Message::Clean);
}

/// `$HOME`, and `/root` or a directory right inside `/home`.
fn is_home(path: &Path) -> bool {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    home.as_deref() == Some(path)
        || path == Path::new("/root")
        || path.parent() == Some(Path::new("/home"))
}

impl fmt::Debug for Guardian {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guardian").field("pid", &self.pid).finish()
    }
}

impl fmt::Debug for GuardianAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardianAction")
            .field("id", &self.id)
            .field("action", &self.what)
            .finish()
    }
}

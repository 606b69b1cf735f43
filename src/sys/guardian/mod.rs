//! The guardian process: started from the program's own executable and
//! caught before `main` (an `.init_array` entry that runs ahead of other
//! constructors), it leaves the program's session, process group, working
//! directory and descriptors, and then only waits for the program to end
//! (`watch`). Linux only.
//!
//! The program and its guardian share a `SOCK_SEQPACKET` socket pair: one
//! message per packet, and when the program dies, however it dies, the
//! kernel closes its end and the guardian reads end-of-file.

mod protocol;
mod watch;

use std::ffi::CStr;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};

pub(crate) use protocol::{Message, MAX_FRAME};

/// Names the guardian's end of the socket, in the guardian's environment.
const MARKER: &CStr = c"ATEXIT_GUARDIAN_FD";

/// The program's end of the socket; -1 when there is no guardian.
static SOCKET: AtomicI32 = AtomicI32::new(-1);

/// Starts the guardian; returns its process id. Call once.
pub(crate) fn start() -> io::Result<u32> {
    let (ours, theirs) = socket_pair()?;
    let theirs_fd = theirs.as_raw_fd();
    let mut command = Command::new("/proc/self/exe");
    command
        .arg0("atexit-guardian")
        .env(MARKER.to_str().unwrap_or_default(), theirs_fd.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // SAFETY: the closure only calls fcntl, which is async-signal-safe, on
    // a descriptor that stays open until `spawn` returns.
    unsafe {
        command.pre_exec(move || {
            // Kept across exec: the one descriptor the guardian inherits on
            // purpose (besides stderr).
            if libc::fcntl(theirs_fd, libc::F_SETFD, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // The child forks the guardian and exits at once: reaping it here
    // leaves no zombie, and the guardian is nobody's child to wait for.
    let status = command.spawn()?.wait()?;
    drop(theirs);
    let mut pid = [0u8; 4];
    let mut socket = std::fs::File::from(ours);
    socket.read_exact(&mut pid).map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("the guardian did not start (its parent ended with {status}): {err}"),
        )
    })?;
    SOCKET.store(socket_into_raw(socket), Ordering::Release);
    Ok(u32::from_le_bytes(pid))
}

fn socket_into_raw(socket: std::fs::File) -> RawFd {
    use std::os::fd::IntoRawFd;
    socket.into_raw_fd()
}

fn socket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends `message` to the guardian in one packet.
pub(crate) fn send(message: &Message) -> io::Result<()> {
    send_packet(message, None)
}

/// Sends `message` with a copy of descriptor `fd` (SCM_RIGHTS): the
/// guardian gets the open file itself, not a path that may not resolve.
pub(crate) fn send_with_fd(message: &Message, fd: RawFd) -> io::Result<()> {
    send_packet(message, Some(fd))
}

const FD_SIZE: u32 = std::mem::size_of::<RawFd>() as u32;

fn send_packet(message: &Message, fd: Option<RawFd>) -> io::Result<()> {
    let socket = SOCKET.load(Ordering::Acquire);
    if socket < 0 {
        return Err(io::Error::new(io::ErrorKind::NotConnected, "no guardian"));
    }
    let frame = message.encode();
    let mut data = libc::iovec {
        iov_base: frame.as_ptr() as *mut libc::c_void,
        iov_len: frame.len(),
    };
    let mut control = [0u64; 4];
    // SAFETY: msghdr is a plain C struct; zeroed is its empty value.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    header.msg_iov = &mut data;
    header.msg_iovlen = 1;
    if let Some(fd) = fd {
        header.msg_control = control.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE only computes a size.
        header.msg_controllen = unsafe { libc::CMSG_SPACE(FD_SIZE) } as _;
        // SAFETY: `control` is 8-aligned and large enough for one cmsghdr
        // carrying one descriptor (CMSG_SPACE(4) is 24 bytes on Linux).
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&header);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(FD_SIZE) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        }
    }
    // SAFETY: `header` points to `data`, `frame` and `control`, all alive
    // for the call; MSG_NOSIGNAL turns a gone guardian into EPIPE instead of
    // a SIGPIPE for the program.
    let sent = unsafe { libc::sendmsg(socket, &header, libc::MSG_NOSIGNAL) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Receives one packet into `buffer`: its length (0 when the program is
/// gone) and the descriptor sent with it, if any.
fn receive(socket: RawFd, buffer: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    let mut data = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    let mut control = [0u64; 4];
    // SAFETY: msghdr is a plain C struct; zeroed is its empty value.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    header.msg_iov = &mut data;
    header.msg_iovlen = 1;
    header.msg_control = control.as_mut_ptr().cast();
    header.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `header` points to `buffer` and `control`, alive for the
    // call; MSG_CMSG_CLOEXEC keeps a received descriptor from the commands
    // the guardian runs.
    let received = unsafe { libc::recvmsg(socket, &mut header, libc::MSG_CMSG_CLOEXEC) };
    if received < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut fd = None;
    // SAFETY: the kernel filled `control` up to msg_controllen and the
    // macros walk only that; an SCM_RIGHTS message carries descriptors now
    // owned by this process.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&header);
        if !cmsg.is_null()
            && (*cmsg).cmsg_level == libc::SOL_SOCKET
            && (*cmsg).cmsg_type == libc::SCM_RIGHTS
        {
            let raw = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
            fd = Some(OwnedFd::from_raw_fd(raw));
        }
    }
    Ok((received as usize, fd))
}

/// In a child made by `fork`: its copy of the program's end must not keep
/// the program "alive" for the guardian.
pub(crate) fn forget_in_child() {
    let fd = SOCKET.swap(-1, Ordering::AcqRel);
    if fd >= 0 {
        // SAFETY: the descriptor is the crate's own and nothing uses it now.
        unsafe {
            libc::close(fd);
        }
    }
}

/// Sends SIGKILL to process group `pgid`.
pub(crate) fn kill_group(pgid: u32) -> io::Result<()> {
    let group = i32::try_from(pgid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill(2) has no memory preconditions.
    if unsafe { libc::kill(-group, libc::SIGKILL) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The controlling terminal, open, with its path and its attributes now
/// (a `termios`, as bytes).
pub(crate) fn terminal_now() -> io::Result<(OwnedFd, PathBuf, Vec<u8>)> {
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags_noctty()
        .open("/dev/tty")?;
    let fd = terminal.as_raw_fd();
    let mut name = [0 as libc::c_char; 256];
    // SAFETY: `name` is valid for its length; ttyname_r NUL-terminates it.
    let rc = unsafe { libc::ttyname_r(fd, name.as_mut_ptr(), name.len()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    // SAFETY: ttyname_r wrote a NUL-terminated string into `name`.
    let path = unsafe { CStr::from_ptr(name.as_ptr()) };
    // SAFETY: tcgetattr fills the zeroed termios, a plain C struct.
    let mut attributes: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(fd, &mut attributes) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a termios is plain data; its bytes are copied as they are.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&attributes as *const libc::termios).cast::<u8>(),
            std::mem::size_of::<libc::termios>(),
        )
    };
    use std::os::unix::ffi::OsStrExt;
    Ok((
        OwnedFd::from(terminal),
        PathBuf::from(std::ffi::OsStr::from_bytes(path.to_bytes())),
        bytes.to_vec(),
    ))
}

/// Gives terminal `fd` the attributes `bytes` (a `termios` from
/// [`terminal_now`]).
fn set_terminal(fd: RawFd, bytes: &[u8]) -> io::Result<()> {
    if bytes.len() != std::mem::size_of::<libc::termios>() {
        return Err(io::Error::from(io::ErrorKind::InvalidData));
    }
    // SAFETY: the length was checked; read_unaligned copies the bytes into a
    // termios, a plain C struct for which any bytes are a value.
    let attributes: libc::termios = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
    // SAFETY: `attributes` is a valid termios for the call's duration.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &attributes) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Opening a terminal must not make it the opener's controlling one.
trait NoControllingTerminal {
    fn custom_flags_noctty(&mut self) -> &mut Self;
}

impl NoControllingTerminal for std::fs::OpenOptions {
    fn custom_flags_noctty(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
    }
}

/// Runs before `main` (and before other constructors) in every program
/// that links the crate: a `getenv`, and nothing more unless this process
/// is a guardian being started.
#[used]
#[link_section = ".init_array.00101"]
static CATCH_GUARDIAN_BEFORE_MAIN: extern "C" fn() = catch_guardian_before_main;

extern "C" fn catch_guardian_before_main() {
    // SAFETY: getenv with a NUL-terminated name; before `main` no other
    // thread can change the environment.
    let value = unsafe { libc::getenv(MARKER.as_ptr()) };
    if value.is_null() {
        return;
    }
    // SAFETY: getenv returned a NUL-terminated string.
    let fd: Option<RawFd> = unsafe { CStr::from_ptr(value) }
        .to_str()
        .ok()
        .and_then(|text| text.parse().ok());
    // SAFETY: the environment is not shared with any other thread yet;
    // commands the guardian runs must not become guardians.
    unsafe {
        libc::unsetenv(MARKER.as_ptr());
    }
    let Some(fd) = fd else {
        // SAFETY: ends this process, which is not a program to run.
        unsafe { libc::_exit(70) }
    };
    become_guardian(fd);
}

fn become_guardian(socket: RawFd) -> ! {
    // SAFETY: this process has one thread (no constructor of ours starts
    // any), so fork, setsid, chdir, signal and close need no care; the
    // parent of the fork only exits.
    unsafe {
        match libc::fork() {
            -1 => libc::_exit(71),
            0 => {}
            _ => libc::_exit(0),
        }
        // Out of the program's session and group: a terminal hangup or a
        // kill of the program's group does not reach the guardian.
        libc::setsid();
        libc::chdir(c"/".as_ptr());
        for signal in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGPIPE,
        ] {
            libc::signal(signal, libc::SIG_IGN);
        }
        close_all_but(socket);
    }
    let pid = std::process::id().to_le_bytes();
    // SAFETY: `pid` is valid for 4 bytes; the socket is ours.
    unsafe {
        libc::send(socket, pid.as_ptr().cast(), pid.len(), libc::MSG_NOSIGNAL);
    }
    // SAFETY: the descriptor was inherited on purpose and is owned here.
    watch::watch(unsafe { OwnedFd::from_raw_fd(socket) });
    // SAFETY: ends the guardian without running anything of the program's.
    unsafe { libc::_exit(0) }
}

/// Closes every descriptor above stderr but `keep`: the guardian must not
/// hold the program's files, sockets or pipes open.
///
/// # Safety
///
/// Only for a process with one thread, which owns every descriptor.
unsafe fn close_all_but(keep: RawFd) {
    let keep = keep as libc::c_uint;
    let ranges = [(3, keep.saturating_sub(1)), (keep + 1, libc::c_uint::MAX)];
    for (first, last) in ranges {
        if first > last {
            continue;
        }
        // SAFETY: close_range only closes descriptors, as the caller allows.
        let rc = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
        if rc != 0 {
            // Kernels before 5.9: one at a time, up to the descriptor limit.
            let limit = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) }.clamp(256, 65_536);
            for fd in first..(last.min(limit as libc::c_uint)).saturating_add(1) {
                // SAFETY: as above.
                unsafe {
                    libc::close(fd as RawFd);
                }
            }
        }
    }
}

//! What a program tells its guardian, one frame per message over the pipe:
//! a `u32` length, a tag byte, then the fields (numbers little-endian, byte
//! strings as a `u32` length and the bytes). A frame is written with one
//! `write` of at most `PIPE_BUF` bytes, so frames from several threads never
//! interleave.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// The largest frame: what the kernel writes to a pipe in one piece.
pub(crate) const MAX_FRAME: usize = libc::PIPE_BUF;

/// One message from the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// Remove this file or directory tree.
    RemovePath { id: u64, path: PathBuf },
    /// Send SIGKILL to this process group.
    KillGroup { id: u64, pgid: u32 },
    /// Give this terminal these attributes (a `termios`, as bytes).
    RestoreTerminal {
        id: u64,
        tty: PathBuf,
        termios: Vec<u8>,
    },
    /// Run this command and wait for it.
    RunCommand {
        id: u64,
        program: OsString,
        args: Vec<OsString>,
        /// Variables to set (`Some`) or remove (`None`).
        env: Vec<(OsString, Option<OsString>)>,
        dir: Option<PathBuf>,
    },
    /// The program withdrew action `id`.
    Cancel { id: u64 },
    /// The program's exit run finished: nothing is to be done.
    Clean,
}

const REMOVE_PATH: u8 = 1;
const KILL_GROUP: u8 = 2;
const RESTORE_TERMINAL: u8 = 3;
const RUN_COMMAND: u8 = 4;
const CANCEL: u8 = 5;
const CLEAN: u8 = 6;

impl Message {
    /// The frame for this message.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut body = Body(Vec::new());
        match self {
            Message::RemovePath { id, path } => {
                body.tag(REMOVE_PATH, *id);
                body.bytes(path.as_os_str().as_bytes());
            }
            Message::KillGroup { id, pgid } => {
                body.tag(KILL_GROUP, *id);
                body.0.extend_from_slice(&pgid.to_le_bytes());
            }
            Message::RestoreTerminal { id, tty, termios } => {
                body.tag(RESTORE_TERMINAL, *id);
                body.bytes(tty.as_os_str().as_bytes());
                body.bytes(termios);
            }
            Message::RunCommand {
                id,
                program,
                args,
                env,
                dir,
            } => {
                body.tag(RUN_COMMAND, *id);
                body.bytes(program.as_bytes());
                body.count(args.len());
                for arg in args {
                    body.bytes(arg.as_bytes());
                }
                body.count(env.len());
                for (key, value) in env {
                    body.bytes(key.as_bytes());
                    body.optional(value.as_ref().map(|value| value.as_bytes()));
                }
                body.optional(dir.as_ref().map(|dir| dir.as_os_str().as_bytes()));
            }
            Message::Cancel { id } => body.tag(CANCEL, *id),
            Message::Clean => body.tag(CLEAN, 0),
        }
        let mut frame = Vec::with_capacity(4 + body.0.len());
        frame.extend_from_slice(&(body.0.len() as u32).to_le_bytes());
        frame.extend_from_slice(&body.0);
        frame
    }
}

struct Body(Vec<u8>);

impl Body {
    fn tag(&mut self, tag: u8, id: u64) {
        self.0.push(tag);
        self.0.extend_from_slice(&id.to_le_bytes());
    }

    fn count(&mut self, count: usize) {
        self.0.extend_from_slice(&(count as u32).to_le_bytes());
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.count(bytes.len());
        self.0.extend_from_slice(bytes);
    }

    fn optional(&mut self, bytes: Option<&[u8]>) {
        match bytes {
            None => self.0.push(0),
            Some(bytes) => {
                self.0.push(1);
                self.bytes(bytes);
            }
        }
    }
}

/// Frames out of a byte stream.
#[derive(Default)]
pub(crate) struct Decoder {
    pending: Vec<u8>,
}

impl Decoder {
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// The next whole message, if one has arrived; `Err` for a frame that
    /// makes no sense (it is dropped).
    pub(crate) fn next_message(&mut self) -> Option<Result<Message, String>> {
        let length = u32::from_le_bytes(self.pending.get(..4)?.try_into().ok()?) as usize;
        if self.pending.len() < 4 + length {
            return None;
        }
        let frame: Vec<u8> = self.pending.drain(..4 + length).skip(4).collect();
        Some(parse(&frame).ok_or_else(|| format!("a malformed message of {length} bytes")))
    }
}

fn parse(frame: &[u8]) -> Option<Message> {
    let mut reader = Reader(frame);
    let tag = reader.take(1)?[0];
    let id = u64::from_le_bytes(reader.take(8)?.try_into().ok()?);
    let message = match tag {
        REMOVE_PATH => Message::RemovePath {
            id,
            path: PathBuf::from(reader.os_string()?),
        },
        KILL_GROUP => Message::KillGroup {
            id,
            pgid: reader.number()?,
        },
        RESTORE_TERMINAL => Message::RestoreTerminal {
            id,
            tty: PathBuf::from(reader.os_string()?),
            termios: reader.bytes()?.to_vec(),
        },
        RUN_COMMAND => {
            let program = reader.os_string()?;
            let args = (0..reader.number()?)
                .map(|_| reader.os_string())
                .collect::<Option<Vec<_>>>()?;
            let env = (0..reader.number()?)
                .map(|_| Some((reader.os_string()?, reader.optional()?)))
                .collect::<Option<Vec<_>>>()?;
            let dir = reader.optional()?.map(PathBuf::from);
            Message::RunCommand {
                id,
                program,
                args,
                env,
                dir,
            }
        }
        CANCEL => Message::Cancel { id },
        CLEAN => Message::Clean,
        _ => return None,
    };
    reader.0.is_empty().then_some(message)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Option<&'a [u8]> {
        if self.0.len() < count {
            return None;
        }
        let (taken, rest) = self.0.split_at(count);
        self.0 = rest;
        Some(taken)
    }

    fn number(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let length = self.number()? as usize;
        self.take(length)
    }

    fn os_string(&mut self) -> Option<OsString> {
        Some(OsString::from_vec(self.bytes()?.to_vec()))
    }

    fn optional(&mut self) -> Option<Option<OsString>> {
        match self.take(1)?[0] {
            0 => Some(None),
            1 => Some(Some(self.os_string()?)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_comes_back_as_it_went() {
        let messages = [
            Message::RemovePath {
                id: 1,
                path: PathBuf::from("/tmp/a dir/with\nnewline"),
            },
            Message::KillGroup { id: 2, pgid: 4242 },
            Message::RestoreTerminal {
                id: 3,
                tty: PathBuf::from("/dev/pts/3"),
                termios: vec![0, 1, 2, 255],
            },
            Message::RunCommand {
                id: 4,
                program: "rm".into(),
                args: vec!["-f".into(), "/tmp/lock".into()],
                env: vec![("A".into(), Some("1".into())), ("B".into(), None)],
                dir: Some(PathBuf::from("/")),
            },
            Message::Cancel { id: 1 },
            Message::Clean,
        ];
        let mut decoder = Decoder::default();
        for message in &messages {
            // Byte by byte: frames may arrive in pieces.
            for byte in message.encode() {
                decoder.push(&[byte]);
            }
        }
        for message in &messages {
            assert_eq!(decoder.next_message(), Some(Ok(message.clone())));
        }
        assert_eq!(decoder.next_message(), None);
    }

    #[test]
    fn a_malformed_frame_is_an_error_and_is_skipped() {
        let mut decoder = Decoder::default();
        decoder.push(&[2, 0, 0, 0, 99, 0]);
        decoder.push(&Message::Clean.encode());
        assert!(matches!(decoder.next_message(), Some(Err(_))));
        assert_eq!(decoder.next_message(), Some(Ok(Message::Clean)));
    }
}

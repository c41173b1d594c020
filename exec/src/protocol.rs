//! Messages between the host and a sandbox's init, over a `SOCK_SEQPACKET` socket pair.
//!
//! One message is one JSON document in one packet; the standard streams of a command travel
//! beside its `Exec` request as file descriptors (`SCM_RIGHTS`), so output never passes through
//! the init and the host reads it directly.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{OwnedFd, RawFd};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use serde::{Deserialize, Serialize};

/// Largest message either side sends; a longer one is refused before it is sent.
pub(crate) const MAX_MESSAGE: usize = 1 << 20;
/// Most descriptors one message carries: a command's three streams, or one `cgroup.procs`/`tasks`
/// file per cgroup v1 hierarchy.
pub(crate) const MAX_FDS: usize = 16;

/// What the host asks of the init.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Request {
    /// The first request, and only the first: move into the sandbox's cgroup through the files
    /// that arrive with it (none when the sandbox runs without one), then get ready.
    JoinCgroup,
    /// Start a command; stdin, stdout and stderr arrive as three file descriptors.
    Exec {
        /// The host's name for this command, echoed in replies.
        id: u64,
        /// Program and arguments (bytes, no NUL).
        argv: Vec<Vec<u8>>,
        /// The whole environment, as `NAME=value` entries.
        env: Vec<Vec<u8>>,
        /// Working directory inside the sandbox.
        cwd: Vec<u8>,
    },
    /// End the sandbox once no command runs: right after the `Exited` report of the last one,
    /// or at once when none runs. Ending PID 1 ends every process of the sandbox.
    ExitWhenIdle,
    /// Send `signal` to every process of the command's session.
    Kill {
        /// The command.
        id: u64,
        /// Signal number.
        signal: i32,
    },
}

/// What the init tells the host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// The sandbox is set up and waits for requests.
    Ready {
        /// Landlock ABI enforced, 0 when none.
        landlock_abi: u32,
    },
    /// Setting the sandbox up failed at `stage`.
    SetupFailed {
        /// What was being done.
        stage: String,
        /// The error.
        error: String,
    },
    /// The command runs, as `pid` inside the sandbox.
    Started {
        /// The command.
        id: u64,
        /// Its PID inside the sandbox's PID namespace.
        pid: i32,
    },
    /// The command could not be started.
    SpawnFailed {
        /// The command.
        id: u64,
        /// What failed, e.g. `execve: No such file or directory`.
        error: String,
    },
    /// The command's main process ended.
    Exited {
        /// The command.
        id: u64,
        /// Exit code, when it exited.
        code: Option<i32>,
        /// Signal number, when a signal ended it.
        signal: Option<i32>,
        /// User plus system CPU time of the process and its waited-for children, in µs.
        cpu_us: u64,
        /// Largest resident set size of the process, in KiB.
        max_rss_kib: u64,
    },
}

/// Sends `message` with `fds` attached.
pub(crate) fn send<T: Serialize>(socket: RawFd, message: &T, fds: &[RawFd]) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    if bytes.len() > MAX_MESSAGE {
        return Err(std::io::Error::other("message too large"));
    }
    send_bytes(socket, &bytes, fds)
}

/// Sends one packet of `bytes` with `fds` attached (at most [`MAX_FDS`]).
pub(crate) fn send_bytes(socket: RawFd, bytes: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(std::io::Error::other("too many descriptors for one message"));
    }
    let iov = [IoSlice::new(bytes)];
    let cmsgs = if fds.is_empty() { Vec::new() } else { vec![ControlMessage::ScmRights(fds)] };
    loop {
        match sendmsg::<()>(socket, &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// Receives one message and the descriptors sent with it; `Ok(None)` when the peer is gone.
pub(crate) fn receive<T: for<'de> Deserialize<'de>>(
    socket: RawFd,
    buffer: &mut Vec<u8>,
) -> std::io::Result<Option<(T, Vec<OwnedFd>)>> {
    let Some((len, fds)) = receive_bytes(socket, buffer)? else { return Ok(None) };
    let message = serde_json::from_slice(&buffer[..len]).map_err(std::io::Error::other)?;
    Ok(Some((message, fds)))
}

/// Receives one packet into `buffer` (resized to fit it) and the descriptors sent with it:
/// the packet's length, or `Ok(None)` when the peer is gone.
pub(crate) fn receive_bytes(socket: RawFd, buffer: &mut Vec<u8>) -> std::io::Result<Option<(usize, Vec<OwnedFd>)>> {
    // Learn the packet's size first, so a small message costs a small buffer (zeroing a
    // megabyte per message showed up in start-up profiles).
    let size = loop {
        match nix::sys::socket::recv(socket, &mut [], MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC) {
            Ok(size) => break size,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
    };
    buffer.clear();
    buffer.resize(size.clamp(1, MAX_MESSAGE), 0);
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let (len, fds, truncated) = loop {
        let mut iov = [IoSliceMut::new(buffer)];
        match recvmsg::<()>(socket, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(msg) => {
                let mut fds = Vec::new();
                for cmsg in msg.cmsgs().map_err(std::io::Error::from)? {
                    if let ControlMessageOwned::ScmRights(received) = cmsg {
                        fds.extend(received.into_iter().map(owned_fd));
                    }
                }
                let truncated = msg.flags.intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC);
                break (msg.bytes, fds, truncated);
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
    };
    if len == 0 && fds.is_empty() {
        return Ok(None);
    }
    if truncated {
        return Err(std::io::Error::other("message truncated"));
    }
    Ok(Some((len, fds)))
}

fn owned_fd(fd: RawFd) -> OwnedFd {
    crate::sys::adopt_fd(fd)
}

//! SIGINT / SIGTERM / SIGHUP turned into something a poll loop can wait on.
//!
//! [`Termination::install`] sets handlers (without SA_RESTART, so a blocked
//! system call returns EINTR) that record the signal and write one byte to a
//! self-pipe. The loops poll the pipe's read end beside their other fds and
//! return when [`Termination::received`] says so; destructors then run, which
//! is how the control socket and the path-manager changes are undone on a
//! signal. Handlers are reset to the default by `execve`, so children of
//! `-e`/`-c` are not affected.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use super::cvt;

static SIGNALLED: AtomicI32 = AtomicI32::new(0);
static PIPE_WR: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    SIGNALLED.store(sig, Ordering::SeqCst);
    let fd = PIPE_WR.load(Ordering::SeqCst);
    if fd >= 0 {
        let b = [1u8];
        // SAFETY: write(2) is async-signal-safe; the pipe is non-blocking.
        unsafe { libc::write(fd, b.as_ptr().cast(), 1) };
    }
}

/// The process-wide termination signal state.
pub struct Termination {
    read: OwnedFd,
    _write: OwnedFd,
}

impl Termination {
    /// Install the handlers. Call once per process.
    pub fn install() -> io::Result<Termination> {
        let mut fds = [0; 2];
        // SAFETY: fds is a valid array of two ints.
        cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
        // SAFETY: pipe2 returned two fresh descriptors that we now own.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        PIPE_WR.store(write.as_raw_fd(), Ordering::SeqCst);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: a zeroed sigaction with a handler and an empty mask is valid.
            let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
            sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            sa.sa_flags = 0;
            // SAFETY: sa_mask is a valid sigset_t inside sa.
            unsafe { libc::sigemptyset(&mut sa.sa_mask) };
            // SAFETY: installing a handler that only does async-signal-safe work.
            cvt(unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) })?;
        }
        Ok(Termination { read, _write: write })
    }

    /// The fd to poll for readability.
    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// The signal received, if any.
    pub fn received(&self) -> Option<i32> {
        let s = SIGNALLED.load(Ordering::SeqCst);
        (s != 0).then_some(s)
    }

    /// Whether a termination signal arrived (for code without `self`).
    pub fn pending() -> bool {
        SIGNALLED.load(Ordering::SeqCst) != 0
    }
}

/// The termination signal received so far in this process, if any.
pub fn received_signal() -> Option<i32> {
    let s = SIGNALLED.load(Ordering::SeqCst);
    (s != 0).then_some(s)
}

/// The conventional exit status for death by signal `sig` (128 + sig).
pub fn exit_status(sig: i32) -> u8 {
    (128 + sig).clamp(0, 255) as u8
}

/// The signal's name for messages.
pub fn name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

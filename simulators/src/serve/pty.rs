//! An RS-485 line as a pseudo-terminal: clients open the symlink named in the site config
//! as if it were /dev/ttyS1, and hazsim answers on the master side.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::pty::openpty;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tracing::warn;

use crate::error::SimError;
use crate::serve::rtu_stream;
use crate::sim::Sim;

/// A pseudo-terminal whose slave is reachable through a symlink; the symlink goes when
/// this is dropped.
#[derive(Debug)]
pub struct Pty {
    master: Option<AsyncFd<OwnedFd>>,
    /// Kept open so the master never reads EIO between two clients.
    _slave: OwnedFd,
    pub link: PathBuf,
    pub slave_path: PathBuf,
}

impl Pty {
    /// Opens a raw pseudo-terminal and links `link` to its slave.
    pub fn open(bus: &str, link: &Path) -> Result<Pty, SimError> {
        let fail = |message: String| SimError::Pty {
            bus: bus.to_string(),
            path: link.to_path_buf(),
            message,
        };
        let pair = openpty(None, None).map_err(|e| fail(format!("openpty: {e}")))?;
        let mut t = tcgetattr(&pair.slave).map_err(|e| fail(format!("tcgetattr: {e}")))?;
        cfmakeraw(&mut t);
        tcsetattr(&pair.slave, SetArg::TCSANOW, &t).map_err(|e| fail(format!("tcsetattr: {e}")))?;
        let flags =
            fcntl(&pair.master, FcntlArg::F_GETFL).map_err(|e| fail(format!("fcntl: {e}")))?;
        fcntl(
            &pair.master,
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        )
        .map_err(|e| fail(format!("fcntl: {e}")))?;
        let slave_path =
            nix::unistd::ttyname(pair.slave.as_fd()).map_err(|e| fail(format!("ttyname: {e}")))?;
        if let Some(dir) = link.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
        }
        match std::fs::symlink_metadata(link) {
            Ok(m) if m.file_type().is_symlink() => std::fs::remove_file(link)
                .map_err(|e| fail(format!("cannot replace the old symlink: {e}")))?,
            Ok(_) => {
                return Err(fail(
                    "a file that is not a symlink is in the way; hazsim will not replace it".into(),
                ))
            }
            Err(_) => {}
        }
        std::os::unix::fs::symlink(&slave_path, link)
            .map_err(|e| fail(format!("cannot create the symlink: {e}")))?;
        // SAFETY: the OwnedFd is open, owned by the AsyncFd from here on and never replaced,
        // so it stays the same open descriptor for the AsyncFd's whole life.
        let master = unsafe { AsyncFd::register(pair.master) }
            .map_err(|e| fail(format!("cannot watch the master: {e}")))?;
        Ok(Pty {
            master: Some(master),
            _slave: pair.slave,
            link: link.to_path_buf(),
            slave_path,
        })
    }

    /// Serves the bus on this terminal until the task is dropped. `self` stays with the
    /// caller, which owns the symlink.
    pub fn spawn(&mut self, sim: Arc<Sim>, bus: usize) -> tokio::task::JoinHandle<()> {
        let master = Master(self.master.take().expect("a pty is served once"));
        tokio::spawn(async move {
            let mut master = master;
            loop {
                // The slave stays open, so the master neither ends nor fails in practice;
                // if it does, back off rather than spin.
                if let Err(e) = rtu_stream::serve(&mut master, sim.clone(), bus).await {
                    warn!(bus = %sim.site.buses[bus].id, "pseudo-terminal: {e}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        // Remove the link only if it is still ours: another hazsim may have taken the name.
        if std::fs::read_link(&self.link).is_ok_and(|target| target == self.slave_path) {
            let _ = std::fs::remove_file(&self.link);
        }
    }
}

/// The non-blocking master side as an async byte stream.
struct Master(AsyncFd<OwnedFd>);

impl AsyncRead for Master {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard
                .try_io(|fd| nix::unistd::read(fd.get_ref(), unfilled).map_err(io::Error::from))
            {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for Master {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.0.poll_write_ready(cx))?;
            match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(io::Error::from))
            {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

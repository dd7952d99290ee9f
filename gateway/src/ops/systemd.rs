//! systemd's notify protocol (`Type=notify`): READY=1 once polling runs, RELOADING=1 and
//! READY=1 around a reload, STOPPING=1 at shutdown, and WATCHDOG=1 while the poll loop and
//! the pipeline (and through it the store task) are alive, so systemd restarts a gateway
//! that hangs rather than one that only lost its broker. Without `NOTIFY_SOCKET` (not
//! started by systemd) every call does nothing.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use tracing::warn;

pub struct Notifier {
    socket: Option<(UnixDatagram, std::os::unix::net::SocketAddr)>,
}

impl Notifier {
    pub fn from_env() -> Notifier {
        Notifier::at(std::env::var_os("NOTIFY_SOCKET").map(|p| p.to_string_lossy().into_owned()))
    }

    fn at(path: Option<String>) -> Notifier {
        let socket = path.and_then(|path| {
            let addr = if let Some(name) = path.strip_prefix('@') {
                // An abstract socket (systemd's default for services).
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            } else {
                std::os::unix::net::SocketAddr::from_pathname(&path)
            };
            match (UnixDatagram::unbound(), addr) {
                (Ok(s), Ok(a)) => Some((s, a)),
                (Err(e), _) | (_, Err(e)) => {
                    warn!("NOTIFY_SOCKET {path} is unusable: {e}; systemd will not hear from us");
                    None
                }
            }
        });
        Notifier { socket }
    }

    /// Sends one state line; a failure is logged, never fatal.
    pub fn send(&self, state: &str) {
        if let Some((socket, addr)) = &self.socket {
            if let Err(e) = socket.send_to_addr(state.as_bytes(), addr) {
                warn!("cannot tell systemd {state}: {e}");
            }
        }
    }

    /// How often systemd wants to hear WATCHDOG=1 (`WatchdogSec`), if it watches us.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.socket.as_ref()?;
        interval(
            std::env::var("WATCHDOG_USEC").ok(),
            std::env::var("WATCHDOG_PID").ok(),
            std::process::id(),
        )
    }
}

/// `WATCHDOG_USEC`, unless `WATCHDOG_PID` names another process.
fn interval(usec: Option<String>, pid: Option<String>, me: u32) -> Option<Duration> {
    if pid.is_some_and(|p| p.trim() != me.to_string()) {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_reach_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::at(Some(path.display().to_string()));
        n.send("READY=1");
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
        // Without systemd: nothing is sent, nothing fails.
        Notifier::at(None).send("READY=1");
        assert!(Notifier::at(None).watchdog_interval().is_none());
    }

    #[test]
    fn the_watchdog_interval_is_ours_only() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            interval(s("30000000"), None, 7),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            interval(s("30000000"), s("7"), 7),
            Some(Duration::from_secs(30))
        );
        assert_eq!(interval(s("30000000"), s("8"), 7), None);
        assert_eq!(interval(s("0"), None, 7), None);
        assert_eq!(interval(s("soon"), None, 7), None);
        assert_eq!(interval(None, None, 7), None);
    }
}

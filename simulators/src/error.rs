//! Why the simulator could not start: each error says what to fix.

use std::net::SocketAddr;
use std::path::PathBuf;

use firmware_config::ConfigErrors;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The site file or a scenario file is wrong; the errors name file, line and field.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error("bus \"{bus}\": cannot listen on {addr}: {error}")]
    Bind {
        bus: String,
        addr: String,
        error: std::io::Error,
    },
    #[error("bus \"{bus}\": cannot make a pseudo-terminal at {}: {message}", path.display())]
    Pty {
        bus: String,
        path: PathBuf,
        message: String,
    },
    #[error("the control socket must listen on a loopback address (127.0.0.1 or ::1), not {0}: it accepts faults and writes without authentication")]
    ControlNotLoopback(SocketAddr),
    #[error("control socket {addr}: {error}")]
    Control {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("--speed must be a positive number, not {0}")]
    Speed(f64),
    #[error("cannot wait for signals: {0}")]
    Signals(std::io::Error),
}

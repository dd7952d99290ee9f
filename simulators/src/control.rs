//! The control socket: one JSON command per line in, one JSON reply per line out. A
//! command is a scenario event without `at` (plus `read`), so tests and operators drive
//! the plant with the same words scenarios use. Loopback only: it takes no credentials.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tracing::info;

use crate::command::{resolve, Origin, RawCommand};
use crate::error::SimError;
use crate::sim::Sim;

/// The longest command line accepted; anything longer is not a command.
const MAX_LINE: u64 = 64 * 1024;

/// Binds the control socket, refusing anything but a loopback address.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, SimError> {
    if !addr.ip().is_loopback() {
        return Err(SimError::ControlNotLoopback(addr));
    }
    TcpListener::bind(addr)
        .await
        .map_err(|error| SimError::Control { addr, error })
}

/// Accepts control connections forever.
pub async fn accept_loop(listener: TcpListener, sim: Arc<Sim>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve(stream, sim.clone()));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn serve(stream: TcpStream, sim: Arc<Sim>) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = match (&mut read)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(n) => n,
            Err(_) => return,
        };
        if n == 0 {
            return;
        }
        let too_long = line.last() != Some(&b'\n') && n as u64 >= MAX_LINE;
        let reply = if too_long {
            error(
                None,
                format!("a command is one line of at most {MAX_LINE} bytes"),
            )
        } else {
            match std::str::from_utf8(&line) {
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => handle_line(&sim, text),
                Err(_) => error(None, "a command is UTF-8 JSON"),
            }
        };
        let mut out = reply;
        out.push('\n');
        if write.write_all(out.as_bytes()).await.is_err() || too_long {
            return;
        }
    }
}

/// A reply line. A struct rather than a JSON map so `ok` comes first on the wire.
#[derive(Debug, Default, Serialize)]
struct Reply {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Present (maybe null) only in the reply to `read`.
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Option<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registers: Option<Vec<u16>>,
}

fn error(field: Option<&'static str>, message: impl Into<String>) -> String {
    to_line(&Reply {
        ok: false,
        field,
        error: Some(message.into()),
        ..Reply::default()
    })
}

fn to_line(reply: &Reply) -> String {
    serde_json::to_string(reply)
        .unwrap_or_else(|_| r#"{"ok":false,"error":"cannot encode the reply"}"#.to_string())
}

/// Carries out one command line and says how it went, as one JSON line (without the
/// newline). Never panics on bad input.
pub fn handle_line(sim: &Sim, text: &str) -> String {
    let raw: RawCommand = match serde_json::from_str(text) {
        Ok(raw) => raw,
        Err(e) => return error(None, format!("not a command: {e}")),
    };
    let cmd = match resolve(&raw, &sim.site, Origin::Control) {
        Ok(cmd) => cmd,
        Err(e) => return error(Some(e.field), e.message),
    };
    match sim.apply_now(&cmd) {
        Some(reading) => to_line(&Reply {
            ok: true,
            value: Some(reading.value),
            text: reading.text,
            registers: Some(reading.registers),
            ..Reply::default()
        }),
        None => {
            info!(command = %text.trim(), "control");
            to_line(&Reply {
                ok: true,
                ..Reply::default()
            })
        }
    }
}

/// Sends one command and returns the reply line (for `hazsim ctl`).
pub async fn send(addr: SocketAddr, command: &str) -> std::io::Result<String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(command.trim().as_bytes()).await?;
        stream.write_all(b"\n").await?;
        let mut reply = String::new();
        BufReader::new(stream).read_line(&mut reply).await?;
        Ok(reply.trim_end().to_string())
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no reply within 10s",
            ))
        })
}

//! A bus's way to its devices: opens the TCP socket or serial port on first use, reopens it
//! after a failure, and resynchronises an RTU line after a late or broken reply.

use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_serial::SerialPortBuilderExt;

use firmware_config::site::{Parity, SerialLine};
use firmware_config::Link;

use super::modbus::{Connection, Framing, ModbusError, Request, Response};

/// RTU over TCP has no real line timing; frames end when the serial server forwards them.
const TUNNEL_SILENCE: Duration = Duration::from_micros(1750);
/// How long a line must be quiet before the next request after a failure.
const MIN_RESYNC_QUIET: Duration = Duration::from_millis(20);
/// The most a resync may cost, so a babbling device cannot hold the line.
const MAX_RESYNC: Duration = Duration::from_millis(200);
/// Timeouts in a row (no answer from any unit) after which a TCP connection is taken for
/// dead and opened anew: a serial server that vanished or rebooted leaves a socket that
/// never errors, and only a fresh connection finds out.
pub const REOPEN_AFTER_TIMEOUTS: u32 = 3;

pub struct BusLink {
    link: Link,
    conn: Option<Connection>,
    timeouts_in_a_row: u32,
}

impl BusLink {
    pub fn new(link: Link) -> Self {
        Self {
            link,
            conn: None,
            timeouts_in_a_row: 0,
        }
    }

    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The quiet time that ends a frame on this bus (zero for Modbus TCP).
    pub fn frame_silence(&self) -> Duration {
        match &self.link {
            Link::Tcp { .. } => Duration::ZERO,
            Link::Rtu(line) => line.frame_silence(),
            Link::RtuOverTcp { .. } => TUNNEL_SILENCE,
        }
    }

    /// One request and its reply, connecting first if needed, all within `limit`.
    pub async fn call(
        &mut self,
        unit: u8,
        request: &Request,
        limit: Duration,
    ) -> Result<Response, ModbusError> {
        let started = tokio::time::Instant::now();
        if self.conn.is_none() {
            self.conn = Some(open(&self.link, limit).await?);
        }
        let remaining = limit
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        let conn = self.conn.as_mut().expect("opened above");
        let result = conn.call(unit, request, remaining).await;
        match &result {
            Err(e @ ModbusError::Timeout(_)) => {
                self.timeouts_in_a_row += 1;
                if self.timeouts_in_a_row >= REOPEN_AFTER_TIMEOUTS
                    && !matches!(self.link, Link::Rtu(_))
                {
                    self.timeouts_in_a_row = 0;
                    self.conn = None;
                } else {
                    self.recover(e).await;
                }
            }
            Err(e) => {
                self.timeouts_in_a_row = 0;
                self.recover(e).await;
            }
            Ok(_) => self.timeouts_in_a_row = 0,
        }
        result
    }

    /// Closes the connection, so the next call opens a fresh one.
    pub fn close(&mut self) {
        self.conn = None;
    }

    async fn recover(&mut self, error: &ModbusError) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        match (conn.framing(), error) {
            // Modbus TCP: transaction ids recognise late replies, so a timeout keeps the socket.
            (Framing::Tcp, ModbusError::Timeout(_) | ModbusError::Exception { .. }) => {}
            (Framing::Tcp, _) => self.conn = None,
            (Framing::Rtu { .. }, ModbusError::Lost(_)) => self.conn = None,
            (
                Framing::Rtu { silence },
                ModbusError::Timeout(_) | ModbusError::Crc { .. } | ModbusError::Framing(_),
            ) => {
                let quiet = (silence * 4).max(MIN_RESYNC_QUIET);
                if conn.drain(quiet, MAX_RESYNC).await.is_err() {
                    self.conn = None;
                }
            }
            (Framing::Rtu { .. }, _) => {}
        }
    }
}

async fn open(link: &Link, limit: Duration) -> Result<Connection, ModbusError> {
    {
        match link {
            Link::Tcp { host, port } => Ok(Connection::new(
                Box::new(connect_tcp(host, *port, limit).await?),
                Framing::Tcp,
            )),
            Link::RtuOverTcp { host, port } => Ok(Connection::new(
                Box::new(connect_tcp(host, *port, limit).await?),
                Framing::Rtu {
                    silence: TUNNEL_SILENCE,
                },
            )),
            Link::Rtu(line) => Ok(Connection::new(
                Box::new(open_serial(line)?),
                Framing::Rtu {
                    silence: line.frame_silence(),
                },
            )),
        }
    }
}

async fn connect_tcp(host: &str, port: u16, limit: Duration) -> Result<TcpStream, ModbusError> {
    let endpoint = format!("{host}:{port}");
    match timeout(limit, TcpStream::connect(&endpoint)).await {
        Err(_) => Err(ModbusError::Timeout(limit)),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Err(ModbusError::Refused(endpoint))
        }
        Ok(Err(e)) => Err(ModbusError::Lost(format!(
            "cannot connect to {endpoint}: {e}"
        ))),
        Ok(Ok(stream)) => {
            // Requests are small and each waits for its reply: never let Nagle hold one back.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
    }
}

fn open_serial(line: &SerialLine) -> Result<tokio_serial::SerialStream, ModbusError> {
    let path = line.port.to_string_lossy().to_string();
    tokio_serial::new(&path, line.baud)
        .data_bits(if line.data_bits == 7 {
            tokio_serial::DataBits::Seven
        } else {
            tokio_serial::DataBits::Eight
        })
        .stop_bits(if line.stop_bits == 2 {
            tokio_serial::StopBits::Two
        } else {
            tokio_serial::StopBits::One
        })
        .parity(match line.parity {
            Parity::None => tokio_serial::Parity::None,
            Parity::Even => tokio_serial::Parity::Even,
            Parity::Odd => tokio_serial::Parity::Odd,
        })
        .open_native_async()
        .map_err(|e| ModbusError::Lost(format!("cannot open serial port {path}: {e}")))
}

//! One open Modbus connection: sends a request, waits for its reply under a deadline, and
//! tells a timeout from a CRC error, a malformed frame or a stale late reply.

use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout_at, Instant};

use super::error::ModbusError;
use super::pdu::{Request, Response};
use firmware_config::modbus_crc::crc16;

/// Anything a connection can run over: a TCP socket, a serial port, an in-memory pipe.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How frames are delimited on the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// MBAP header with transaction id and length.
    Tcp,
    /// Unit id + PDU + CRC-16; `silence` is the quiet time that ends a frame on this line.
    Rtu { silence: Duration },
}

/// Transaction ids of requests that timed out: their replies may still arrive and are
/// recognised and dropped instead of being taken for the current reply.
const STALE_KEPT: usize = 16;

pub struct Connection {
    io: Box<dyn Io>,
    framing: Framing,
    rx: Vec<u8>,
    tx: Vec<u8>,
    next_transaction: u16,
    stale: Vec<u16>,
    /// While waiting: bytes the current frame needs, to tell a truncated reply on a deadline.
    wanted: usize,
    /// While waiting: something wrong that arrived (a stray reply), to tell it from silence.
    anomaly: Option<String>,
}

impl Connection {
    pub fn new(io: Box<dyn Io>, framing: Framing) -> Self {
        Self {
            io,
            framing,
            rx: Vec::with_capacity(512),
            tx: Vec::with_capacity(264),
            next_transaction: 1,
            stale: Vec::with_capacity(STALE_KEPT),
            wanted: 0,
            anomaly: None,
        }
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Sends one request to `unit` and returns its reply, or why there is none by `timeout`.
    /// One deadline covers the whole exchange; when it passes, what had arrived by then
    /// decides between a timeout (nothing) and a framing error (something, but wrong).
    pub async fn call(
        &mut self,
        unit: u8,
        request: &Request,
        timeout: Duration,
    ) -> Result<Response, ModbusError> {
        self.rx.clear();
        self.wanted = 0;
        self.anomaly = None;
        let transaction = self.next_transaction;
        self.next_transaction = self.next_transaction.wrapping_add(1);
        self.encode(unit, request, transaction);
        let exchange = async {
            self.io
                .write_all(&self.tx)
                .await
                .map_err(|e| ModbusError::Lost(format!("write failed: {e}")))?;
            match self.framing {
                Framing::Tcp => self.read_tcp(unit, request, transaction).await,
                Framing::Rtu { .. } => self.read_rtu(unit, request).await,
            }
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => {
                if self.framing == Framing::Tcp {
                    if self.stale.len() == STALE_KEPT {
                        self.stale.remove(0);
                    }
                    self.stale.push(transaction);
                }
                Err(match (self.anomaly.take(), self.rx.is_empty()) {
                    (Some(a), _) => ModbusError::Framing(a),
                    (None, true) => ModbusError::Timeout(timeout),
                    (None, false) => ModbusError::Framing(format!(
                        "truncated reply: {} of {} bytes, then silence",
                        self.rx.len(),
                        self.wanted
                    )),
                })
            }
        }
    }

    /// Reads and drops whatever arrives until the line has been quiet for `quiet`, at most
    /// for `limit`: after a timeout or a broken frame, a late reply must not be taken for
    /// the answer to the next request.
    pub async fn drain(&mut self, quiet: Duration, limit: Duration) -> Result<(), ModbusError> {
        let end = Instant::now() + limit;
        let mut scratch = [0u8; 256];
        loop {
            let until = (Instant::now() + quiet).min(end);
            match timeout_at(until, self.io.read(&mut scratch)).await {
                Err(_) => return Ok(()),
                Ok(Ok(0)) => return Err(ModbusError::Lost("closed by the other end".into())),
                Ok(Ok(_)) if Instant::now() >= end => return Ok(()),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(ModbusError::Lost(format!("read failed: {e}"))),
            }
        }
    }

    fn encode(&mut self, unit: u8, request: &Request, transaction: u16) {
        self.tx.clear();
        match self.framing {
            Framing::Tcp => {
                self.tx.extend_from_slice(&transaction.to_be_bytes());
                self.tx.extend_from_slice(&[0, 0, 0, 0, unit]);
                request.encode(&mut self.tx);
                let len = (self.tx.len() - 6) as u16;
                self.tx[4..6].copy_from_slice(&len.to_be_bytes());
            }
            Framing::Rtu { .. } => {
                self.tx.push(unit);
                request.encode(&mut self.tx);
                let crc = crc16(&self.tx);
                self.tx.extend_from_slice(&crc.to_le_bytes());
            }
        }
    }

    /// Makes sure `n` bytes are buffered (the caller's deadline bounds the wait).
    async fn fill(&mut self, n: usize) -> Result<(), ModbusError> {
        self.wanted = n;
        while self.rx.len() < n {
            match self.io.read_buf(&mut self.rx).await {
                Ok(0) => return Err(ModbusError::Lost("closed by the other end".into())),
                Ok(_) => {}
                Err(e) => return Err(ModbusError::Lost(format!("read failed: {e}"))),
            }
        }
        Ok(())
    }

    async fn read_tcp(
        &mut self,
        unit: u8,
        request: &Request,
        transaction: u16,
    ) -> Result<Response, ModbusError> {
        loop {
            self.fill(7).await?;
            let got_transaction = u16::from_be_bytes([self.rx[0], self.rx[1]]);
            let protocol = u16::from_be_bytes([self.rx[2], self.rx[3]]);
            let len = u16::from_be_bytes([self.rx[4], self.rx[5]]) as usize;
            if protocol != 0 {
                return Err(ModbusError::Framing(format!(
                    "MBAP protocol id {protocol}, expected 0"
                )));
            }
            if !(2..=254).contains(&len) {
                return Err(ModbusError::Framing(format!(
                    "MBAP length {len} outside 2..=254"
                )));
            }
            self.fill(6 + len).await?;
            let from = self.rx[6];
            let result = if got_transaction != transaction {
                if !self.stale.contains(&got_transaction) {
                    self.anomaly = Some(format!(
                        "reply with transaction id {got_transaction}, expected {transaction}"
                    ));
                }
                None // a late reply to an earlier request, or a stray one: not ours
            } else if from != unit {
                Some(Err(ModbusError::Framing(format!(
                    "reply from unit {from}, request was to unit {unit}"
                ))))
            } else {
                Some(request.parse_reply(&self.rx[7..6 + len]))
            };
            self.rx.drain(..6 + len);
            if let Some(result) = result {
                return result;
            }
        }
    }

    async fn read_rtu(&mut self, unit: u8, request: &Request) -> Result<Response, ModbusError> {
        loop {
            self.fill(2).await?;
            let function = self.rx[1];
            let total = match function {
                f if f & 0x80 != 0 => 5,
                0x01..=0x04 => {
                    self.fill(3).await?;
                    5 + self.rx[2] as usize
                }
                0x05 | 0x06 | 0x0F | 0x10 => 8,
                other => {
                    return Err(ModbusError::Framing(format!(
                        "reply with unknown function {other:02X}"
                    )))
                }
            };
            self.fill(total).await?;
            let frame = &self.rx[..total];
            let got = u16::from_le_bytes([frame[total - 2], frame[total - 1]]);
            let computed = crc16(&frame[..total - 2]);
            let from = frame[0];
            let result = if got != computed {
                Some(Err(ModbusError::Crc { got, computed }))
            } else if from != unit {
                // A whole, valid frame from another unit: a late reply after its timeout.
                self.anomaly = Some(format!(
                    "reply from unit {from}, request was to unit {unit}"
                ));
                None
            } else {
                Some(request.parse_reply(&frame[1..total - 2]))
            };
            self.rx.drain(..total);
            if let Some(result) = result {
                return result;
            }
        }
    }
}

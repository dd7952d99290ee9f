//! The RTU request loop, shared by pseudo-terminals and RTU-over-TCP sockets: split the
//! byte stream into frames, drop damaged ones, answer for the units on this bus.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::debug;

use crate::device::Reply;
use crate::frame::crc::check_crc;
use crate::frame::rtu::{build_reply, corrupt, expected_len, Expected, MAX_FRAME};
use crate::sim::Sim;

/// Silence that ends a frame of unknown length.
pub const UNKNOWN_SILENCE: Duration = Duration::from_millis(5);
/// How long a partly received frame of known length may wait for the rest before it is
/// dropped, so one lost byte cannot wedge the line.
pub const PARTIAL_TIMEOUT: Duration = Duration::from_millis(50);

/// Serves RTU requests on `stream` until it closes or fails.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    sim: Arc<Sim>,
    bus: usize,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(MAX_FRAME * 2);
    let mut chunk = [0u8; 512];
    let mut pdu_out: Vec<u8> = Vec::with_capacity(MAX_FRAME);
    let mut frame_out: Vec<u8> = Vec::with_capacity(MAX_FRAME);
    loop {
        // Answer every complete frame at the head of the buffer.
        loop {
            match expected_len(&buf) {
                Expected::Bytes(n) if n > MAX_FRAME => buf.clear(),
                Expected::Bytes(n) if buf.len() >= n => {
                    if check_crc(&buf[..n]) {
                        answer(
                            &mut stream,
                            &sim,
                            bus,
                            &buf[..n],
                            &mut pdu_out,
                            &mut frame_out,
                        )
                        .await?;
                        buf.drain(..n);
                    } else {
                        debug!(bus = %sim.site.buses[bus].id, "bad CRC, dropping {} bytes", buf.len());
                        buf.clear(); // resync: a real device waits for the next silence
                    }
                }
                _ => break,
            }
        }
        let read = if buf.is_empty() {
            Ok(stream.read(&mut chunk).await)
        } else {
            let wait = match expected_len(&buf) {
                Expected::UntilSilence => UNKNOWN_SILENCE,
                _ => PARTIAL_TIMEOUT,
            };
            tokio::time::timeout(wait, stream.read(&mut chunk)).await
        };
        match read {
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > MAX_FRAME * 2 {
                    buf.clear();
                }
            }
            Ok(Err(e)) => return Err(e),
            Err(_silence) => {
                if expected_len(&buf) == Expected::UntilSilence
                    && buf.len() <= MAX_FRAME
                    && check_crc(&buf)
                {
                    let frame = buf.clone(); // rare path: unknown function codes only
                    answer(&mut stream, &sim, bus, &frame, &mut pdu_out, &mut frame_out).await?;
                }
                buf.clear();
            }
        }
    }
}

/// Answers one intact frame, or stays silent as RS-485 semantics want.
async fn answer<S: AsyncWrite + Unpin>(
    stream: &mut S,
    sim: &Sim,
    bus: usize,
    frame: &[u8],
    pdu_out: &mut Vec<u8>,
    frame_out: &mut Vec<u8>,
) -> std::io::Result<()> {
    let unit = frame[0];
    let pdu = &frame[1..frame.len() - 2];
    let now = sim.clock.now();
    if unit == 0 {
        for d in sim.devices_on(bus) {
            d.broadcast(pdu, now);
        }
        return Ok(());
    }
    let Some(device) = sim.device(bus, unit) else {
        return Ok(()); // nobody at that address on this line
    };
    pdu_out.clear();
    let reply = device.handle(pdu, pdu_out, now);
    build_reply(frame_out, unit, pdu_out);
    match reply {
        Reply::Silent => return Ok(()),
        Reply::Send => {}
        Reply::Late(delay) => tokio::time::sleep(delay).await,
        Reply::Corrupt => corrupt(frame_out),
    }
    stream.write_all(frame_out).await?;
    stream.flush().await
}

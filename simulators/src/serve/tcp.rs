//! Modbus TCP: MBAP framing, one task per connection so a slow or silent device on one
//! connection never holds up another.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tracing::debug;

use crate::device::Reply;
use crate::error::SimError;
use crate::frame::pdu::{code, push_exception};
use crate::frame::tcp::{build_reply, parse_header, HEADER, MAX_PDU};
use crate::sim::Sim;

/// Binds a listener for a bus.
pub async fn bind(bus: &str, host: &str, port: u16) -> Result<TcpListener, SimError> {
    let addr = format!("{host}:{port}");
    TcpListener::bind(&addr)
        .await
        .map_err(|error| SimError::Bind {
            bus: bus.to_string(),
            addr,
            error,
        })
}

/// Accepts connections forever, each served by `serve` on its own task.
pub async fn accept_loop<F, Fut>(listener: TcpListener, sim: Arc<Sim>, bus: usize, serve: F)
where
    F: Fn(TcpStream, Arc<Sim>, usize) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let fut = serve(stream, sim.clone(), bus);
                let bus_id = sim.site.buses[bus].id.clone();
                tokio::spawn(async move {
                    if let Err(e) = fut.await {
                        debug!(bus = %bus_id, %peer, "connection closed: {e}");
                    }
                });
            }
            // Out of descriptors and the like: wait rather than spin.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

/// Serves Modbus TCP requests on one connection until it closes or goes out of step.
pub async fn serve(stream: TcpStream, sim: Arc<Sim>, bus: usize) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut header = [0u8; HEADER];
    let mut pdu = [0u8; MAX_PDU];
    let mut pdu_out = Vec::with_capacity(MAX_PDU);
    let mut frame_out = Vec::with_capacity(HEADER + MAX_PDU);
    loop {
        match read.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let mbap = parse_header(&header)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let pdu = &mut pdu[..mbap.pdu_len];
        read.read_exact(pdu).await?;
        pdu_out.clear();
        let reply = match sim.device(bus, mbap.unit) {
            Some(device) => device.handle(pdu, &mut pdu_out, sim.clock.now()),
            None => {
                push_exception(&mut pdu_out, pdu[0], code::GATEWAY_TARGET_FAILED);
                Reply::Send
            }
        };
        let transaction = match reply {
            Reply::Silent => continue,
            Reply::Send => mbap.transaction,
            Reply::Late(delay) => {
                tokio::time::sleep(delay).await;
                mbap.transaction
            }
            // A reply the client cannot match to its request.
            Reply::Corrupt => mbap.transaction ^ 0x8000,
        };
        build_reply(&mut frame_out, transaction, mbap.unit, &pdu_out);
        write.write_all(&frame_out).await?;
    }
}

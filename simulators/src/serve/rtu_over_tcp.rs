//! RTU frames tunnelled through TCP, as serial device servers and 4G DTUs do: each
//! connection is its own view of the RS-485 line behind it.

use std::sync::Arc;

use tokio::net::TcpStream;

use crate::serve::rtu_stream;
use crate::sim::Sim;

/// Serves RTU requests on one connection.
pub async fn serve(stream: TcpStream, sim: Arc<Sim>, bus: usize) -> std::io::Result<()> {
    rtu_stream::serve(stream, sim, bus).await
}

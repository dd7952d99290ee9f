//! One poll cycle of one device: its planned reads, in order, on its bus.

use std::time::Duration;

use firmware_config::Device;

use super::link::BusLink;
use super::modbus::{ModbusError, Request, Response};
use super::plan::{DevicePlan, ReadBlock};

/// What one block read gave, and when.
#[derive(Debug, Clone)]
pub struct BlockResult {
    /// Acquisition time (ms UTC), taken when the reply arrived.
    pub ts: i64,
    pub data: Result<Response, ModbusError>,
}

/// Everything one cycle read from a device, block by block, in plan order.
#[derive(Debug, Clone)]
pub struct DeviceImage {
    pub results: Vec<BlockResult>,
}

pub use crate::clock::wall_ms as now_ms;

/// Reads every block of the plan. Once the device proves unreachable (timeout, refused,
/// lost), its remaining blocks are not tried this cycle: on a shared RS-485 line a dead
/// device may cost its own timeout once, never once per block.
pub async fn read_device(
    link: &mut BusLink,
    device: &Device,
    plan: &DevicePlan,
    gap: Duration,
) -> DeviceImage {
    let mut results = Vec::with_capacity(plan.blocks.len());
    let mut unreachable: Option<ModbusError> = None;
    let pause = link.frame_silence() + gap;
    for (i, block) in plan.blocks.iter().enumerate() {
        if let Some(e) = &unreachable {
            results.push(BlockResult {
                ts: now_ms(),
                data: Err(e.clone()),
            });
            continue;
        }
        if i > 0 && !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        let data = link
            .call(device.unit, &read_request(block), device.timeout)
            .await;
        if let Err(e) = &data {
            if e.device_unreachable() {
                unreachable = Some(e.clone());
            }
        }
        results.push(BlockResult { ts: now_ms(), data });
    }
    DeviceImage { results }
}

pub fn read_request(block: &ReadBlock) -> Request {
    Request::Read {
        kind: block.kind,
        start: block.start,
        count: block.count,
    }
}

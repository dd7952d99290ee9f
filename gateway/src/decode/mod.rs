//! Register images -> `Reading`s: raw value, scaling, decimals, unit codes, vendor status,
//! NE43 loop current and measuring range, each giving the reading its quality.

mod point;
mod quality;

pub use point::{decode_device, DeviceDecoder};
pub use quality::{judge_loop_current, LoopState};

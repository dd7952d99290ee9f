//! hazsim: simulated Modbus field devices (gas detectors, transmitters, dam sensors) so
//! hazgate can be developed, tested and demonstrated without hardware.
//!
//! Each bus of a site config becomes a listener: Modbus TCP, RTU on a pseudo-terminal, or
//! RTU over TCP. Values follow the profiles' `simulate` signals; scenarios and the control
//! socket drive them and inject faults. See docs/hazsim.md.

pub mod bank;
pub mod command;
pub mod control;
pub mod device;
pub mod error;
pub mod fault;
pub mod frame;
pub mod scenario;
pub mod serve;
pub mod signal;
pub mod sim;

pub use error::SimError;
pub use serve::{run, Options};

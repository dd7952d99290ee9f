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

/// A one-device site (a gas-detector-4ch on a TCP bus) for unit tests.
#[cfg(test)]
pub(crate) fn test_site() -> firmware_config::SiteConfig {
    let text = "[site]\nid = \"T\"\ngateway = \"gw\"\n[[bus]]\nid = \"b\"\ntcp = { host = \"127.0.0.1\", port = 1502 }\n[[device]]\nid = \"GD-101\"\nbus = \"b\"\nunit = 1\nprofile = \"gas-detector-4ch\"\npoll = \"2s\"\n";
    firmware_config::site::parse_site(&firmware_config::error::SourceText::new("site.toml", text))
        .unwrap()
}

//! Site config and device profiles of hazgate: schema, loading and validation.
//!
//! A site file and the profiles it names become typed values once, at load; every error
//! names the file, the line and the field, and says what would be valid.

pub mod alarm;
pub mod central;
pub mod codec;
pub mod error;
pub mod escalation;
pub mod modbus_crc;
pub mod profile;
pub mod quantity;
mod serde_types;
pub mod site;

pub use codec::{DataType, RawValue, WordOrder};
pub use error::{ConfigError, ConfigErrors};
pub use profile::{Point, Profile, RegisterKind};
pub use site::{load_site, Bus, Device, Link, SiteConfig};

//! The MQTT side: one persistent session per instance, shared subscriptions for telemetry
//! and alarms, manual acknowledgements.

mod ack;
mod session;

pub use ack::AckToken;
pub use session::{run, Pending, SubscribeContext};

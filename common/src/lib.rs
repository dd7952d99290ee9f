//! What hazgate's daemons share beyond the wire format: one bounded HTTP server, so every
//! HTTP endpoint (the regulator view, `/metrics` and `/health` of `hazingest` and
//! `hazgate`) holds the same line against a client that opens connections and never
//! closes them.

pub mod http;

pub use http::{serve, HttpLimits};

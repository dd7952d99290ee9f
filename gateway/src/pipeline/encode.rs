//! Telemetry and statistics payloads as the site wants them on the wire (and in the
//! store): the message's JSON, or that JSON as one zstd frame (`[uplink] compress`).

use firmware_config::SiteConfig;
use hazgate_wire::payload::{Compressor, Encoding};
use hazgate_wire::Message;

pub struct Encoder {
    encoding: Encoding,
    /// Kept across messages: a zstd context is over a megabyte.
    zstd: Compressor,
}

impl Encoder {
    pub fn for_site(site: &SiteConfig) -> Self {
        Self {
            encoding: site.uplink.as_ref().map_or(Encoding::Zstd, |u| u.encoding),
            zstd: Compressor::default(),
        }
    }

    pub fn encode(&mut self, message: Message) -> Vec<u8> {
        let json = message.to_json();
        match self.encoding {
            Encoding::Json => json,
            Encoding::Zstd => self.zstd.compress(&json),
        }
    }
}

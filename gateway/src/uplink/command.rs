//! Commands from the central side, on `{p}/{site}/{gateway}/command`: untrusted input.
//! A command is applied only when it is well formed, of a version this gateway knows, and
//! names this gateway's own site and gateway; anything else is refused with a reason for
//! the log, never applied, never a panic.

use hazgate_wire::validate::{self, Invalid};
use hazgate_wire::{Command, VERSION};

use crate::envelope::Origin;

/// Largest command accepted: an acknowledgement with a long note is well under it.
pub const MAX_COMMAND: usize = 8 * 1024;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Refused {
    #[error("{0} bytes, over the {MAX_COMMAND}-byte limit for a command")]
    TooLarge(usize),
    #[error("not a command: {0}")]
    Malformed(String),
    #[error("version {0}; this gateway reads version {VERSION}")]
    Version(u32),
    #[error("meant for site {site} gateway {gateway}, not this one")]
    NotOurs { site: String, gateway: String },
    #[error(transparent)]
    Content(#[from] Invalid),
}

/// Reads a command's payload for the gateway `origin`.
pub fn read(payload: &[u8], origin: &Origin) -> Result<Command, Refused> {
    if payload.len() > MAX_COMMAND {
        return Err(Refused::TooLarge(payload.len()));
    }
    let c: Command =
        serde_json::from_slice(payload).map_err(|e| Refused::Malformed(e.to_string()))?;
    if c.v != VERSION {
        return Err(Refused::Version(c.v));
    }
    if c.site != origin.site || c.gateway != origin.gateway {
        return Err(Refused::NotOurs {
            site: c.site.to_string(),
            gateway: c.gateway.to_string(),
        });
    }
    validate::command(&c)?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            site: "HB-1".into(),
            gateway: "gw-01".into(),
        }
    }

    #[test]
    fn what_is_refused_and_why() {
        let ok = r#"{"v":1,"kind":"command","site":"HB-1","gateway":"gw-01","id":"c-1","ts":1,"by":"张三","command":"ack","occurrence":"1-0a0b0c0d"}"#;
        assert!(read(ok.as_bytes(), &origin()).is_ok());
        let cases: &[(&str, &str)] = &[
            ("", "not a command"),
            ("{", "not a command"),
            (r#"{"v":1,"kind":"command"}"#, "not a command"),
            (&ok.replace(r#""v":1"#, r#""v":2"#), "version 2"),
            (&ok.replace("gw-01", "gw-02"), "not this one"),
            (&ok.replace("HB-1", "HB-2"), "not this one"),
            (
                &ok.replace(r#""command":"ack""#, r#""command":"format_disk""#),
                "not a command",
            ),
            (&ok.replace("1-0a0b0c0d", "../../etc"), "not a valid id"),
            (&ok.replace("张三", ""), "given by"),
            (
                &ok.replace(r#""id":"c-1""#, r#""id":"c 1""#),
                "not a valid id",
            ),
        ];
        for (payload, why) in cases {
            let e = read(payload.as_bytes(), &origin()).unwrap_err();
            assert!(e.to_string().contains(why), "{payload}: {e}");
        }
        let big = format!("{{\"note\":\"{}\"}}", "x".repeat(MAX_COMMAND));
        assert!(matches!(
            read(big.as_bytes(), &origin()),
            Err(Refused::TooLarge(_))
        ));
    }
}

//! Commands from the central side to one gateway, on `{p}/{site}/{gateway}/command`
//! (QoS 1): the acknowledgement of an alarm occurrence (预警叫应), or the reset of a latched
//! linkage output. The gateway applies a command only when it names its own site and
//! gateway, and confirms an acknowledgement with an `ack` event on its alarm topic. The
//! broker's ACL lets only hazingest publish on these topics.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The one value of `kind` a command carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandKind {
    Command,
}

/// What a command asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Action {
    /// A named person has seen the occurrence and answers for it.
    Ack {
        occurrence: Arc<str>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Release a latched output once its condition is gone (the operator's reset).
    Reset { device: Arc<str>, point: Arc<str> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub v: u32,
    pub kind: CommandKind,
    pub site: Arc<str>,
    pub gateway: Arc<str>,
    /// Unique per command; a redelivered command carries the same id.
    pub id: Arc<str>,
    /// When it was given (ms UTC).
    pub ts: i64,
    /// Who gave it: the user's name as the central side knows them.
    pub by: String,
    #[serde(flatten)]
    pub action: Action,
}

/// The command topic of one gateway.
pub fn command_topic(prefix: &str, site: &str, gateway: &str) -> String {
    format!("{prefix}/{site}/{gateway}/command")
}

/// The id of an alarm occurrence (raise to clear), made at the edge: when it was opened
/// and which point and condition, so it is unique, short, and the same after a restart
/// (the opening time is saved with the alarm state).
pub fn occurrence_id(
    device: &str,
    point: &str,
    condition: crate::Condition,
    opened_ms: i64,
) -> String {
    // FNV-1a, 32 bits, over what tells the point's condition apart.
    let mut h: u32 = 0x811c_9dc5;
    for b in device
        .bytes()
        .chain([b'.'])
        .chain(point.bytes())
        .chain([b'.'])
        .chain(condition.name().bytes())
    {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{opened_ms}-{h:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ack_command_reads_as_documented() {
        let c: Command = serde_json::from_str(
            r#"{"v":1,"kind":"command","site":"HB-1","gateway":"gw-01","id":"c-7","ts":1,"by":"张三","command":"ack","occurrence":"1763910000123-9f3c2a1b","note":"已到现场"}"#,
        )
        .unwrap();
        assert_eq!(
            c.action,
            Action::Ack {
                occurrence: "1763910000123-9f3c2a1b".into(),
                note: Some("已到现场".into())
            }
        );
        let back = serde_json::to_value(&c).unwrap();
        assert_eq!(back["command"], "ack");
        assert_eq!(back["kind"], "command");
    }

    #[test]
    fn occurrence_ids_differ_by_point_and_condition_and_stay_short() {
        use crate::Condition;
        let a = occurrence_id("GD-101", "CH1", Condition::Limit, 1_763_910_000_123);
        let b = occurrence_id("GD-101", "CH2", Condition::Limit, 1_763_910_000_123);
        let c = occurrence_id("GD-101", "CH1", Condition::CommLoss, 1_763_910_000_123);
        assert!(a != b && a != c && b != c);
        assert!(crate::valid_id(&a), "{a}");
        assert_eq!(
            a,
            occurrence_id("GD-101", "CH1", Condition::Limit, 1_763_910_000_123)
        );
    }
}

//! Topic names as they arrive: `{prefix}/{site}/{gateway}/{kind}`, checked, not trusted.

use hazgate_wire::{valid_id, TopicKind};

/// Where a message says it comes from, by its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicOrigin<'a> {
    pub site: &'a str,
    pub gateway: &'a str,
    pub kind: TopicKind,
}

pub fn parse_topic<'a>(prefix: &str, topic: &'a str) -> Option<TopicOrigin<'a>> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
    let mut levels = rest.split('/');
    let (site, gateway, kind) = (levels.next()?, levels.next()?, levels.next()?);
    if levels.next().is_some() || !valid_id(site) || !valid_id(gateway) {
        return None;
    }
    let kind = TopicKind::ALL.into_iter().find(|k| k.name() == kind)?;
    Some(TopicOrigin {
        site,
        gateway,
        kind,
    })
}

/// The subscriptions of one ingest instance. Telemetry and alarms go through the shared
/// subscription, so each message reaches one instance of the group; state and status are
/// subscribed by every instance directly, because brokers do not hand retained messages to
/// shared subscriptions (MQTT 5.0 §4.8.2) and every instance's regulator view needs all of
/// them.
pub fn subscriptions(prefix: &str, group: &str) -> Vec<String> {
    vec![
        format!("$share/{group}/{prefix}/+/+/telemetry"),
        format!("$share/{group}/{prefix}/+/+/alarm"),
        format!("$share/{group}/{prefix}/+/+/stats"),
        format!("{prefix}/+/+/state"),
        format!("{prefix}/+/+/status"),
        format!("{prefix}/+/+/site"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics() {
        let t = parse_topic("hazard", "hazard/HB-1/gw-01/alarm").unwrap();
        assert_eq!(
            (t.site, t.gateway, t.kind),
            ("HB-1", "gw-01", TopicKind::Alarm)
        );
        let t = parse_topic("a/b", "a/b/S/G/telemetry").unwrap();
        assert_eq!(t.kind, TopicKind::Telemetry);
        for bad in [
            "hazard/HB-1/gw-01",
            "hazard/HB-1/gw-01/alarm/x",
            "hazard/HB 1/gw-01/alarm",
            "hazard/HB-1/gw-01/other",
            "hazardous/HB-1/gw-01/alarm",
            "other/HB-1/gw-01/alarm",
            "hazard//gw-01/alarm",
        ] {
            assert!(parse_topic("hazard", bad).is_none(), "{bad}");
        }
    }
}

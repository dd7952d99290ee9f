//! The retained state message, bounded: the newest version only (never a history of
//! them), and never larger than fits a broker's packet. Active alarms go most severe
//! first; what does not fit is counted in `alarms_omitted`, so the regulator knows the
//! list is cut and by how much.

use std::cmp::Reverse;

use hazgate_wire::{Message, State};

/// Largest state payload: well under the 1 MiB packet limit of gateway and ingest, with
/// room for the topic and MQTT headers.
pub const MAX_STATE_BYTES: usize = 256 << 10;

/// The state as JSON, within `max_bytes`.
pub fn encode(mut state: State, max_bytes: usize) -> Vec<u8> {
    state
        .alarms
        .sort_by_key(|a| (Reverse(a.level), a.since, a.device.clone(), a.point.clone()));
    let full = Message::State(state.clone()).to_json();
    if full.len() <= max_bytes {
        return full;
    }
    // Room for the count of omitted alarms, then as many alarms as fit, in order.
    let total = state.alarms.len();
    let mut bare = state.clone();
    bare.alarms.clear();
    bare.alarms_omitted = total as u64;
    let mut budget = max_bytes.saturating_sub(Message::State(bare).to_json().len());
    let mut kept = 0;
    for a in &state.alarms {
        let len = serde_json::to_vec(a).map_or(usize::MAX, |v| v.len()) + 1;
        if len > budget {
            break;
        }
        budget -= len;
        kept += 1;
    }
    state.alarms.truncate(kept);
    state.alarms_omitted = (total - kept) as u64;
    Message::State(state).to_json()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hazgate_wire::{ActiveAlarm, Condition, Envelope, Level};

    fn alarm(i: usize, level: Level) -> ActiveAlarm {
        ActiveAlarm {
            device: format!("D{i}").into(),
            point: "P".into(),
            hazard_source: None,
            condition: Condition::CommLoss,
            level,
            since: i as i64,
            value: None,
            crossed: None,
            limit: None,
            unit: None,
            label: None,
            acknowledged: None,
            occurrence: None,
        }
    }

    fn state(alarms: Vec<ActiveAlarm>) -> State {
        State {
            envelope: Envelope {
                v: 1,
                site: "S".into(),
                gateway: "G".into(),
                seq: 1,
            },
            ts: 1,
            level: None,
            hazard_sources: vec![],
            alarms,
            alarms_omitted: 0,
            outputs: vec![],
        }
    }

    #[test]
    fn a_small_state_is_whole_and_a_large_one_is_cut_with_a_count() {
        let small = encode(state(vec![alarm(1, Level::Yellow)]), MAX_STATE_BYTES);
        let m: State = match serde_json::from_slice(&small).unwrap() {
            Message::State(s) => s,
            _ => panic!("not a state"),
        };
        assert_eq!((m.alarms.len(), m.alarms_omitted), (1, 0));

        let mut many: Vec<_> = (0..8000).map(|i| alarm(i, Level::Yellow)).collect();
        many.push(alarm(9000, Level::Red));
        let big = encode(state(many), MAX_STATE_BYTES);
        assert!(big.len() <= MAX_STATE_BYTES, "{} bytes", big.len());
        let m: State = match serde_json::from_slice(&big).unwrap() {
            Message::State(s) => s,
            _ => panic!("not a state"),
        };
        assert!(m.alarms_omitted > 0);
        assert_eq!(m.alarms.len() as u64 + m.alarms_omitted, 8001);
        assert_eq!(m.alarms[0].level, Level::Red, "most severe first");
    }
}

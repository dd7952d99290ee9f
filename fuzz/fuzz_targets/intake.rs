//! Any payload on any of a gateway's topics: a message or a refusal, never a panic; and a
//! message that passes always encodes to whole lines of line protocol.
#![no_main]

use hazgate_wire::Message;
use hazingest::intake::{inspect, triage, IntakeRules};
use hazingest::write::line;
use libfuzzer_sys::fuzz_target;

const TOPICS: [&str; 5] = [
    "hazard/S-1/gw-1/telemetry",
    "hazard/S-1/gw-1/alarm",
    "hazard/S-1/gw-1/state",
    "hazard/S-1/gw-1/status",
    "hazard/S 1/gw-1/x",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let rules = IntakeRules {
        prefix: "hazard".into(),
        max_message_size: 1 << 20,
    };
    let topic = TOPICS[pick as usize % TOPICS.len()];
    let Ok(message) = inspect(&rules, topic, payload) else {
        return;
    };
    let message = triage(message, 1_800_000_000_000).message;
    let mut buf = Vec::new();
    let lines = match &message {
        Message::Telemetry(t) => line::telemetry(&mut buf, t),
        Message::Alarm(a) => line::alarm(&mut buf, a),
        Message::Gap(g) => line::gap(&mut buf, g),
        Message::State(_) | Message::Status(_) => 0,
    };
    assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), lines);
});

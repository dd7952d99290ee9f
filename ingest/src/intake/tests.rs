//! Intake against hand-made and generated input: every reason on its own, and no input at
//! all that makes it panic.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

const NOW: i64 = 1_800_000_000_000;

fn rules() -> IntakeRules {
    IntakeRules {
        prefix: "hazard".into(),
        max_message_size: 4096,
    }
}

fn telemetry() -> Value {
    json!({"kind": "telemetry", "v": 1, "site": "S-1", "gateway": "gw-1", "seq": 3, "readings": [
        {"device": "GD-101", "point": "CH1", "ts": NOW - 1000, "value": 12.5, "unit": "%LEL", "quality": "good"},
        {"device": "PT-201", "point": "P", "ts": NOW - 1000, "value": null, "unit": "MPa", "quality": "bad", "reason": "timeout", "detail": "no reply"}
    ]})
}

fn alarm() -> Value {
    json!({"kind": "alarm", "v": 1, "site": "S-1", "gateway": "gw-1", "seq": 1, "event": "raise",
           "condition": "limit", "device": "GD-101", "point": "CH1", "hazard_source": "HS-01",
           "level": "red", "previous": null, "value": 60.0, "limit": 50.0, "unit": "%LEL",
           "label": "二级报警", "ts": NOW})
}

/// A change that spoils a good message.
type Change = Box<dyn Fn(&mut Value)>;

fn check(topic: &str, v: &Value) -> Result<Message, Rejection> {
    inspect(&rules(), topic, &serde_json::to_vec(v).unwrap())
}

fn reason(topic: &str, v: &Value) -> RejectReason {
    check(topic, v).unwrap_err().reason
}

const TELEMETRY: &str = "hazard/S-1/gw-1/telemetry";
const ALARM: &str = "hazard/S-1/gw-1/alarm";

#[test]
fn good_messages_pass() {
    assert!(
        matches!(check(TELEMETRY, &telemetry()), Ok(Message::Telemetry(t)) if t.readings.len() == 2)
    );
    assert!(matches!(check(ALARM, &alarm()), Ok(Message::Alarm(_))));
}

#[test]
fn each_reason() {
    let big = vec![b' '; 5000];
    assert_eq!(
        inspect(&rules(), TELEMETRY, &big).unwrap_err().reason,
        RejectReason::TooLarge
    );
    assert_eq!(
        inspect(&rules(), TELEMETRY, b"{\"kind\":")
            .unwrap_err()
            .reason,
        RejectReason::NotJson
    );
    assert_eq!(
        inspect(&rules(), TELEMETRY, b"\xff\xfe")
            .unwrap_err()
            .reason,
        RejectReason::NotJson
    );
    let mut v = telemetry();
    v["v"] = json!(2);
    assert_eq!(reason(TELEMETRY, &v), RejectReason::UnsupportedVersion);
    let mut v = telemetry();
    v["v"] = json!("one");
    assert_eq!(reason(TELEMETRY, &v), RejectReason::UnsupportedVersion);
    let mut v = telemetry();
    v["readings"][0]["quality"] = json!("fine");
    assert_eq!(reason(TELEMETRY, &v), RejectReason::Malformed);
    assert_eq!(reason(TELEMETRY, &json!([1, 2])), RejectReason::Malformed);
    assert_eq!(
        reason("hazard/S-1/gw-1/other", &telemetry()),
        RejectReason::UnknownTopic
    );
    assert_eq!(
        reason("hazard/S 1/gw-1/telemetry", &telemetry()),
        RejectReason::UnknownTopic
    );
    assert_eq!(reason(ALARM, &telemetry()), RejectReason::KindMismatch);
    assert_eq!(reason(TELEMETRY, &alarm()), RejectReason::KindMismatch);
    assert_eq!(
        reason("hazard/S-2/gw-1/telemetry", &telemetry()),
        RejectReason::OriginMismatch
    );
    assert_eq!(
        reason("hazard/S-1/gw-2/alarm", &alarm()),
        RejectReason::OriginMismatch
    );
}

/// Held back: (reason, how many) of a telemetry message after triage, and how many
/// readings are left to write.
fn held(v: &Value) -> (Vec<(&'static str, String)>, usize) {
    let t = triage(check(TELEMETRY, v).unwrap(), NOW);
    let Message::Telemetry(kept) = t.message else {
        panic!("not telemetry")
    };
    assert!(t.store);
    let held = t
        .held
        .iter()
        .map(|h| {
            (
                h.why.name(),
                h.record["device"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    (held, kept.readings.len())
}

#[test]
fn a_bad_reading_is_refused_alone() {
    let cases: Vec<(&str, &str, Change)> = vec![
        (
            "bad id",
            "bad_content",
            Box::new(|v| v["readings"][0]["device"] = json!("GD 101")),
        ),
        (
            "empty unit",
            "bad_content",
            Box::new(|v| v["readings"][0]["unit"] = json!("")),
        ),
        (
            "newline unit",
            "bad_content",
            Box::new(|v| v["readings"][0]["unit"] = json!("%LEL\nx y=1")),
        ),
        (
            "empty point",
            "bad_content",
            Box::new(|v| v["readings"][0]["point"] = json!("")),
        ),
        (
            "unset clock",
            "clock",
            Box::new(|v| v["readings"][0]["ts"] = json!(0)),
        ),
        (
            "future",
            "clock",
            Box::new(|v| v["readings"][0]["ts"] = json!(NOW + 2 * 86_400_000)),
        ),
        (
            "flagged clock",
            "clock",
            Box::new(|v| {
                v["readings"][0]["quality"] = json!("uncertain");
                v["readings"][0]["reason"] = json!("clock");
                v["readings"][0]["detail"] = json!("clock before build date");
            }),
        ),
    ];
    for (what, why, change) in cases {
        let mut v = telemetry();
        change(&mut v);
        let (held, kept) = held(&v);
        assert_eq!(held.len(), 1, "{what}: {held:?}");
        assert_eq!(held[0].0, why, "{what}");
        assert_eq!(kept, 1, "{what}: the good reading stays");
    }
    let (held, kept) = held(&telemetry());
    assert!(held.is_empty());
    assert_eq!(kept, 2);
}

#[test]
fn alarms_with_a_wrong_clock_are_held_from_the_store_not_refused() {
    let mut v = alarm();
    v["ts"] = json!(5);
    let t = triage(check(ALARM, &v).unwrap(), NOW);
    assert!(!t.store);
    assert_eq!(t.held.len(), 1);
    assert_eq!(t.held[0].why, Why::Clock);
    assert!(matches!(t.message, Message::Alarm(_)));
    let t = triage(check(ALARM, &alarm()).unwrap(), NOW);
    assert!(t.store && t.held.is_empty());
}

#[test]
fn content_that_no_gateway_sends() {
    let cases: Vec<(&str, Change)> = vec![
        (
            "clear with a level",
            Box::new(|v| v["event"] = json!("clear")),
        ),
        (
            "raise without a level",
            Box::new(|v| v["level"] = json!(null)),
        ),
        (
            "device without point",
            Box::new(|v| v["point"] = json!(null)),
        ),
        (
            "bad hazard source",
            Box::new(|v| v["hazard_source"] = json!("HS/01")),
        ),
        (
            "long label",
            Box::new(|v| v["label"] = json!("x".repeat(200))),
        ),
    ];
    for (what, change) in cases {
        let mut v = alarm();
        change(&mut v);
        assert_eq!(reason(ALARM, &v), RejectReason::BadContent, "{what}");
    }
}

#[test]
fn each_refusal_is_counted() {
    let counter = RejectCounter::default();
    let r = check(ALARM, &telemetry()).unwrap_err();
    counter.record(ALARM, &r);
    counter.record(ALARM, &r);
    assert_eq!(counter.count(RejectReason::KindMismatch), 2);
    assert_eq!(counter.count(RejectReason::TooLarge), 0);
}

proptest! {
    /// Any bytes on any topic: a message or a reason, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..600), topic in "[a-z/+ #-]{0,30}") {
        let _ = inspect(&rules(), &topic, &payload);
        let _ = inspect(&rules(), TELEMETRY, &payload);
    }

    /// A good message with one field swapped for arbitrary JSON: still no panic, and
    /// whatever passes is a telemetry message of the topic's gateway.
    #[test]
    fn mutated_messages_never_panic(field in 0usize..9, replacement in arbitrary_json()) {
        let mut v = telemetry();
        let slot = match field {
            0 => &mut v["v"],
            1 => &mut v["site"],
            2 => &mut v["seq"],
            3 => &mut v["readings"],
            4 => &mut v["readings"][0]["ts"],
            5 => &mut v["readings"][0]["value"],
            6 => &mut v["readings"][0]["unit"],
            7 => &mut v["readings"][1]["quality"],
            _ => &mut v["readings"][1]["device"],
        };
        *slot = replacement;
        if let Ok(m) = check(TELEMETRY, &v) {
            prop_assert!(matches!(&m, Message::Telemetry(t) if &*t.envelope.site == "S-1" && &*t.envelope.gateway == "gw-1"));
        }
    }
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

//! Occurrences from alarm events: order, redelivery, acknowledgement, export.

use super::*;
use hazgate_wire::{Acknowledgement, Condition, Envelope};

fn event(seq: u64, kind: EventKind, level: Option<Level>, ts: i64) -> AlarmEvent {
    AlarmEvent {
        envelope: Envelope {
            v: 1,
            site: "HB-420100-0001".into(),
            gateway: "gw-01".into(),
            seq,
        },
        event: kind,
        condition: Condition::Limit,
        device: Some("GD-101".into()),
        point: Some("CH1".into()),
        hazard_source: Some("HS-01".into()),
        level,
        previous: None,
        value: Some(30.0),
        crossed: None,
        limit: Some(25.0),
        unit: Some("%LEL".into()),
        label: Some("一级报警".into()),
        ts,
        occurrence: Some("1000-0a0b0c0d".into()),
        ack: None,
    }
}

fn acked(seq: u64, ts: i64, by: &str) -> AlarmEvent {
    AlarmEvent {
        ack: Some(Acknowledgement {
            by: by.into(),
            at: ts - 10,
            note: Some("已到现场".into()),
            command: Some("c-1".into()),
        }),
        ..event(seq, EventKind::Ack, Some(Level::Yellow), ts)
    }
}

async fn db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let db = Db::open(&url).await.unwrap();
    (dir, db)
}

async fn state(db: &Db) -> Occurrence {
    get(db, "HB-420100-0001", "gw-01", "1000-0a0b0c0d")
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn events_in_order_late_and_twice() {
    use EventKind::*;
    use Level::*;
    let raise = event(1, Raise, Some(Yellow), 1000);
    let up = event(2, Escalate, Some(Red), 2000);
    let ack = acked(3, 2500, "张三");
    let clear = event(4, Clear, None, 3000);
    // (what, events fed in this order, level, max, cleared, acked_by, cleared_unacked, log entries)
    #[allow(clippy::type_complexity)]
    let rows: Vec<(
        &str,
        Vec<&AlarmEvent>,
        Option<&str>,
        &str,
        Option<i64>,
        Option<&str>,
        bool,
        usize,
    )> = vec![
        (
            "in order",
            vec![&raise, &up, &ack, &clear],
            None,
            "red",
            Some(3000),
            Some("张三"),
            false,
            4,
        ),
        (
            "each twice",
            vec![&raise, &raise, &up, &up, &ack, &ack],
            Some("red"),
            "red",
            None,
            Some("张三"),
            false,
            3,
        ),
        (
            "clear before anybody answered",
            vec![&raise, &clear],
            None,
            "yellow",
            Some(3000),
            None,
            true,
            2,
        ),
        (
            "a late escalation never reopens",
            vec![&raise, &clear, &up],
            None,
            "red",
            Some(3000),
            None,
            true,
            3,
        ),
        (
            "the raise arrives last",
            vec![&up, &raise],
            Some("red"),
            "red",
            None,
            None,
            false,
            2,
        ),
    ];
    for (what, events, level, max, cleared, by, unacked, entries) in rows {
        let (_dir, db) = db().await;
        for e in events {
            record(&db, std::slice::from_ref(e)).await.unwrap();
        }
        let o = state(&db).await;
        assert_eq!(o.level.as_deref(), level, "{what}");
        assert_eq!(o.max_level, max, "{what}");
        assert_eq!(o.cleared_ts, cleared, "{what}");
        assert_eq!(o.acked_by.as_deref(), by, "{what}");
        assert_eq!(o.cleared_unacked, unacked, "{what}");
        assert_eq!(o.opened_ts, 1000.min(o.opened_ts), "{what}");
        let log = timeline(&db, "HB-420100-0001", "gw-01", "1000-0a0b0c0d")
            .await
            .unwrap();
        assert_eq!(log.len(), entries, "{what}: {log:#?}");
    }
}

#[tokio::test]
async fn an_escalation_after_the_acknowledgement_asks_again() {
    let (_dir, db) = db().await;
    record(
        &db,
        &[event(1, EventKind::Raise, Some(Level::Yellow), 1000)],
    )
    .await
    .unwrap();
    record(&db, &[acked(2, 1500, "张三")]).await.unwrap();
    assert_eq!(state(&db).await.confirmed_ts, Some(1500));
    record(
        &db,
        &[event(3, EventKind::Escalate, Some(Level::Red), 2000)],
    )
    .await
    .unwrap();
    let o = state(&db).await;
    assert_eq!(o.acked_by, None);
    assert_eq!(o.confirmed_ts, None);
    assert_eq!(o.level.as_deref(), Some("red"));
}

#[tokio::test]
async fn the_record_exports_as_csv_for_a_site_and_period() {
    let (_dir, db) = db().await;
    let mut e = event(1, EventKind::Raise, Some(Level::Yellow), 1000);
    e.label = Some("=HYPERLINK(\"x\"),一级".into());
    record(&db, &[e, acked(2, 1500, "张三")]).await.unwrap();
    let csv = export_csv(&db, "HB-420100-0001", 0, 2000).await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with('\u{feff}'));
    assert!(
        lines[1].contains("raise") && lines[1].contains("\"'=HYPERLINK(\"\"x\"\"),一级\""),
        "{csv}"
    );
    assert!(
        lines[2].contains("ack_confirmed,yellow,张三,已到现场"),
        "{csv}"
    );
    assert_eq!(
        export_csv(&db, "HB-420100-0001", 1200, 1400)
            .await
            .unwrap()
            .lines()
            .count(),
        1
    );
    assert_eq!(
        export_csv(&db, "other", 0, 2000)
            .await
            .unwrap()
            .lines()
            .count(),
        1
    );
}

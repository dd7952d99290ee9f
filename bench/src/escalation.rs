//! Call-response under load: with 1,000 occurrences open (and already told), 100 new red
//! alarms a second across 200 sites for 10 s; how long from an alarm event reaching the
//! supervision database to its first notification arriving at a webhook (tier 1, "at
//! once"). Target: p99 within 1 s. In process: the database (SQLite, in a file), the
//! escalation loop and the notifier as hazingest runs them, a local HTTP receiver.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use hazgate_e2e::now_ms;
use hazgate_e2e::receivers::{Answer, HttpReceiver};
use hazgate_wire::{AlarmEvent, Condition, Envelope, EventKind, Level};
use hazingest::notify::Notifier;
use hazingest::supervise::db::Db;
use hazingest::supervise::escalation::Escalator;
use hazingest::supervise::occurrences;

use crate::report::{machine, verdict, Table};

const STANDING: usize = 1000;
const SITES: usize = 200;
const RATE: usize = 100;
const SECONDS: usize = 10;

fn raise(site: usize, seq: u64, n: usize) -> AlarmEvent {
    let ts = now_ms();
    AlarmEvent {
        envelope: Envelope {
            v: 1,
            site: format!("HB-4201{:02}-{site:04}", site % 100).into(),
            gateway: "gw-01".into(),
            seq,
        },
        event: EventKind::Raise,
        condition: Condition::Limit,
        device: Some(format!("GD-{n}").into()),
        point: Some("CH1".into()),
        hazard_source: Some("HS-01".into()),
        level: Some(Level::Red),
        previous: None,
        value: Some(60.0),
        crossed: None,
        limit: Some(50.0),
        unit: Some("%LEL".into()),
        label: Some("二级报警".into()),
        ts,
        occurrence: Some(
            hazgate_wire::occurrence_id(&format!("GD-{n}"), "CH1", Condition::Limit, ts).into(),
        ),
        ack: None,
    }
}

fn settings(url: &str) -> Result<firmware_config::escalation::Notify> {
    let text = format!(
        "[mqtt]\nbroker = \"mqtt://127.0.0.1:1883\"\n[store]\nurl = \"http://127.0.0.1:8428\"\n[[contact]]\nid = \"duty\"\nname = \"值班员\"\nwebhook = \"{url}\"\n[[escalation]]\nsites = [\"*\"]\ntiers = [{{ name = \"值班员\", contacts = [\"duty\"], red = \"0s\" }}]\n"
    );
    let source = firmware_config::error::SourceText::new("/tmp/bench-central.toml", text);
    match firmware_config::central::parse_central(&source) {
        Ok(c) => Ok(c.notify),
        Err(e) => bail!("{e}"),
    }
}

pub fn run() -> Result<Table> {
    let receiver = HttpReceiver::start(Answer::Ok("{}".into()))?;
    let dir = tempfile::tempdir()?;
    let rt = tokio::runtime::Runtime::new()?;
    let notify = settings(&receiver.url("/hook"))?;
    let (latencies, standing_took) = rt.block_on(async {
        let db = Db::open(&format!("sqlite://{}", dir.path().join("s.db").display())).await?;
        let notifier = Arc::new(Notifier::new(notify).map_err(anyhow::Error::msg)?);
        Escalator::spawn(db.clone(), notifier);
        let mut seqs = vec![0u64; SITES];
        let mut n = 0;
        // The standing alarms, told first.
        let start = Instant::now();
        let mut batch = Vec::new();
        for i in 0..STANDING {
            let s = i % SITES;
            seqs[s] += 1;
            n += 1;
            batch.push(raise(s, seqs[s], n));
            if batch.len() == 100 {
                occurrences::record(&db, &batch).await?;
                batch.clear();
            }
        }
        while receiver.received().len() < STANDING {
            if start.elapsed() > Duration::from_secs(120) {
                bail!("the standing alarms were not all told within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let standing_took = start.elapsed();
        // The measured load: 100 raises a second, recorded in batches of 10 every 100 ms
        // as the writer hands them over.
        let mut recorded: HashMap<String, i64> = HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        for _ in 0..(RATE * SECONDS / 10) {
            tick.tick().await;
            let mut batch = Vec::new();
            for _ in 0..10 {
                let s = n % SITES;
                seqs[s] += 1;
                n += 1;
                batch.push(raise(s, seqs[s], n));
            }
            occurrences::record(&db, &batch).await?;
            let at = now_ms();
            for e in &batch {
                recorded.insert(e.occurrence.as_deref().unwrap_or("").to_string(), at);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while receiver.received().len() < STANDING + RATE * SECONDS {
            if Instant::now() > deadline {
                bail!("only {} notifications arrived", receiver.received().len());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut latencies: Vec<f64> = receiver
            .received()
            .iter()
            .filter_map(|r| {
                let v: serde_json::Value = serde_json::from_str(&r.body).ok()?;
                let at = recorded.get(v["occurrence"].as_str()?)?;
                Some((r.at_ms - at).max(0) as f64)
            })
            .collect();
        latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
        Ok::<_, anyhow::Error>((latencies, standing_took))
    })?;
    if latencies.len() != RATE * SECONDS {
        bail!(
            "{} of {} notifications matched",
            latencies.len(),
            RATE * SECONDS
        );
    }
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    let (p50, p99) = (pct(0.50), pct(0.99));
    Ok(Table {
        title: "Call-response: alarm recorded -> first notification at a webhook".into(),
        header: vec![
            "open occurrences".into(),
            "new alarms".into(),
            "sites".into(),
            "p50".into(),
            "p99".into(),
            "max".into(),
            "target".into(),
        ],
        rows: vec![vec![
            format!("{STANDING} (+ the new ones)"),
            format!("{RATE}/s for {SECONDS} s"),
            SITES.to_string(),
            format!("{p50:.0} ms"),
            format!("{p99:.0} ms"),
            format!("{:.0} ms", latencies[latencies.len() - 1]),
            verdict(p99 <= 1000.0, "p99 within 1 s"),
        ]],
        notes: vec![format!(
            "SQLite supervision database in a file; the escalation loop looks every 250 ms; every notification is claimed, leased, sent and recorded as in hazingest. The {STANDING} standing alarms took {:.1} s to be told. {}.",
            standing_took.as_secs_f64(),
            machine()
        )],
    })
}

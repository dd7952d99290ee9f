//! Bytes on the wire per polled value over a simulated day of the shipped examples
//! (tank farm, tailings dam), with the default report settings and with today's "every
//! poll, plain JSON" for comparison. A day of polls at their configured intervals runs in
//! seconds, in one process, through the gateway's own code: hazsim's device models answer
//! the poll plan, the gateway decodes, derives, judges alarms, counts the five-minute
//! statistics, filters by exception and encodes; what would be published is counted as
//! MQTT frames (PUBLISH with topic and packet id, and its PUBACK), plus the status
//! message every health interval. Every alarm event, state and integrity report is counted.

use std::path::Path;

use anyhow::{Context, Result};

use firmware_config::SiteConfig;
use hazgate::alarm::AlarmEngine;
use hazgate::decode::decode_device;
use hazgate::derive::Deriver;
use hazgate::pipeline::report::ReportFilter;
use hazgate::pipeline::stats::PeriodStats;
use hazgate::poll::cycle::{BlockResult, DeviceImage};
use hazgate::poll::modbus::Response;
use hazgate::poll::plan::DevicePlan;
use hazgate_wire::payload::compress;
use hazgate_wire::{Envelope, Message, Stats, Telemetry, STATS_PERIOD_MS};
use hazsim::device::DeviceSim;

use crate::report::{machine, verdict, Table};

const DAY_MS: i64 = 86_400_000;
/// A day in 2026, at midnight UTC: statistics periods align as on a real gateway.
const START_MS: i64 = 1_780_000_000_000 / DAY_MS * DAY_MS;
const TARGET: f64 = 10.0;
/// TCP/IP headers per packet (IPv4 20 + TCP 20 with no options): what a 4G modem also
/// carries, shown apart since it depends on how packets coalesce.
const TCP_IP: usize = 40;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Every poll, plain JSON: the first releases.
    EveryPollJson,
    /// Report by exception, plain JSON (`[uplink] compress = "none"`).
    ExceptionJson,
    /// The defaults: report by exception, zstd.
    Defaults,
}

#[derive(Default)]
struct Count {
    polled: u64,
    published_readings: u64,
    messages: u64,
    mqtt_bytes: u64,
    alarm_events: u64,
    stats_messages: u64,
    /// The default mode's payloads deflated instead of zstd-compressed, for the record.
    deflate_bytes: u64,
    zstd_payload_bytes: u64,
    /// MQTT bytes by topic kind, and readings published per point.
    by_kind: std::collections::BTreeMap<&'static str, u64>,
    by_point: std::collections::BTreeMap<String, u64>,
}

impl Count {
    fn frame(&mut self, topic: &str, payload_len: usize) {
        let kind = ["telemetry", "alarm", "state", "status", "stats"]
            .into_iter()
            .find(|k| topic.ends_with(k))
            .unwrap_or("other");
        // PUBLISH QoS 1: fixed header (1 + remaining length), topic (2 + len), packet id 2.
        let remaining = 2 + topic.len() + 2 + payload_len;
        let len_bytes = match remaining {
            0..=127 => 1,
            128..=16_383 => 2,
            16_384..=2_097_151 => 3,
            _ => 4,
        };
        // And the broker's PUBACK (4 bytes) on the same link.
        let bytes = (1 + len_bytes + remaining + 4) as u64;
        self.mqtt_bytes += bytes;
        *self.by_kind.entry(kind).or_default() += bytes;
        self.messages += 1;
    }
}

fn simulate_day(site: &SiteConfig, mode: Mode) -> Result<Count> {
    let mut count = Count::default();
    let sims: Vec<DeviceSim> = site
        .devices
        .iter()
        .enumerate()
        .map(|(i, d)| DeviceSim::new(d, 7 + i as u64))
        .collect();
    let plans: Vec<DevicePlan> = site
        .devices
        .iter()
        .map(|d| DevicePlan::for_device(d, &site.buses[d.bus].link))
        .collect();
    let mut derive = Deriver::new(site, None);
    let mut alarms = AlarmEngine::new(site, None);
    let mut report = ReportFilter::new(site);
    let mut stats = PeriodStats::default();
    let topic = |kind: &str| format!("hazard/{}/{}/{kind}", site.site.id, site.site.gateway);
    let (t_telemetry, t_alarm, t_state, t_status, t_stats) = (
        topic("telemetry"),
        topic("alarm"),
        topic("state"),
        topic("status"),
        topic("stats"),
    );
    let envelope = |seq| Envelope {
        v: 1,
        site: site.site.id.as_str().into(),
        gateway: site.site.gateway.as_str().into(),
        seq,
    };
    let encode = |m: Message, count: &mut Count| -> usize {
        let json = m.to_json();
        match mode {
            Mode::Defaults => {
                let z = compress(&json);
                count.zstd_payload_bytes += z.len() as u64;
                count.deflate_bytes += deflate(&json) as u64;
                z.len()
            }
            _ => json.len(),
        }
    };
    let status_len = status_json_len(site);
    let status_every = site
        .uplink
        .as_ref()
        .map_or(30_000, |u| u.health_interval.as_millis() as i64);
    let mut next_poll: Vec<i64> = vec![0; site.devices.len()];
    let mut next_status = 0;
    let mut next_close = 1000;
    let mut seq = 1u64;
    loop {
        let (i, &t) = next_poll
            .iter()
            .enumerate()
            .min_by_key(|(_, t)| **t)
            .context("no devices")?;
        if t >= DAY_MS {
            break;
        }
        while next_status <= t {
            count.frame(&t_status, status_len);
            next_status += status_every;
        }
        while next_close <= t {
            for (from_ts, points) in stats.close_due(START_MS + next_close) {
                for chunk in points.chunks(500) {
                    let m = Message::Stats(Stats {
                        envelope: envelope(seq),
                        from_ts,
                        to_ts: from_ts + STATS_PERIOD_MS,
                        points: chunk.to_vec(),
                    });
                    seq += 1;
                    let len = if mode == Mode::EveryPollJson {
                        0
                    } else {
                        encode(m, &mut count)
                    };
                    if mode != Mode::EveryPollJson {
                        count.frame(&t_stats, len);
                        count.stats_messages += 1;
                    }
                }
            }
            next_close += 1000;
        }
        let device = &site.devices[i];
        let sim = &sims[i];
        sim.refresh(t as f64 / 1000.0);
        let image = {
            let st = sim.lock();
            DeviceImage {
                results: plans[i]
                    .blocks
                    .iter()
                    .map(|b| {
                        let from = b.start as usize;
                        let to = from + b.count as usize;
                        let data = if b.kind.is_bit() {
                            Response::Bits(st.bank.bits(b.kind)[from..to].to_vec())
                        } else {
                            Response::Words(st.bank.registers(b.kind)[from..to].to_vec())
                        };
                        BlockResult {
                            ts: START_MS + t,
                            data: Ok(data),
                        }
                    })
                    .collect(),
            }
        };
        let mut readings = decode_device(device, &plans[i], &image);
        derive.apply(t, &mut readings);
        count.polled += readings.len() as u64;
        let events = alarms.evaluate(t, &mut readings);
        for mut e in events {
            e.envelope = envelope(seq);
            seq += 1;
            count.alarm_events += 1;
            let json = Message::Alarm(e).to_json();
            count.frame(&t_alarm, json.len());
            // Each alarm event also changes the retained state.
            count.frame(&t_state, 600);
        }
        stats.add(&readings);
        if mode != Mode::EveryPollJson {
            report.retain(t, &mut readings);
        }
        if !readings.is_empty() {
            count.published_readings += readings.len() as u64;
            for r in &readings {
                *count
                    .by_point
                    .entry(format!("{}.{}", r.device, r.point))
                    .or_default() += 1;
            }
            for chunk in readings.chunks(500) {
                let m = Message::Telemetry(Telemetry {
                    envelope: envelope(seq),
                    readings: chunk.to_vec(),
                });
                seq += 1;
                let len = encode(m, &mut count);
                count.frame(&t_telemetry, len);
            }
        }
        next_poll[i] = t + device.poll.as_millis() as i64;
    }
    Ok(count)
}

/// The status message's size with a realistic health report.
fn status_json_len(site: &SiteConfig) -> usize {
    let status = serde_json::json!({"kind":"status","v":1,"site":site.site.id,"gateway":site.site.gateway,
        "seq":4294967297u64,"state":"online","ts":1763910030000i64,"version":"0.1.0","config_hash":"5bf7174cea6bd81d",
        "boot_ts":1763909000000i64,"health":{"telemetry":{"depth":2,"bytes":81234,"oldest_unsent_age_ms":900,"evicted":0},
        "alarm":{"depth":0,"bytes":0,"oldest_unsent_age_ms":0,"evicted":0},"poll_errors":3,"overruns":0,
        "broker_rtt_ms":2,"store_failed":false,"clock_steps":0},"clock_ok":true,"health_every_ms":30000});
    status.to_string().len()
}

fn deflate(data: &[u8]) -> usize {
    use std::io::Write;
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = e.write_all(data);
    e.finish().map(|v| v.len()).unwrap_or(data.len())
}

pub fn run(root: &Path) -> Result<Table> {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for example in ["tank-farm", "tailings-dam"] {
        let site = firmware_config::load_site(&root.join(format!("examples/{example}.toml")))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for (mode, what) in [
            (
                Mode::EveryPollJson,
                "every poll, plain JSON (first releases)",
            ),
            (Mode::ExceptionJson, "report by exception, plain JSON"),
            (Mode::Defaults, "defaults: report by exception, zstd"),
        ] {
            let c = simulate_day(&site, mode)?;
            let per = c.mqtt_bytes as f64 / c.polled.max(1) as f64;
            let with_ip =
                (c.mqtt_bytes + c.messages * TCP_IP as u64) as f64 / c.polled.max(1) as f64;
            rows.push(vec![
                example.to_string(),
                what.to_string(),
                format!("{}", c.polled),
                format!(
                    "{:.1} %",
                    100.0 * c.published_readings as f64 / c.polled.max(1) as f64
                ),
                format!("{}", c.messages),
                format!("{:.1} MB", c.mqtt_bytes as f64 / 1e6),
                format!("{per:.2}"),
                format!("{with_ip:.2}"),
                if mode == Mode::Defaults {
                    verdict(per <= TARGET, &format!("≤ {TARGET:.0} B per value"))
                } else {
                    "–".into()
                },
            ]);
            if mode == Mode::Defaults {
                let mut top: Vec<_> = c.by_point.iter().collect();
                top.sort_by_key(|(_, n)| std::cmp::Reverse(**n));
                eprintln!(
                    "{example}: bytes by topic {:?}; most published points {:?}",
                    c.by_kind,
                    &top[..top.len().min(10)]
                );
                notes.push(format!(
                    "{example}: {} alarm events and {} statistics messages in the day, all counted; payloads zstd {:.2} MB, the same deflated {:.2} MB.",
                    c.alarm_events,
                    c.stats_messages,
                    c.zstd_payload_bytes as f64 / 1e6,
                    c.deflate_bytes as f64 / 1e6
                ));
            }
        }
    }
    notes.push(format!(
        "A simulated day (86,400 s of polls at each device's interval, hazsim's device models with their noise and daily cycles) through the gateway's decode, derive, alarm, statistics, report and encode code in one process. Bytes are MQTT frames: PUBLISH (header, topic, packet id, payload) and its PUBACK, with telemetry sent per device poll (least batching, as on a quiet link), a status with health every `[uplink] health_interval` (tank farm 30 s, tailings dam 5 min on its 4G link), and a state per alarm event. The last column adds 40 B of TCP/IP headers per message. {}.",
        machine()
    ));
    Ok(Table {
        title: "Bytes on the wire per polled value, a simulated day".into(),
        header: [
            "example",
            "settings",
            "polled values",
            "published",
            "messages",
            "MQTT bytes",
            "B/value",
            "B/value with TCP/IP",
            "target",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        notes,
    })
}

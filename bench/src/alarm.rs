//! The per-point alarm state machine's cost: evaluations per second on one core.
//!
//! 1,000 gas points polled once a second for 1,000 s: values wander in the normal range
//! (5–15 %LEL), now and then a point has a leak that ramps up through one or both limits,
//! holds and falls back; a few polls time out (some points lose their line for a minute,
//! which raises comm loss) and a few report a sensor fault. The readings are generated
//! before the clock starts; the timed loop only feeds them to the points, reading by
//! reading in time order as the engine would.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::Result;
use firmware_config::alarm::{AlarmSpec, Direction, Level, Limit, RateLimit};
use hazgate::alarm::point::PointAlarm;
use hazgate::{Quality, Reason};

use crate::report::{machine, Table};

const POINTS: usize = 1_000;
const STEPS: usize = 1_000;
const RUN: Duration = Duration::from_secs(3);
const TARGET: f64 = 1_000_000.0;

/// xorshift64*: small, fast, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A gas detector channel as a site would configure it (GB/T 50493: 25 / 50 %LEL).
fn gas_spec() -> AlarmSpec {
    AlarmSpec {
        unit: Some("%LEL".into()),
        limits: vec![
            Limit {
                direction: Direction::Above,
                value: 25.0,
                level: Level::Yellow,
                label: Some("一级报警".into()),
            },
            Limit {
                direction: Direction::Above,
                value: 50.0,
                level: Level::Red,
                label: Some("二级报警".into()),
            },
        ],
        deadband: 2.0,
        on_delay: Duration::from_secs(2),
        off_delay: Duration::from_secs(5),
        rate: None,
        comm_loss: Some((Duration::from_secs(30), Level::Orange)),
        sensor_fault: Some(Level::Yellow),
        out_of_range: None,
        calibration: None,
        stuck: None,
        jump: None,
        linkage: Vec::new(),
    }
}

fn every_condition() -> AlarmSpec {
    AlarmSpec {
        rate: Some(RateLimit {
            change: 10.0,
            window: Duration::from_secs(60),
            direction: firmware_config::alarm::RateDirection::Both,
            level: Level::Orange,
            label: None,
        }),
        out_of_range: Some(Level::Blue),
        ..gas_spec()
    }
}

#[derive(Clone, Copy)]
struct Sample {
    value: f64,
    /// Index into the qualities: good, timeout, sensor fault, out of range.
    quality: u8,
}

/// `STEPS` readings of each point, step-major (all points of second 0, then of second 1…).
fn workload() -> Vec<Sample> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = vec![
        Sample {
            value: 0.0,
            quality: 0
        };
        POINTS * STEPS
    ];
    for p in 0..POINTS {
        let mut base = 10.0;
        let mut leak: Option<(usize, f64)> = None; // (start step, peak)
        let mut outage = 0usize;
        for s in 0..STEPS {
            base = (base + (rng.unit() - 0.5) * 0.6).clamp(5.0, 15.0);
            // About one leak per point per 1,000 s; a third of them reach the red level.
            if leak.is_none() && rng.unit() < 0.001 {
                let peak = if rng.unit() < 0.33 { 65.0 } else { 35.0 };
                leak = Some((s, peak));
            }
            let mut value = base;
            if let Some((start, peak)) = leak {
                // Up 3 %LEL/s, hold 20 s, down 2 %LEL/s.
                let t = (s - start) as f64;
                let up = (t * 3.0).min(peak);
                let held = start as f64 + peak / 3.0 + 20.0;
                let excess = if (s as f64) < held {
                    up
                } else {
                    peak - (s as f64 - held) * 2.0
                };
                if (s as f64) >= held && excess <= 0.0 {
                    leak = None;
                } else {
                    value = base + excess;
                }
            }
            if outage == 0 && rng.unit() < 0.0002 {
                outage = 60; // a line down for a minute: comm loss after 30 s
            }
            let quality = if outage > 0 {
                outage -= 1;
                1
            } else {
                let r = rng.unit();
                if r < 0.005 {
                    1
                } else if r < 0.0055 {
                    2
                } else if r < 0.006 {
                    3
                } else {
                    0
                }
            };
            out[s * POINTS + p] = Sample { value, quality };
        }
    }
    out
}

struct Figures {
    evaluations: u64,
    events: u64,
    secs: f64,
}

fn measure(spec: &AlarmSpec, samples: &[Sample]) -> Figures {
    let qualities = [
        Quality::Good,
        Quality::bad(Reason::Timeout, "no reply within 500 ms"),
        Quality::bad(
            Reason::SensorFault,
            "loop current 2.1 mA: transmitter fault (NE43)",
        ),
        Quality::uncertain(
            Reason::OutOfRange,
            "loop current 20.7 mA is outside 3.8..20.5 mA (NE43)",
        ),
    ];
    let mut points: Vec<PointAlarm> = (0..POINTS).map(|_| PointAlarm::new(spec.clone())).collect();
    let t0: i64 = 1_700_000_000_000;
    let (mut evaluations, mut events, mut pass) = (0u64, 0u64, 0i64);
    let start = Instant::now();
    while start.elapsed() < RUN {
        for (s, row) in samples.chunks_exact(POINTS).enumerate() {
            let ts = t0 + (pass * STEPS as i64 + s as i64) * 1_000;
            for (p, x) in points.iter_mut().zip(row) {
                let q = &qualities[usize::from(x.quality)];
                let value = (x.quality == 0 || x.quality == 3).then_some(x.value);
                events += black_box(p.evaluate(ts, value, q)).len() as u64;
            }
        }
        evaluations += samples.len() as u64;
        pass += 1;
    }
    Figures {
        evaluations,
        events,
        secs: start.elapsed().as_secs_f64(),
    }
}

pub fn run() -> Result<Table> {
    let samples = workload();
    let crossing = samples
        .iter()
        .filter(|s| s.quality == 0 && s.value >= 25.0)
        .count();
    let failed = samples.iter().filter(|s| s.quality == 1).count();
    let mut rows = Vec::new();
    let mut main_rate = 0.0;
    for (name, spec) in [
        (
            "2 limits, deadband, delays, comm loss, sensor fault",
            gas_spec(),
        ),
        (
            "the same plus rate of change and out of range",
            every_condition(),
        ),
    ] {
        let f = measure(&spec, &samples);
        let rate = f.evaluations as f64 / f.secs;
        if main_rate == 0.0 {
            main_rate = rate;
        }
        rows.push(vec![
            name.to_string(),
            format!("{:.0}", rate),
            format!("{:.1}", 1e9 / rate),
            format!("{:.0}", f.events as f64 / f.evaluations as f64 * 1e6),
        ]);
    }
    Ok(Table {
        title: "Alarm evaluation (per point, one core)".into(),
        header: vec![
            "spec".into(),
            "evaluations/s".into(),
            "ns/evaluation".into(),
            "events per million".into(),
        ],
        rows,
        notes: vec![
            format!(
                "{POINTS} points x {STEPS} one-second polls, repeated for {}s on one thread of {}: {:.1} % of the readings above the lowest limit, {:.2} % failed polls (some in one-minute outages).",
                RUN.as_secs(),
                machine(),
                crossing as f64 / samples.len() as f64 * 100.0,
                failed as f64 / samples.len() as f64 * 100.0,
            ),
            format!(
                "Target: at least {:.0} evaluations/s: {:.0} ({}).",
                TARGET,
                main_rate,
                if main_rate >= TARGET { "met" } else { "NOT met" }
            ),
        ],
    })
}

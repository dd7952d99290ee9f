//! Report by exception: which readings go on the wire. Every poll has been judged for
//! alarms before this; a reading is published when its value moved past the point's
//! deadband since the last published value, when its quality or flags change, or when the
//! point's integrity period has passed since it was last published (the proof that a
//! quiet point is alive).
//!
//! When a device's poll sends anything, its points more than half-way through their
//! integrity period ride along: their reports then fall due together, one message per
//! device and period rather than one per point, which on a metered link is most of the
//! bytes of a quiet site.

use firmware_config::profile::report::Report;
use firmware_config::SiteConfig;
use hazgate_wire::{Quality, Reading, Value};

use super::point_map::PointMap;

/// What was last published of a point: enough to judge the next reading, nothing more.
#[derive(Debug)]
struct Published {
    value: Option<Value>,
    /// 0 good, 1 uncertain, 2 bad, and the reason: a new detail text alone is no change.
    quality: (u8, Option<hazgate_wire::Reason>),
    flags: u32,
    /// Monotonic ms.
    at: i64,
}

#[derive(Debug)]
struct Slot {
    report: Report,
    last: Option<Published>,
}

pub struct ReportFilter {
    points: PointMap<Slot>,
}

impl ReportFilter {
    pub fn new(site: &SiteConfig) -> ReportFilter {
        let mut f = ReportFilter {
            points: PointMap::default(),
        };
        f.reconfigure(site);
        f
    }

    /// New settings; what was last published stays the reference.
    pub fn reconfigure(&mut self, site: &SiteConfig) {
        let mut next = PointMap::default();
        let mut keep = |device: &str, point: &str, report: Report| {
            let last = self
                .points
                .get_mut(device, point)
                .and_then(|s| s.last.take());
            next.slot(device, point, || Slot { report, last });
        };
        for d in &site.devices {
            for p in d.points.iter().filter(|p| p.publish) {
                keep(&d.id, &p.id, p.report);
            }
        }
        for x in &site.derived {
            keep(&site.devices[x.device].id, &x.id, x.report);
        }
        self.points = next;
    }

    /// Keeps the readings to publish; `clock` is the acquisition's monotonic ms.
    pub fn retain(&mut self, clock: i64, readings: &mut Vec<Reading>) {
        // A batch is one device's poll: the device is found once per run of its readings.
        let mut keep = Vec::with_capacity(readings.len());
        for run in readings.chunk_by(|a, b| a.device == b.device) {
            let mut points = self.points.device_mut(&run[0].device);
            let first = keep.len();
            for r in run {
                let slot = points.as_deref_mut().and_then(|p| p.get_mut(&r.point));
                keep.push(judge(slot, clock, r));
            }
            if !keep[first..].contains(&Verdict::Send) {
                continue;
            }
            for (r, v) in run.iter().zip(&mut keep[first..]) {
                if *v == Verdict::RideAlong {
                    if let Some(slot) = points.as_deref_mut().and_then(|p| p.get_mut(&r.point)) {
                        slot.last = Some(Published::of(r, clock));
                    }
                    *v = Verdict::Send;
                }
            }
        }
        let mut keep = keep.into_iter();
        readings.retain(|_| keep.next().is_none_or(|v| v == Verdict::Send));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Send,
    /// Not due, but past half its integrity period: sent if its device sends anyway.
    RideAlong,
    Hold,
}

impl Published {
    fn of(r: &Reading, clock: i64) -> Published {
        Published {
            value: r.value.clone(),
            quality: quality_of(&r.quality),
            flags: flags_of(r),
            at: clock,
        }
    }
}

fn flags_of(r: &Reading) -> u32 {
    r.flags.iter().fold(0, |m, f| m | f.bit())
}

/// Whether a reading goes out, given its point's slot (which records it if so).
fn judge(slot: Option<&mut Slot>, clock: i64, r: &Reading) -> Verdict {
    // A point the site does not list (cannot happen after a reload settles) goes out.
    let Some(slot) = slot else {
        return Verdict::Send;
    };
    let (deadband, every) = match slot.report {
        Report::EveryPoll => return Verdict::Send,
        Report::Exception { deadband, every } => (deadband, every.as_millis() as i64),
    };
    let verdict = match &slot.last {
        None => Verdict::Send,
        Some(last) => {
            let age = clock - last.at;
            if age >= every
                || last.quality != quality_of(&r.quality)
                || last.flags != flags_of(r)
                || moved(&last.value, &r.value, deadband)
            {
                Verdict::Send
            } else if age >= every / 2 {
                Verdict::RideAlong
            } else {
                Verdict::Hold
            }
        }
    };
    if verdict == Verdict::Send {
        slot.last = Some(Published::of(r, clock));
    }
    verdict
}

fn quality_of(q: &Quality) -> (u8, Option<hazgate_wire::Reason>) {
    match q {
        Quality::Good => (0, None),
        Quality::Uncertain { reason, .. } => (1, Some(*reason)),
        Quality::Bad { reason, .. } => (2, Some(*reason)),
    }
}

/// Whether a value moved past the deadband (a number), or changed at all (anything else).
fn moved(before: &Option<Value>, now: &Option<Value>, deadband: f64) -> bool {
    match (before, now) {
        (Some(Value::Number(a)), Some(Value::Number(b))) => {
            if deadband > 0.0 {
                (b - a).abs() > deadband
            } else {
                a != b
            }
        }
        (a, b) => a != b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hazgate_wire::{Flag, Reason};

    fn site(report: &str) -> SiteConfig {
        let text = format!(
            "[site]\nid = \"S\"\ngateway = \"G\"\n[[bus]]\nid = \"b\"\ntcp = {{ host = \"127.0.0.1\", port = 1 }}\n[[device]]\nid = \"D\"\nbus = \"b\"\nunit = 1\nprofile = \"gas-detector-4ch\"\npoll = \"1s\"\n[device.points.CH1]\nreport = {report}\n"
        );
        firmware_config::site::parse_site(&firmware_config::error::SourceText::new(
            "/tmp/site.toml",
            text,
        ))
        .unwrap()
    }

    fn reading(v: f64) -> Reading {
        Reading {
            device: "D".into(),
            point: "CH1".into(),
            ts: 0,
            value: Some(Value::Number(v)),
            unit: None,
            quality: Quality::Good,
            flags: Vec::new(),
        }
    }

    fn sent(f: &mut ReportFilter, clock: i64, r: Reading) -> bool {
        let mut v = vec![r];
        f.retain(clock, &mut v);
        v.len() == 1
    }

    #[test]
    fn deadband_quality_flags_and_integrity() {
        let mut f = ReportFilter::new(&site("{ deadband = 0.5, every = \"1min\" }"));
        assert!(sent(&mut f, 0, reading(10.0)), "the first reading");
        assert!(!sent(&mut f, 1000, reading(10.4)), "within the deadband");
        assert!(!sent(&mut f, 2000, reading(10.5)), "at it is not past it");
        assert!(sent(&mut f, 3000, reading(10.51)), "just past it");
        assert!(
            !sent(&mut f, 4000, reading(10.2)),
            "measured from the last published"
        );
        let mut bad = reading(10.2);
        bad.quality = Quality::bad(Reason::Timeout, "no reply");
        bad.value = None;
        assert!(sent(&mut f, 5000, bad.clone()), "quality changed");
        bad.quality = Quality::bad(Reason::Timeout, "still no reply");
        assert!(!sent(&mut f, 6000, bad), "a new detail alone is no change");
        assert!(sent(&mut f, 7000, reading(10.2)), "good again");
        let mut flagged = reading(10.2);
        flagged.flags = vec![Flag::StuckValue];
        assert!(sent(&mut f, 8000, flagged), "flags changed");
        assert!(sent(&mut f, 9000, reading(10.2)), "flags cleared");
        assert!(!sent(&mut f, 68_999, reading(10.2)));
        assert!(sent(&mut f, 69_000, reading(10.2)), "the integrity report");
        // Other points of the device keep their profile's setting.
        let mut other = reading(1.0);
        other.point = "CH2".into();
        assert!(sent(&mut f, 0, other.clone()));
        assert!(!sent(&mut f, 1000, other));
    }

    #[test]
    fn a_device_sending_anyway_takes_its_points_past_half_their_period_along() {
        let mut f = ReportFilter::new(&site("{ deadband = 0.5, every = \"1min\" }"));
        let batch = |ch1: f64, ch2: f64| {
            let mut other = reading(ch2);
            other.point = "CH2".into();
            vec![reading(ch1), other]
        };
        let kept = |f: &mut ReportFilter, clock: i64, mut v: Vec<Reading>| {
            f.retain(clock, &mut v);
            v.iter().map(|r| r.point.to_string()).collect::<Vec<_>>()
        };
        // CH1 reports at least every minute (the site), CH2 every 5 minutes (its profile).
        assert_eq!(kept(&mut f, 0, batch(10.0, 1.0)), ["CH1", "CH2"]);
        // CH1 moves at 100 s: CH2, a third through its period, stays home.
        assert_eq!(kept(&mut f, 100_000, batch(11.0, 1.0)), ["CH1"]);
        // CH1 moves at 160 s: CH2, past half its period, rides along.
        assert_eq!(kept(&mut f, 160_000, batch(12.0, 1.0)), ["CH1", "CH2"]);
        // Nothing moves and nothing is due: nothing goes.
        assert!(kept(&mut f, 200_000, batch(12.0, 1.0)).is_empty());
        // CH1's integrity report at 220 s; CH2 (60 s old) stays home.
        assert_eq!(kept(&mut f, 220_000, batch(12.0, 1.0)), ["CH1"]);
    }

    #[test]
    fn every_poll_keeps_every_reading() {
        let mut f = ReportFilter::new(&site("\"every_poll\""));
        for t in 0..5 {
            assert!(sent(&mut f, t * 1000, reading(10.0)));
        }
    }
}

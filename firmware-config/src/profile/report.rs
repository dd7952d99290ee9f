//! When a point's reading is published (report by exception): every poll is judged for
//! alarms at the edge either way; this only decides what goes on the wire.
//!
//! ```toml
//! report = { deadband = 0.5, every = "5min" }   # absolute, in the point's unit
//! report = { deadband = "1%", every = "10min" } # of the measuring range
//! report = "every_poll"                         # every reading, as before
//! ```
//!
//! Without a setting a point reports any change, and at least every 5 minutes.

use std::fmt;
use std::time::Duration;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::error::Diagnostics;
use crate::serde_types::Interval;

/// The integrity report's default period: a point that does not move still proves it is
/// alive this often.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(300);
/// Bounds of `every`: not more often than a poll could matter, not so rarely that the
/// central side takes a quiet point for a dead one.
pub const MIN_EVERY: Duration = Duration::from_secs(1);
pub const MAX_EVERY: Duration = Duration::from_secs(3600);

/// A point's report setting, resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Report {
    /// Every reading is published.
    EveryPoll,
    /// Published when the value moved more than `deadband` (engineering units) since the
    /// last published one, when quality or flags change, and at least every `every`.
    Exception { deadband: f64, every: Duration },
}

impl Default for Report {
    fn default() -> Self {
        Report::Exception {
            deadband: 0.0,
            every: DEFAULT_EVERY,
        }
    }
}

impl Report {
    /// The longest a living point stays silent on the wire (`None`: every poll).
    pub fn every(&self) -> Option<Duration> {
        match self {
            Report::EveryPoll => None,
            Report::Exception { every, .. } => Some(*every),
        }
    }
}

/// `report` as written.
#[derive(Debug, Clone)]
pub enum RawReport {
    Mode(String),
    Table {
        deadband: Option<RawDeadband>,
        every: Option<Interval>,
    },
}

/// A deadband as written: a number in the point's unit, or "N%" of its range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RawDeadband {
    Absolute(f64),
    PercentOfRange(f64),
}

impl<'de> Deserialize<'de> for RawDeadband {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawDeadband;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a number in the point's unit, or a percentage of its range such as \"1%\"",
                )
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawDeadband, E> {
                Ok(RawDeadband::Absolute(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawDeadband, E> {
                Ok(RawDeadband::Absolute(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawDeadband, E> {
                Ok(RawDeadband::Absolute(v as f64))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawDeadband, E> {
                s.trim()
                    .strip_suffix('%')
                    .and_then(|n| n.trim().parse::<f64>().ok())
                    .map(RawDeadband::PercentOfRange)
                    .ok_or_else(|| E::custom(format!("\"{s}\" is not a percentage; write e.g. \"1%\", or a plain number in the point's unit")))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawReport {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            deadband: Option<RawDeadband>,
            every: Option<Interval>,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawReport;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"every_poll\" or a table { deadband = 0.5, every = \"5min\" }")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawReport, E> {
                Ok(RawReport::Mode(s.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawReport, A::Error> {
                let t = Table::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawReport::Table {
                    deadband: t.deadband,
                    every: t.every,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Resolves a point's `report`: `span` is the width of its measuring range (or 4–20 mA
/// span), which a percentage needs; `numeric` says whether a deadband can apply at all.
pub fn resolve(
    raw: Option<&Spanned<RawReport>>,
    span: Option<f64>,
    numeric: bool,
    diag: &mut Diagnostics,
    label: &str,
) -> Report {
    let Some(raw) = raw else {
        return Report::default();
    };
    let at = Some(raw.span());
    let field = format!("{label}.report");
    match raw.get_ref() {
        RawReport::Mode(m) if m == "every_poll" => Report::EveryPoll,
        RawReport::Mode(m) => {
            diag.error(
                at,
                field,
                format!("\"{m}\" is not a report mode; write \"every_poll\" or a table {{ deadband = 0.5, every = \"5min\" }}"),
            );
            Report::default()
        }
        RawReport::Table { deadband, every } => {
            let every = every.map_or(DEFAULT_EVERY, |i| i.0);
            if !(MIN_EVERY..=MAX_EVERY).contains(&every) {
                diag.error(
                    at.clone(),
                    format!("{field}.every"),
                    format!(
                        "{every:?} is outside 1s..=1h: the integrity report is how the central side knows a quiet point is alive"
                    ),
                );
            }
            let deadband = match deadband {
                None => 0.0,
                Some(_) if !numeric => {
                    diag.error(
                        at.clone(),
                        format!("{field}.deadband"),
                        "only numeric points take a deadband; this one reports every change",
                    );
                    0.0
                }
                Some(RawDeadband::Absolute(x)) if x.is_finite() && *x >= 0.0 => *x,
                Some(RawDeadband::PercentOfRange(p))
                    if p.is_finite() && (0.0..=100.0).contains(p) =>
                {
                    match span {
                        Some(w) => w.abs() * p / 100.0,
                        None => {
                            diag.error(
                                at.clone(),
                                format!("{field}.deadband"),
                                "a deadband in % needs the point's `range` (or `current_loop`); give one, or write the deadband in the point's unit",
                            );
                            0.0
                        }
                    }
                }
                Some(_) => {
                    diag.error(
                        at.clone(),
                        format!("{field}.deadband"),
                        "must be zero or more (a percentage: 0% to 100%)",
                    );
                    0.0
                }
            };
            Report::Exception { deadband, every }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<RawReport, String> {
        #[derive(Deserialize)]
        struct W {
            report: RawReport,
        }
        toml::from_str::<W>(toml_text)
            .map(|w| w.report)
            .map_err(|e| e.to_string())
    }

    fn resolved(toml_text: &str, span: Option<f64>, numeric: bool) -> (Report, Vec<String>) {
        #[derive(Deserialize)]
        struct W {
            report: Spanned<RawReport>,
        }
        let w: W = toml::from_str(toml_text).unwrap();
        let source = crate::error::SourceText::new("t.toml", toml_text);
        let mut diag = Diagnostics::new(&source);
        let r = resolve(Some(&w.report), span, numeric, &mut diag, "p");
        (r, diag.errors.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn forms() {
        assert!(
            matches!(parse("report = \"every_poll\"").unwrap(), RawReport::Mode(m) if m == "every_poll")
        );
        assert_eq!(
            resolved("report = { deadband = 0.5, every = \"2min\" }", None, true).0,
            Report::Exception {
                deadband: 0.5,
                every: Duration::from_secs(120)
            }
        );
        assert_eq!(
            resolved("report = { deadband = \"2%\" }", Some(100.0), true).0,
            Report::Exception {
                deadband: 2.0,
                every: DEFAULT_EVERY
            }
        );
        assert_eq!(
            resolved("report = \"every_poll\"", None, true).0,
            Report::EveryPoll
        );
        let source = crate::error::SourceText::new("t.toml", "");
        assert_eq!(
            resolve(None, None, true, &mut Diagnostics::new(&source), "p"),
            Report::default()
        );
    }

    #[test]
    fn mistakes_are_named() {
        let err = |t: &str, span, numeric| resolved(t, span, numeric).1.join("\n");
        assert!(err("report = \"sometimes\"", None, true).contains("not a report mode"));
        assert!(
            err("report = { deadband = \"2%\" }", None, true).contains("needs the point's `range`")
        );
        assert!(err("report = { deadband = -1 }", None, true).contains("zero or more"));
        assert!(err("report = { deadband = 1 }", None, false).contains("only numeric"));
        assert!(err("report = { every = \"10ms\" }", None, true).contains("outside 1s..=1h"));
        assert!(parse("report = { deadband = \"lots\" }")
            .unwrap_err()
            .contains("not a percentage"));
        assert!(parse("report = { often = 1 }")
            .unwrap_err()
            .contains("unknown field"));
    }
}

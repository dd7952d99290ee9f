//! Profile files as written: every field optional here so the same shape serves a
//! profile's points and a site's per-device overrides; `resolve` turns them into `Point`s.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

use super::model::{RegisterKind, StatusCode};
use crate::codec::WordOrder;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    pub model: Spanned<String>,
    #[serde(default)]
    pub vendor: String,
    #[serde(default)]
    pub description: String,
    pub max_registers: Option<Spanned<u16>>,
    pub max_bits: Option<Spanned<u16>>,
    #[serde(default)]
    pub unit_codes: BTreeMap<String, String>,
    #[serde(default)]
    pub status_codes: BTreeMap<String, BTreeMap<String, StatusCode>>,
    #[serde(default, rename = "point")]
    pub points: Vec<RawPoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawType {
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
    Bit,
    String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSimulate {
    pub normal: Option<f64>,
    pub noise: Option<f64>,
    pub daily: Option<f64>,
    pub per_second: Option<f64>,
    /// Another point of the device whose value this one takes (a valve's limit switch
    /// follows its output), for the simulator.
    pub follows: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPoint {
    pub id: Option<Spanned<String>>,
    pub name: Option<String>,
    pub kind: Option<Spanned<RegisterKind>>,
    pub address: Option<Spanned<i64>>,
    #[serde(rename = "type")]
    pub ty: Option<Spanned<RawType>>,
    pub bit: Option<Spanned<i64>>,
    pub length: Option<Spanned<i64>>,
    pub order: Option<Spanned<WordOrder>>,
    pub scale: Option<Spanned<f64>>,
    pub offset: Option<Spanned<f64>>,
    pub decimals_from: Option<Spanned<String>>,
    pub unit: Option<Spanned<String>>,
    pub unit_from: Option<Spanned<String>>,
    pub status_from: Option<Spanned<String>>,
    pub status_codes: Option<Spanned<String>>,
    pub range: Option<Spanned<[f64; 2]>>,
    /// 4–20 mA loop: [value at 4 mA, value at 20 mA].
    pub current_loop: Option<Spanned<[f64; 2]>>,
    pub publish: Option<bool>,
    pub simulate: Option<RawSimulate>,
    /// The monitored item the point belongs to (同类监测项目, e.g. "phreatic_line"):
    /// points of one item are counted together by the GB 39496 roll-up.
    pub item: Option<Spanned<String>>,
    /// Alarm settings; a site's override replaces the profile's as a whole.
    pub alarm: Option<Spanned<super::alarm::RawAlarm>>,
    /// When a reading goes on the wire (report by exception); see `report.rs`.
    pub report: Option<Spanned<super::report::RawReport>>,
}

fn rebase<T: Clone>(v: &Option<Spanned<T>>, at: &Range<usize>) -> Option<Spanned<T>> {
    v.as_ref()
        .map(|s| Spanned::new(at.clone(), s.get_ref().clone()))
}

impl RawPoint {
    /// This point with a site's override laid over it. Fields taken from the profile are
    /// re-pinned to `at` (a span in the site file), so any error the combination causes is
    /// reported where the operator wrote the override.
    pub fn overridden_by(&self, over: &RawPoint, at: &Range<usize>) -> RawPoint {
        macro_rules! pick {
            ($f:ident) => {
                over.$f.clone().or_else(|| rebase(&self.$f, at))
            };
            (plain $f:ident) => {
                over.$f.clone().or_else(|| self.$f.clone())
            };
        }
        RawPoint {
            id: rebase(&self.id, at),
            name: pick!(plain name),
            kind: pick!(kind),
            address: pick!(address),
            ty: pick!(ty),
            bit: pick!(bit),
            length: pick!(length),
            order: pick!(order),
            scale: pick!(scale),
            offset: pick!(offset),
            decimals_from: pick!(decimals_from),
            unit: pick!(unit),
            unit_from: pick!(unit_from),
            status_from: pick!(status_from),
            status_codes: pick!(status_codes),
            range: pick!(range),
            current_loop: pick!(current_loop),
            publish: pick!(plain publish),
            item: pick!(item),
            alarm: pick!(alarm),
            report: pick!(report),
            simulate: match (&over.simulate, &self.simulate) {
                (Some(o), Some(b)) => Some(RawSimulate {
                    normal: o.normal.or(b.normal),
                    noise: o.noise.or(b.noise),
                    daily: o.daily.or(b.daily),
                    per_second: o.per_second.or(b.per_second),
                    follows: o.follows.clone().or_else(|| b.follows.clone()),
                }),
                (o, b) => o.clone().or_else(|| b.clone()),
            },
        }
    }
}

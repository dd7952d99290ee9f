//! Small value types shared by site and profile files, deserialized straight into their
//! typed form so a bad value is reported by the parser with its line.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

use crate::codec::WordOrder;
use crate::quantity::{parse_duration, parse_size};

/// A duration written as "500ms", "1s", "10min".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval(pub Duration);

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(Interval)
            .map_err(serde::de::Error::custom)
    }
}

/// A size written as "64MiB", "1GiB".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_size(&s)
            .map(ByteSize)
            .map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for WordOrder {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        WordOrder::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "\"{s}\" is not a byte order; use \"abcd\" (big-endian), \"cdab\" (word swap), \"badc\" (byte swap) or \"dcba\" (little-endian)"
            ))
        })
    }
}

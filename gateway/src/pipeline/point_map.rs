//! Per-point state of the pipeline, keyed by device and point id. It is touched for every
//! reading, so it is looked up by reference (the ids are copied only when a point is first
//! seen) with a fast, non-cryptographic hash (the keys come from the site file, not from
//! the network).

use std::sync::Arc;

use hashbrown::HashMap;

#[derive(Debug)]
pub struct PointMap<V> {
    devices: HashMap<Arc<str>, DevicePoints<V>>,
}

/// One device's points: a batch of readings comes from one device, so it is found once.
#[derive(Debug)]
pub struct DevicePoints<V>(HashMap<Arc<str>, V>);

impl<V> Default for DevicePoints<V> {
    fn default() -> Self {
        DevicePoints(HashMap::new())
    }
}

impl<V> DevicePoints<V> {
    pub fn get_mut(&mut self, point: &str) -> Option<&mut V> {
        self.0.get_mut(point)
    }

    /// The point's state, made with `new` when it is first seen.
    pub fn slot(&mut self, point: &str, new: impl FnOnce() -> V) -> &mut V {
        self.0.entry_ref(point).or_insert_with(new)
    }
}

impl<V> Default for PointMap<V> {
    fn default() -> Self {
        PointMap {
            devices: HashMap::new(),
        }
    }
}

impl<V> PointMap<V> {
    pub fn get_mut(&mut self, device: &str, point: &str) -> Option<&mut V> {
        self.devices.get_mut(device)?.get_mut(point)
    }

    /// The point's state, made with `new` when it is first seen.
    pub fn slot(&mut self, device: &str, point: &str, new: impl FnOnce() -> V) -> &mut V {
        self.device(device).slot(point, new)
    }

    pub fn device_mut(&mut self, device: &str) -> Option<&mut DevicePoints<V>> {
        self.devices.get_mut(device)
    }

    /// The device's points, none yet when it is first seen.
    pub fn device(&mut self, device: &str) -> &mut DevicePoints<V> {
        self.devices.entry_ref(device).or_default()
    }

    /// Every point's state, with its ids, in no particular order.
    pub fn into_entries(self) -> impl Iterator<Item = (Arc<str>, Arc<str>, V)> {
        self.devices.into_iter().flat_map(|(device, points)| {
            points
                .0
                .into_iter()
                .map(move |(point, v)| (Arc::clone(&device), point, v))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_made_once_and_found_by_reference() {
        let mut m = PointMap::default();
        *m.slot("D1", "P1", || 0) += 1;
        *m.slot("D1", "P1", || 100) += 1;
        *m.slot("D1", "P2", || 10) += 1;
        *m.slot("D2", "P1", || 20) += 1;
        assert_eq!(m.get_mut("D1", "P1"), Some(&mut 2));
        assert_eq!(m.get_mut("D1", "P3"), None);
        assert_eq!(m.get_mut("D3", "P1"), None);
        let mut all: Vec<_> = m
            .into_entries()
            .map(|(d, p, v)| (d.to_string(), p.to_string(), v))
            .collect();
        all.sort();
        assert_eq!(
            all,
            vec![
                ("D1".into(), "P1".into(), 2),
                ("D1".into(), "P2".into(), 11),
                ("D2".into(), "P1".into(), 21)
            ]
        );
    }
}

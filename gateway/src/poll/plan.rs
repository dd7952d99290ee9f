//! The poll plan: a device's points merged into as few read requests as the protocol and
//! the device allow, computed once from the config.

use firmware_config::{Device, Link, RegisterKind};

use super::timing::ASSUMED_TURNAROUND;

/// One read request and the points it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadBlock {
    pub kind: RegisterKind,
    pub start: u16,
    pub count: u16,
    /// Indices into the device's points.
    pub points: Vec<usize>,
}

impl ReadBlock {
    pub fn end(&self) -> u32 {
        self.start as u32 + self.count as u32
    }

    pub fn covers(&self, kind: RegisterKind, address: u16, width: u16) -> bool {
        self.kind == kind && address >= self.start && address as u32 + width as u32 <= self.end()
    }
}

/// Every request one poll cycle of a device makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePlan {
    pub blocks: Vec<ReadBlock>,
}

impl DevicePlan {
    /// Plans the reads for all points of a device (published or helper: both must be read).
    pub fn for_device(device: &Device, link: &Link) -> Self {
        let items: Vec<(RegisterKind, u16, u16)> = device
            .points
            .iter()
            .map(|p| (p.kind, p.address, p.width()))
            .collect();
        Self::plan(
            &items,
            device.max_registers,
            device.max_bits,
            device.max_gap.min(break_even_gap(link)),
        )
    }

    /// Greedy merge per table in address order: a point joins the open block when the
    /// unused registers between them are at most `max_gap` and the block stays within the
    /// size limit; otherwise it opens a new block. Gaps cost two bytes per register on the
    /// wire, a new request costs a whole frame, a turnaround and a silent interval.
    pub fn plan(
        items: &[(RegisterKind, u16, u16)],
        max_registers: u16,
        max_bits: u16,
        max_gap: u16,
    ) -> Self {
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by_key(|&i| (items[i].0, items[i].1));
        let mut blocks: Vec<ReadBlock> = Vec::new();
        for i in order {
            let (kind, address, width) = items[i];
            let limit = if kind.is_bit() {
                max_bits
            } else {
                max_registers
            } as u32;
            let end = address as u32 + width as u32;
            if let Some(open) = blocks.last_mut() {
                let gap_ok = address as u32 <= open.end() + max_gap as u32;
                let new_end = open.end().max(end);
                if open.kind == kind && gap_ok && new_end - open.start as u32 <= limit {
                    open.count = (new_end - open.start as u32) as u16;
                    open.points.push(i);
                    continue;
                }
            }
            blocks.push(ReadBlock {
                kind,
                start: address,
                count: width,
                points: vec![i],
            });
        }
        DevicePlan { blocks }
    }

    pub fn registers(&self) -> u32 {
        self.blocks
            .iter()
            .filter(|b| !b.kind.is_bit())
            .map(|b| b.count as u32)
            .sum()
    }

    pub fn bits(&self) -> u32 {
        self.blocks
            .iter()
            .filter(|b| b.kind.is_bit())
            .map(|b| b.count as u32)
            .sum()
    }
}

/// The largest gap of unused registers that is cheaper to read through than to split at.
/// On RS-485 a second request costs its own frame (8 characters out, 5 back), two silent
/// intervals and the device's turnaround, while each bridged register costs 2 characters.
/// On TCP a second request costs a network round trip, far more than a few registers.
pub fn break_even_gap(link: &Link) -> u16 {
    match link {
        Link::Rtu(line) => {
            let char_time = line.char_time().as_secs_f64();
            let request = 13.0 * char_time
                + 2.0 * line.frame_silence().as_secs_f64()
                + ASSUMED_TURNAROUND.as_secs_f64();
            (request / (2.0 * char_time)) as u16
        }
        Link::Tcp { .. } | Link::RtuOverTcp { .. } => u16::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use RegisterKind::*;

    #[test]
    fn contiguous_points_share_a_request() {
        let plan = DevicePlan::plan(
            &[(Holding, 0, 1), (Holding, 1, 1), (Holding, 2, 2)],
            125,
            2000,
            0,
        );
        assert_eq!(plan.blocks.len(), 1);
        assert_eq!((plan.blocks[0].start, plan.blocks[0].count), (0, 4));
    }

    #[test]
    fn small_gaps_are_bridged_large_ones_split() {
        let plan = DevicePlan::plan(
            &[(Holding, 0, 1), (Holding, 5, 1), (Holding, 100, 1)],
            125,
            2000,
            8,
        );
        let spans: Vec<_> = plan.blocks.iter().map(|b| (b.start, b.count)).collect();
        assert_eq!(spans, vec![(0, 6), (100, 1)]);
    }

    #[test]
    fn rs485_bridges_gaps_while_cheaper() {
        use firmware_config::site::{Parity, SerialLine};
        let line = |baud| {
            Link::Rtu(SerialLine {
                port: "/dev/null".into(),
                baud,
                parity: Parity::None,
                data_bits: 8,
                stop_bits: 1,
            })
        };
        // 9600 baud: a request costs ~13 chars + 2 x 3.5 chars + 10ms turnaround (~9.6 chars)
        assert_eq!(break_even_gap(&line(9600)), 14);
        // faster lines make the fixed turnaround dearer in characters
        assert!(break_even_gap(&line(115200)) > 50);
    }

    #[test]
    fn tables_never_mix_and_limits_hold() {
        let plan = DevicePlan::plan(
            &[
                (Holding, 0, 2),
                (Input, 2, 2),
                (Holding, 2, 2),
                (Coil, 0, 1),
            ],
            3,
            2000,
            8,
        );
        assert!(plan.blocks.iter().all(|b| b.count <= 3 || b.kind.is_bit()));
        assert_eq!(plan.blocks.len(), 4);
    }

    fn points() -> impl Strategy<Value = Vec<(RegisterKind, u16, u16)>> {
        let kind = prop::sample::select(vec![Coil, Discrete, Input, Holding]);
        prop::collection::vec(
            (kind, 0u16..3000, prop::sample::select(vec![1u16, 2, 4, 8])),
            1..80,
        )
        .prop_map(|v| {
            // One point per start address and table, as the config guarantees; widths kept
            // inside the address space, bits are one wide.
            let mut seen = std::collections::HashSet::new();
            v.into_iter()
                .filter(|(k, a, _)| seen.insert((*k, *a)))
                .map(|(k, a, w)| (k, a, if k.is_bit() { 1 } else { w }))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn every_point_once_no_request_over_its_limit(items in points(), max_reg in 8u16..=125, max_bits in 8u16..=2000, gap in 0u16..20) {
            let plan = DevicePlan::plan(&items, max_reg, max_bits, gap);
            let mut seen = vec![0u32; items.len()];
            for b in &plan.blocks {
                let limit = if b.kind.is_bit() { max_bits } else { max_reg };
                prop_assert!(b.count >= 1 && b.count <= limit, "block {:?} over limit {}", b, limit);
                for &i in &b.points {
                    seen[i] += 1;
                    let (k, a, w) = items[i];
                    prop_assert!(b.covers(k, a, w), "block {:?} does not cover point {:?}", b, items[i]);
                }
            }
            prop_assert!(seen.iter().all(|&n| n == 1), "points covered {:?}", seen);
        }
    }
}

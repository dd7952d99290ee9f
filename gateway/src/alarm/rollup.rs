//! A hazard source's level from its points' process levels, and the site's from its
//! sources. Equipment conditions (comm loss, sensor fault, out of range, linkage and store
//! failures) never reach this module: they are alarms of their own, never a colour.

use std::collections::BTreeMap;

use firmware_config::site::{CountRule, Rollup};
use hazgate_wire::Level;

/// One point as the roll-up sees it: its monitored item (`None`: an item of its own) and
/// its process level.
#[derive(Debug, Clone, Copy)]
pub struct PointLevel<'a> {
    pub item: Option<&'a str>,
    pub level: Option<Level>,
}

/// The level of a hazard source under its rule.
///
/// GB 39496-2020 §5.5.4: within one monitored item (同类监测项目), 4 blue points make the
/// item yellow, 3 yellow make it orange, 2 orange make it red (a point counts toward every
/// level up to its own), and the item is the higher of that count and its highest point.
/// The items then combine by `cross_item` the same way. Points of different items are
/// never pooled; a point that names no item is an item of its own.
pub fn roll_up_source<'a>(
    rule: Rollup,
    cross_item: CountRule,
    points: impl Iterator<Item = PointLevel<'a>>,
) -> Option<Level> {
    match rule {
        Rollup::Highest => points.filter_map(|p| p.level).max(),
        Rollup::Gb39496 => {
            let mut items: BTreeMap<&str, Vec<Level>> = BTreeMap::new();
            let mut loose = Vec::new();
            for p in points {
                let Some(level) = p.level else { continue };
                match p.item {
                    Some(item) => items.entry(item).or_default().push(level),
                    None => loose.push(level),
                }
            }
            let item_levels = items
                .values()
                .filter_map(|levels| count(CountRule::GB39496, levels))
                .chain(loose);
            count(cross_item, &item_levels.collect::<Vec<_>>())
        }
    }
}

/// The site's level: the highest of its hazard sources and of points outside any source.
pub fn highest(levels: impl Iterator<Item = Option<Level>>) -> Option<Level> {
    levels.flatten().max()
}

/// A group's level under a counting rule: the higher of its highest member and what the
/// counts make.
pub fn count(rule: CountRule, levels: &[Level]) -> Option<Level> {
    let highest = levels.iter().copied().max();
    let at_least = |l: Level| levels.iter().filter(|&&x| x >= l).count() as u32;
    let counted = if at_least(Level::Orange) >= rule.orange {
        Some(Level::Red)
    } else if at_least(Level::Yellow) >= rule.yellow {
        Some(Level::Orange)
    } else if at_least(Level::Blue) >= rule.blue {
        Some(Level::Yellow)
    } else {
        None
    };
    highest.max(counted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Level::*;

    /// (item, level) per point.
    fn gb(points: &[(Option<&str>, Option<Level>)]) -> Option<Level> {
        roll_up_source(
            Rollup::Gb39496,
            CountRule::GB39496,
            points
                .iter()
                .map(|&(item, level)| PointLevel { item, level }),
        )
    }

    const PZ: Option<&str> = Some("phreatic_line");
    const BEACH: Option<&str> = Some("dry_beach");
    const POND: Option<&str> = Some("pond_level");
    const DISP: Option<&str> = Some("displacement");
    const RAIN: Option<&str> = Some("rainfall");

    #[test]
    fn highest_takes_the_worst_point() {
        let points = [
            PointLevel {
                item: PZ,
                level: None,
            },
            PointLevel {
                item: BEACH,
                level: Some(Yellow),
            },
            PointLevel {
                item: PZ,
                level: Some(Blue),
            },
        ];
        assert_eq!(
            roll_up_source(Rollup::Highest, CountRule::GB39496, points.into_iter()),
            Some(Yellow)
        );
    }

    /// Every row of the rule within one item, and the counts just below each row.
    #[test]
    fn within_one_item() {
        let cases: &[(&[Option<Level>], Option<Level>)] = &[
            (&[None, None], None),
            (&[Some(Blue); 3], Some(Blue)),
            (&[Some(Blue); 4], Some(Yellow)),
            (
                &[Some(Yellow), Some(Blue), Some(Blue), Some(Blue)],
                Some(Yellow),
            ),
            (&[Some(Yellow); 2], Some(Yellow)),
            (&[Some(Yellow); 3], Some(Orange)),
            (&[Some(Orange), Some(Yellow), Some(Yellow)], Some(Orange)),
            (&[Some(Orange)], Some(Orange)),
            (&[Some(Orange); 2], Some(Red)),
            (&[Some(Red), Some(Orange)], Some(Red)),
            (&[Some(Red)], Some(Red)),
        ];
        for (levels, want) in cases {
            let points: Vec<_> = levels.iter().map(|&l| (PZ, l)).collect();
            assert_eq!(gb(&points), *want, "{levels:?}");
        }
    }

    /// Points of different items are never pooled into one count.
    #[test]
    fn items_are_counted_apart() {
        // Three blue piezometers and one blue dry-beach point: blue, not yellow.
        assert_eq!(
            gb(&[
                (PZ, Some(Blue)),
                (PZ, Some(Blue)),
                (PZ, Some(Blue)),
                (BEACH, Some(Blue))
            ]),
            Some(Blue)
        );
        // Two yellow piezometers and one yellow pond level: yellow, not orange.
        assert_eq!(
            gb(&[(PZ, Some(Yellow)), (PZ, Some(Yellow)), (POND, Some(Yellow))]),
            Some(Yellow)
        );
        // One orange in each of two items: two orange items make red across items.
        assert_eq!(gb(&[(PZ, Some(Orange)), (DISP, Some(Orange))]), Some(Red));
        // Points without an item are items of their own.
        assert_eq!(
            gb(&[(None, Some(Blue)), (None, Some(Blue)), (None, Some(Blue))]),
            Some(Blue)
        );
    }

    /// Across items: 4 blue items count as one yellow item (confirmed); 3 yellow items make
    /// orange and 2 orange red (the default continuation).
    #[test]
    fn across_items() {
        assert_eq!(
            gb(&[(PZ, Some(Blue)), (BEACH, Some(Blue)), (POND, Some(Blue))]),
            Some(Blue)
        );
        assert_eq!(
            gb(&[
                (PZ, Some(Blue)),
                (BEACH, Some(Blue)),
                (POND, Some(Blue)),
                (RAIN, Some(Blue))
            ]),
            Some(Yellow)
        );
        // Four blue piezometers make the item yellow; with two more yellow items: orange.
        let mut points = vec![(PZ, Some(Blue)); 4];
        points.extend([(BEACH, Some(Yellow)), (POND, Some(Yellow))]);
        assert_eq!(gb(&points), Some(Orange));
        // A site's own cross-item rule.
        let strict = CountRule {
            blue: 2,
            yellow: 2,
            orange: 2,
        };
        let two_blue_items = [
            PointLevel {
                item: PZ,
                level: Some(Blue),
            },
            PointLevel {
                item: BEACH,
                level: Some(Blue),
            },
        ];
        assert_eq!(
            roll_up_source(Rollup::Gb39496, strict, two_blue_items.into_iter()),
            Some(Yellow)
        );
    }
}

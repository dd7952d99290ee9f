//! A hazard source's level from its points' levels, and the site's from its sources.

use firmware_config::site::Rollup;
use hazgate_wire::Level;

/// The level of a group of points under a roll-up rule.
pub fn roll_up(rule: Rollup, levels: impl Iterator<Item = Option<Level>>) -> Option<Level> {
    let levels: Vec<Level> = levels.flatten().collect();
    let highest = levels.iter().copied().max();
    match rule {
        Rollup::Highest => highest,
        Rollup::Gb39496 => {
            // GB 39496-2020 §5.5.4: 4 blue points make the item yellow, 3 yellow make it
            // orange, 2 orange make it red; a point counts toward every level up to its own.
            let at_least = |l: Level| levels.iter().filter(|&&x| x >= l).count();
            let counted = if at_least(Level::Orange) >= 2 {
                Some(Level::Red)
            } else if at_least(Level::Yellow) >= 3 {
                Some(Level::Orange)
            } else if at_least(Level::Blue) >= 4 {
                Some(Level::Yellow)
            } else {
                None
            };
            highest.max(counted)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Level::*;

    fn gb(levels: &[Option<Level>]) -> Option<Level> {
        roll_up(Rollup::Gb39496, levels.iter().copied())
    }

    #[test]
    fn highest_takes_the_worst_point() {
        assert_eq!(
            roll_up(
                Rollup::Highest,
                [None, Some(Yellow), Some(Blue)].into_iter()
            ),
            Some(Yellow)
        );
        assert_eq!(roll_up(Rollup::Highest, [None, None].into_iter()), None);
    }

    #[test]
    fn tailings_counting_rule() {
        assert_eq!(gb(&[Some(Blue); 3]), Some(Blue));
        assert_eq!(gb(&[Some(Blue); 4]), Some(Yellow));
        assert_eq!(gb(&[Some(Yellow), Some(Yellow), None]), Some(Yellow));
        assert_eq!(
            gb(&[Some(Yellow), Some(Yellow), Some(Yellow)]),
            Some(Orange)
        );
        assert_eq!(
            gb(&[Some(Orange), Some(Yellow), Some(Yellow)]),
            Some(Orange)
        );
        assert_eq!(gb(&[Some(Orange), Some(Orange)]), Some(Red));
        assert_eq!(gb(&[Some(Red)]), Some(Red));
        assert_eq!(gb(&[None, None]), None);
    }
}

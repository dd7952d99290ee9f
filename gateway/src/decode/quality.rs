//! Judging a 4–20 mA loop current after NAMUR NE43.

/// What a loop current says about the measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopState {
    /// 3.8 ..= 20.5 mA: a valid measurement, saturation included.
    Valid,
    /// 3.6 < I < 3.8 or 20.5 < I < 21 mA: out of range, the value is uncertain.
    OutOfRange,
    /// I <= 3.6 mA or I >= 21 mA: the transmitter signals a fault.
    Fault,
}

pub fn judge_loop_current(milliamps: f64) -> LoopState {
    if !milliamps.is_finite() || milliamps <= 3.6 || milliamps >= 21.0 {
        LoopState::Fault
    } else if (3.8..=20.5).contains(&milliamps) {
        LoopState::Valid
    } else {
        LoopState::OutOfRange
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ne43_bands() {
        for (ma, want) in [
            (3.5, LoopState::Fault),
            (3.6, LoopState::Fault),
            (3.7, LoopState::OutOfRange),
            (3.8, LoopState::Valid),
            (4.0, LoopState::Valid),
            (20.0, LoopState::Valid),
            (20.5, LoopState::Valid),
            (20.8, LoopState::OutOfRange),
            (21.0, LoopState::Fault),
            (f64::NAN, LoopState::Fault),
        ] {
            assert_eq!(judge_loop_current(ma), want, "{ma} mA");
        }
    }
}

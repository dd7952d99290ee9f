//! Human quantities in config files: durations ("500ms", "1s", "10min") and sizes ("1GiB").

use std::time::Duration;

/// Parses "250ms", "1s", "1.5s", "10min", "2h", "1d". A bare number is refused: a poll of
/// "1" could mean a second or a millisecond, and a safety config must not guess.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| {
            format!("\"{text}\" has no unit; write e.g. \"500ms\", \"1s\", \"10min\", \"2h\"")
        })?;
    let (number, unit) = t.split_at(split);
    let n: f64 = number.parse().map_err(|_| {
        format!("\"{text}\" is not a duration; write e.g. \"500ms\", \"1s\", \"10min\"")
    })?;
    let seconds_per_unit = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "min" | "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        other => {
            return Err(format!(
                "\"{other}\" is not a time unit; use ms, s, min, h or d"
            ))
        }
    };
    let secs = n * seconds_per_unit;
    if !secs.is_finite() || secs > 366.0 * 86400.0 {
        return Err(format!("\"{text}\" is longer than a year"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses "512KiB", "64MiB", "1GiB", "500MB", "1000B".
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("\"{text}\" has no unit; write e.g. \"512MiB\" or \"1GiB\""))?;
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("\"{text}\" is not a size; write e.g. \"512MiB\" or \"1GiB\""))?;
    let factor: f64 = match unit.trim() {
        "B" => 1.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "\"{other}\" is not a size unit; use B, KiB, MiB, GiB, KB, MB or GB"
            ))
        }
    };
    let bytes = n * factor;
    if !bytes.is_finite() || bytes > 1e15 {
        return Err(format!("\"{text}\" is too large"));
    }
    Ok(bytes as u64)
}

/// Renders a duration the way config files write it.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{}ms", trim(ms))
    } else if ms < 60_000.0 {
        format!("{}s", trim(ms / 1000.0))
    } else if ms < 3_600_000.0 {
        format!("{}min", trim(ms / 60_000.0))
    } else {
        format!("{}h", trim(ms / 3_600_000.0))
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("10min").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("1").unwrap_err().contains("no unit"));
        assert!(parse_duration("1 fortnight")
            .unwrap_err()
            .contains("not a time unit"));
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_millis(20)), "20ms");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("500MB").unwrap(), 500_000_000);
        assert!(parse_size("12 bananas").is_err());
        assert!(parse_size("12").is_err());
    }
}

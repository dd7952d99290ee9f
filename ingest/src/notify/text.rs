//! What a notification says: short, Chinese first, everything a duty officer needs to
//! act (enterprise, hazard source, point, level, value and limit, time, where to answer).

use firmware_config::escalation::Notify;

use crate::supervise::occurrences::Occurrence;

pub fn level_zh(level: &str) -> &'static str {
    match level {
        "red" => "红色",
        "orange" => "橙色",
        "yellow" => "黄色",
        "blue" => "蓝色",
        _ => "",
    }
}

pub fn condition_zh(condition: &str) -> &'static str {
    match condition {
        "limit" => "超限",
        "rate" => "变化过快",
        "comm_loss" => "通信中断",
        "sensor_fault" => "传感器故障",
        "out_of_range" => "超出量程",
        "calibration" => "标定超时",
        "stuck_value" => "数据长时间不变",
        "impossible_jump" => "数据异常跳变",
        "linkage_failed" => "联动失败",
        "store_failed" => "网关存储故障",
        "interruption" => "网关断线",
        _ => "报警",
    }
}

/// `YYYY-MM-DD HH:mm:ss` at `offset_minutes` east of UTC.
pub fn local_time(ms: i64, offset_minutes: i32) -> String {
    let secs = ms.div_euclid(1000) + i64::from(offset_minutes) * 60;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (H. Hinnant), proleptic Gregorian.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn number(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The link to the occurrence in the view.
pub fn link(notify: &Notify, o: &Occurrence) -> Option<String> {
    notify.public_url.as_ref().map(|u| {
        format!(
            "{}/?occurrence={}/{}/{}",
            u.trim_end_matches('/'),
            o.site,
            o.gateway,
            o.occurrence
        )
    })
}

pub fn message(notify: &Notify, o: &Occurrence, tier: usize, tier_name: &str) -> String {
    let level = o.level.as_deref().unwrap_or(&o.max_level);
    let mut t = format!("【{}预警】{}", level_zh(level), o.site);
    if let Some(h) = &o.hazard_source {
        t.push_str(&format!(" {h}"));
    }
    if let (Some(d), Some(p)) = (&o.device, &o.point) {
        t.push_str(&format!(" {d}.{p}"));
    }
    t.push_str(&format!(" {}", condition_zh(&o.condition)));
    if let Some(l) = &o.label {
        t.push_str(&format!("（{l}）"));
    }
    let unit = o.unit.as_deref().unwrap_or("");
    if let Some(v) = o.value {
        t.push_str(&format!("，值 {}{unit}", number(v)));
    }
    if let Some(l) = o.limit {
        t.push_str(&format!("，限值 {}{unit}", number(l)));
    }
    t.push_str(&format!(
        "，{}起。第{}级通知（{tier_name}），请及时确认",
        local_time(o.opened_ts, notify.utc_offset_minutes),
        tier + 1
    ));
    match link(notify, o) {
        Some(l) => t.push_str(&format!("：{l}")),
        None => t.push('。'),
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_the_regulator_reads_them() {
        assert_eq!(local_time(0, 0), "1970-01-01 00:00:00");
        // 2025-11-23 15:00:00 UTC is 23:00:00 in Beijing.
        assert_eq!(local_time(1_763_910_000_000, 480), "2025-11-23 23:00:00");
        assert_eq!(local_time(951_782_400_000, 0), "2000-02-29 00:00:00");
        assert_eq!(number(0.6003699999999981), "0.6");
        assert_eq!(number(25.0), "25");
    }
}

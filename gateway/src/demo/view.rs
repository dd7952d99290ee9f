//! What the demo prints: a live screen redrawn with ANSI escapes on a terminal, plain lines
//! for the watched points everywhere else (pipes, tests, logs).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use hazgate_wire::{Presence, Quality, Reading, Value};

use super::board::{Board, SiteBoard, Update};

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const RED: &str = "\x1b[31m";
const BLUE: &str = "\x1b[34m";
/// 256-colour orange; terminals without it fall back to their default colour.
const ORANGE: &str = "\x1b[38;5;208m";
/// Cursor home; each line then clears its own rest, the frame the rest of the screen:
/// no blank flash between frames.
const HOME: &str = "\x1b[H";
const CLEAR_LINE: &str = "\x1b[K";
const CLEAR_BELOW: &str = "\x1b[J";

/// A point the scenarios move, drawn as a bar against its reference levels. The levels
/// are only noted: evaluating alarms is the alarm engine's job, not the view's.
pub struct Watch {
    pub device: &'static str,
    pub point: &'static str,
    pub label: &'static str,
    pub lo: f64,
    pub hi: f64,
    pub marks: &'static [f64],
    pub note: &'static str,
}

pub const WATCHED: [Watch; 2] = [
    Watch {
        device: "GD-101",
        point: "CH1",
        label: "gas, sphere V-101 outlet",
        lo: 0.0,
        hi: 100.0,
        marks: &[25.0, 50.0],
        note: "alarm levels 25 / 50 %LEL",
    },
    Watch {
        device: "WL-01",
        point: "WATER_LEVEL",
        label: "tailings pond level",
        lo: 311.0,
        hi: 316.0,
        marks: &[314.0],
        note: "flood control level 314.0 m, crest 316.0 m",
    },
];

/// What the header says besides the data.
pub struct Header {
    pub broker: SocketAddr,
    /// Topic filter a client subscribes to, e.g. `hazard/#`.
    pub filter: String,
    pub speed: f64,
    pub elapsed: Duration,
    pub remaining: Option<Duration>,
}

/// The command a reader can paste to watch the demo with another client.
pub fn hint(broker: SocketAddr, filter: &str) -> String {
    format!(
        "mosquitto_sub -h {} -p {} -t '{filter}' -v",
        broker.ip(),
        broker.port()
    )
}

/// Plain lines for one update: watched readings and gateways coming and going.
pub fn plain_lines(update: &Update) -> Vec<String> {
    match update {
        Update::Readings(readings) => readings
            .iter()
            .filter(|r| watched(r).is_some())
            .map(|r| {
                format!(
                    "{}.{} {} {}",
                    r.device,
                    r.point,
                    value_text(r),
                    quality_text(&r.quality)
                )
            })
            .collect(),
        Update::Presence {
            site,
            gateway,
            state,
        } => vec![format!("{site}/{gateway} {}", presence_text(*state))],
        Update::Alarm(e) => vec![alarm_text(e)],
        Update::Nothing => Vec::new(),
    }
}

/// One alarm event as a line: `ALARM raise red GD-101.CH1 51.2 %LEL (limit 50, 二级报警)`.
pub fn alarm_text(e: &hazgate_wire::AlarmEvent) -> String {
    let what = match (&e.device, &e.point, &e.hazard_source) {
        (Some(d), Some(p), _) => format!("{d}.{p}"),
        (_, _, Some(h)) => format!("hazard source {h}"),
        _ => format!("site {}", e.envelope.site),
    };
    let level = e.level.map(|l| l.name()).unwrap_or("normal");
    let mut line = format!(
        "ALARM {} {level} {what} {:?}",
        format!("{:?}", e.event).to_lowercase(),
        e.condition
    )
    .replace("  ", " ");
    if let Some(v) = e.value {
        line.push_str(&format!(
            " {}{}",
            number(v),
            e.unit
                .as_deref()
                .map(|u| format!(" {u}"))
                .unwrap_or_default()
        ));
    }
    let mut extra = Vec::new();
    if let Some(l) = e.limit {
        extra.push(format!("limit {}", number(l)));
    }
    if let Some(l) = &e.label {
        extra.push(l.clone());
    }
    if !extra.is_empty() {
        line.push_str(&format!(" ({})", extra.join(", ")));
    }
    line
}

fn level_colour(level: Option<hazgate_wire::Level>) -> &'static str {
    match level {
        None => GREEN,
        Some(hazgate_wire::Level::Blue) => BLUE,
        Some(hazgate_wire::Level::Yellow) => YELLOW,
        Some(hazgate_wire::Level::Orange) => ORANGE,
        Some(hazgate_wire::Level::Red) => RED,
    }
}

/// The site's level and its active alarms, each in its colour.
fn alarm_lines(lines: &mut Vec<Line>, site: &SiteBoard) {
    let Some(state) = &site.state else { return };
    let mut l = Line::default();
    l.push("  level ", DIM);
    l.push(
        state.level.map(|l| l.name()).unwrap_or("normal"),
        level_colour(state.level),
    );
    for hs in &state.hazard_sources {
        l.push(&format!("  {} ", hs.id), DIM);
        l.push(
            hs.level.map(|l| l.name()).unwrap_or("normal"),
            level_colour(hs.level),
        );
    }
    lines.push(l);
    for a in &state.alarms {
        let mut l = Line::default();
        let value = a
            .value
            .map(|v| {
                format!(
                    " {}{}",
                    number(v),
                    a.unit
                        .as_deref()
                        .map(|u| format!(" {u}"))
                        .unwrap_or_default()
                )
            })
            .unwrap_or_default();
        let limit = a
            .limit
            .map(|v| format!(" limit {}", number(v)))
            .unwrap_or_default();
        let label = a
            .label
            .as_deref()
            .map(|s| format!(" {s}"))
            .unwrap_or_default();
        l.push(
            &format!("  ▲ {:<7}", a.level.name()),
            level_colour(Some(a.level)),
        );
        l.push(
            &format!(
                " {}.{} {:?}{value}{limit}{label}",
                a.device, a.point, a.condition
            ),
            level_colour(Some(a.level)),
        );
        lines.push(l);
    }
}

/// One full screen of `width` x `height` characters. Lines longer than the width are left
/// to the terminal to cut (the screen turns line wrapping off).
pub fn frame(board: &Board, header: &Header, now_ms: i64, width: usize, height: usize) -> String {
    let mut lines: Vec<Line> = Vec::new();
    lines.push(header_line(header));
    let mut l = Line::default();
    l.push("watch it with any MQTT client: ", DIM);
    l.push(&hint(header.broker, &header.filter), BOLD);
    lines.push(l);
    lines.push(Line::default());
    for w in &WATCHED {
        lines.push(watch_line(board, w, now_ms));
    }
    for site in &board.sites {
        lines.push(Line::default());
        lines.push(site_line(site));
        alarm_lines(&mut lines, site);
        for d in &site.devices {
            device_lines(&mut lines, &d.id, &d.points, now_ms, width);
        }
    }
    let mut footer = Line::default();
    footer.push(
        &format!(
            "{} messages from the broker, {} ignored, {} gaps · Ctrl-C stops",
            board.messages, board.ignored, board.gaps
        ),
        DIM,
    );
    // The footer takes a row and the cursor rests on the last one: a newline there would
    // scroll the header away.
    let rows = height.saturating_sub(1).max(3);
    if lines.len() + 1 > rows {
        let hidden = lines.len() + 2 - rows;
        lines.truncate(rows - 2);
        let mut more = Line::default();
        more.push(
            &format!("… {hidden} more lines: enlarge the window to see all"),
            DIM,
        );
        lines.push(more);
    }
    lines.push(footer);

    let mut out = String::from(HOME);
    for l in lines {
        out.push_str(&l.text);
        out.push_str(CLEAR_LINE);
        out.push('\n');
    }
    out.push_str(CLEAR_BELOW);
    out
}

fn header_line(h: &Header) -> Line {
    let mut l = Line::default();
    l.push("hazgate demo", BOLD);
    l.push(&format!(" · broker mqtt://{}", h.broker), "");
    let sim = (h.elapsed.as_secs_f64() * h.speed) as u64;
    l.push(
        &format!(
            " · simulated time {}:{:02} (x{})",
            sim / 60,
            sim % 60,
            h.speed
        ),
        "",
    );
    if let Some(r) = h.remaining {
        l.push(&format!(" · stops in {}s", r.as_secs()), DIM);
    }
    l
}

fn watch_line(board: &Board, w: &Watch, now_ms: i64) -> Line {
    let mut l = Line::default();
    l.push(
        &format!(" {:<18}", format!("{}.{}", w.device, w.point)),
        BOLD,
    );
    l.push(&format!("{:<26}", w.label), "");
    let latest = board
        .point(w.device, w.point)
        .and_then(|p| p.latest.as_ref());
    match latest {
        Some(r) => {
            let colour = quality_colour(&r.quality);
            l.push(&format!("{:>12} ", value_text(r)), colour);
            l.push(&format!("{:<6}", quality_word(&r.quality)), colour);
            let value = r.value.as_ref().and_then(Value::as_f64);
            l.push(&format!(" [{}] ", bar(value, w, 40)), colour);
            l.push(&format!("{} · {}", w.note, age(now_ms - r.ts)), DIM);
        }
        None => l.push("waiting for data", DIM),
    }
    l
}

fn site_line(site: &SiteBoard) -> Line {
    let mut l = Line::default();
    l.push(&format!("{} / {}", site.id, site.gateway), BOLD);
    if let Some(name) = &site.name {
        l.push(&format!(" · {name}"), "");
    }
    l.push(" · ", "");
    match site.presence {
        Some(p @ Presence::Online) => l.push(presence_text(p), GREEN),
        Some(p @ Presence::Offline) => l.push(presence_text(p), RED),
        None => l.push("no status yet", DIM),
    }
    l
}

/// A device's points as cells, wrapped to the width.
fn device_lines(
    lines: &mut Vec<Line>,
    device: &str,
    points: &[super::board::PointBoard],
    now_ms: i64,
    width: usize,
) {
    let mut l = Line::default();
    l.push(&format!("  {device:<9}"), "");
    if points.is_empty() {
        l.push("waiting for data", DIM);
        lines.push(l);
        return;
    }
    const INDENT: usize = 11;
    for (i, p) in points.iter().enumerate() {
        let Some(r) = &p.latest else { continue };
        let value = value_text(r);
        let reason = r
            .quality
            .reason()
            .map(|x| format!(" {x}"))
            .unwrap_or_default();
        let ago = age(now_ms - r.ts);
        let cell_width = p.id.len() + 1 + value.chars().count() + reason.len() + 1 + ago.len();
        if i > 0 && l.width + 2 + cell_width > width {
            lines.push(std::mem::take(&mut l));
            l.push(&" ".repeat(INDENT), "");
        } else if i > 0 {
            l.push("  ", "");
        }
        l.push(&format!("{} ", p.id), "");
        l.push(&format!("{value}{reason}"), quality_colour(&r.quality));
        l.push(&format!(" {ago}"), DIM);
    }
    lines.push(l);
}

/// A text measured in visible characters, escapes not counted.
#[derive(Default)]
struct Line {
    text: String,
    width: usize,
}

impl Line {
    fn push(&mut self, s: &str, style: &str) {
        if style.is_empty() {
            self.text.push_str(s);
        } else {
            let _ = write!(self.text, "{style}{s}{RESET}");
        }
        self.width += s.chars().count();
    }
}

fn watched(r: &Reading) -> Option<&'static Watch> {
    WATCHED
        .iter()
        .find(|w| *r.device == *w.device && *r.point == *w.point)
}

/// `0..width` filled up to the value, the reference levels marked with `|`.
fn bar(value: Option<f64>, w: &Watch, width: usize) -> String {
    let pos = |x: f64| {
        (((x - w.lo) / (w.hi - w.lo)).clamp(0.0, 1.0) * (width as f64 - 1.0)).round() as usize
    };
    let filled = value.map(|v| pos(v) + 1).unwrap_or(0);
    let marks: Vec<usize> = w.marks.iter().map(|m| pos(*m)).collect();
    (0..width)
        .map(|i| {
            if marks.contains(&i) {
                '|'
            } else if i < filled {
                '█'
            } else {
                '·'
            }
        })
        .collect()
}

/// "31.5 %LEL", "true", "-" for a bad reading.
fn value_text(r: &Reading) -> String {
    let v = match &r.value {
        Some(Value::Number(x)) => number(*x),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Text(t)) => t.clone(),
        None => "-".into(),
    };
    match &r.unit {
        Some(u) if r.value.is_some() => format!("{v} {u}"),
        _ => v,
    }
}

/// At most three decimals, trailing zeros dropped: register scaling leaves float dust.
fn number(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

fn quality_word(q: &Quality) -> &'static str {
    match q {
        Quality::Good => "good",
        Quality::Uncertain { .. } => "uncertain",
        Quality::Bad { .. } => "bad",
    }
}

/// "good", or "bad timeout": the reason is what an operator acts on.
fn quality_text(q: &Quality) -> String {
    match q.reason() {
        Some(r) => format!("{} {r}", quality_word(q)),
        None => quality_word(q).into(),
    }
}

fn quality_colour(q: &Quality) -> &'static str {
    match q {
        Quality::Good => GREEN,
        Quality::Uncertain { .. } => YELLOW,
        Quality::Bad { .. } => RED,
    }
}

fn presence_text(p: Presence) -> &'static str {
    match p {
        Presence::Online => "online",
        Presence::Offline => "offline",
    }
}

fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        _ => format!("{}h", s / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hazgate_wire::Reason;

    fn reading(device: &str, point: &str, value: Option<f64>, quality: Quality) -> Reading {
        Reading {
            device: device.into(),
            point: point.into(),
            ts: 0,
            value: value.map(Value::Number),
            unit: Some("%LEL".into()),
            quality,
            flags: Vec::new(),
        }
    }

    #[test]
    fn plain_lines_name_only_watched_points() {
        let update = Update::Readings(vec![
            reading("GD-101", "CH1", Some(31.5), Quality::Good),
            reading("GD-101", "CH2", Some(0.1), Quality::Good),
            reading(
                "GD-101",
                "CH1",
                None,
                Quality::bad(Reason::Timeout, "no answer"),
            ),
        ]);
        assert_eq!(
            plain_lines(&update),
            ["GD-101.CH1 31.5 %LEL good", "GD-101.CH1 - bad timeout"]
        );
    }

    #[test]
    fn numbers_lose_float_dust() {
        assert_eq!(number(31.500000000000004), "31.5");
        assert_eq!(number(312.4), "312.4");
        assert_eq!(number(-0.0001), "0");
        assert_eq!(number(60.0), "60");
    }

    #[test]
    fn bar_marks_the_levels_and_fills_to_the_value() {
        let w = &WATCHED[0];
        // 0..100 over 11 cells, 10 per cell: 25 -> cell 3 (2.5 rounds up), 50 -> cell 5.
        assert_eq!(bar(Some(30.0), w, 11), "███|·|·····");
        assert_eq!(bar(Some(70.0), w, 11), "███|█|██···");
        assert_eq!(bar(None, w, 5), "·||··");
    }

    #[test]
    fn frame_fits_the_screen() {
        let board = Board::default();
        let header = Header {
            broker: "127.0.0.1:1883".parse().unwrap(),
            filter: "hazard/#".into(),
            speed: 4.0,
            elapsed: Duration::from_secs(15),
            remaining: None,
        };
        let f = frame(&board, &header, 0, 80, 5);
        assert!(f.contains("simulated time 1:00 (x4)"), "{f}");
        assert!(f.contains("mosquitto_sub -h 127.0.0.1 -p 1883 -t 'hazard/#' -v"));
        assert_eq!(f.matches('\n').count(), 4, "{f}");
        assert!(f.contains("more lines"), "{f}");
    }
}

//! Scenario files: a timeline of events in simulated time, for drills and tests.
//!
//! ```toml
//! description = "Combustible gas leak at GD-101 CH1 rising through 25 and 50 %LEL and clearing"
//!
//! [[event]]
//! at = "10s"                         # simulated time since start
//! device = "GD-101"
//! point = "CH1"
//! ramp = { to = 60.0, over = "40s" } # linear, then hold
//!
//! [[event]]
//! at = "2min"
//! device = "GD-101"
//! fault = { kind = "silent", for = "20s" }
//! ```
//!
//! Each event has `at`, `device`, `point` where the action needs one, and exactly one
//! action:
//! - `set = 12.5`: step to a value and hold it;
//! - `ramp = { to = 60.0, over = "40s" }`: straight line from the current value, then hold;
//! - `normal = 3.0`: a new baseline, noise and daily cycle continue;
//! - `release = true`: back to the profile's signal;
//! - `fault = { kind, for, code, delay }`: device kinds `silent`, `slow` (needs `delay`, real
//!   time), `exception` (`code`, default 4), `corrupt`; point kinds `sensor_fault`, `status`
//!   (needs `code`), `out_of_range`. Without `for` a fault lasts until cleared;
//! - `clear_fault = true`: clears the point's fault, or without `point` every fault of the
//!   device.
//!
//! Unknown fields, unknown devices or points and impossible faults are errors that name the
//! file, the line and the field, before anything starts.

use std::path::{Path, PathBuf};

use firmware_config::error::{ConfigError, ConfigErrors, SourceText};
use firmware_config::SiteConfig;
use serde::Deserialize;
use toml::Spanned;

use crate::command::{resolve, Command, Origin, RawCommand};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    description: Option<String>,
    #[serde(default, rename = "event")]
    events: Vec<Spanned<RawCommand>>,
}

/// One event on the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Simulated seconds since start.
    pub at: f64,
    pub command: Command,
    /// `file:line`, for the log.
    pub origin: String,
}

/// A checked scenario file.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub path: PathBuf,
    pub description: Option<String>,
    pub events: Vec<Event>,
}

/// Reads and checks a scenario file against the site.
pub fn load(path: &Path, site: &SiteConfig) -> Result<Scenario, ConfigErrors> {
    parse(&SourceText::read(path)?, site)
}

/// Checks scenario text against the site; every problem is reported, not just the first.
pub fn parse(source: &SourceText, site: &SiteConfig) -> Result<Scenario, ConfigErrors> {
    let raw: RawScenario =
        toml::from_str(&source.text).map_err(|e| ConfigErrors(vec![source.toml_error(&e)]))?;
    let mut errors = Vec::new();
    let mut events = Vec::new();
    if raw.events.is_empty() {
        errors.push(ConfigError {
            file: source.path.clone(),
            line: None,
            field: "event".into(),
            message: "a scenario needs at least one [[event]]".into(),
        });
    }
    for (i, spanned) in raw.events.iter().enumerate() {
        let line = source.line_of(spanned.span().start);
        let ev = spanned.get_ref();
        match resolve(ev, site, Origin::Scenario) {
            Ok(command) => events.push(Event {
                at: ev.at.map(|d| d.0.as_secs_f64()).unwrap_or(0.0),
                command,
                origin: format!("{}:{line}", source.path.display()),
            }),
            Err(e) => errors.push(ConfigError {
                file: source.path.clone(),
                line: Some(line),
                field: format!("event[{i}].{}", e.field),
                message: e.message,
            }),
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    Ok(Scenario {
        path: source.path.clone(),
        description: raw.description,
        events,
    })
}

/// The events of all scenarios in time order, handed out as their time comes.
#[derive(Debug, Default)]
pub struct Timeline {
    events: Vec<Event>,
    next: usize,
}

impl Timeline {
    pub fn new(scenarios: impl IntoIterator<Item = Scenario>) -> Self {
        let mut events: Vec<Event> = scenarios.into_iter().flat_map(|s| s.events).collect();
        // Stable: events at the same time keep their order in the files.
        events.sort_by(|a, b| a.at.total_cmp(&b.at));
        Timeline { events, next: 0 }
    }

    /// Events whose time has come by `now`, each handed out once.
    pub fn due(&mut self, now: f64) -> &[Event] {
        let start = self.next;
        while self.next < self.events.len() && self.events[self.next].at <= now {
            self.next += 1;
        }
        &self.events[start..self.next]
    }

    pub fn is_done(&self) -> bool {
        self.next >= self.events.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Action;

    fn site() -> SiteConfig {
        crate::test_site()
    }

    fn parse_text(text: &str) -> Result<Scenario, ConfigErrors> {
        parse(&SourceText::new("leak.toml", text), &site())
    }

    #[test]
    fn a_leak() {
        let s = parse_text(
            r#"
description = "leak"
[[event]]
at = "80s"
device = "GD-101"
point = "CH1"
ramp = { to = 0.0, over = "30s" }
[[event]]
at = "10s"
device = "GD-101"
point = "CH1"
ramp = { to = 60.0, over = "40s" }
[[event]]
at = "2min"
device = "GD-101"
fault = { kind = "exception", for = "20s" }
"#,
        )
        .unwrap();
        assert_eq!(
            s.events[1].command.action,
            Action::Ramp {
                to: 60.0,
                over: 40.0
            }
        );
        let mut t = Timeline::new([s]);
        assert!(t.due(5.0).is_empty());
        assert_eq!(t.due(10.0).len(), 1);
        assert_eq!(t.due(200.0).len(), 2);
        assert!(t.is_done());
    }

    fn error_of(text: &str) -> String {
        parse_text(text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let e = error_of("[[event]]\nat = \"1s\"\ndevice = \"GD-999\"\nset = 1.0\n");
        assert!(
            e.starts_with("leak.toml:1: event[0].device: no device \"GD-999\""),
            "{e}"
        );
        let e = error_of("[[event]]\nat = \"1s\"\ndevice = \"GD-101\"\npoint = \"CH1\"\nset = 1.0\nramp = { to = 2.0, over = \"1s\" }\n");
        assert!(
            e.contains("event[0].action: give exactly one action"),
            "{e}"
        );
        let e =
            error_of("[[event]]\nat = \"1s\"\ndevice = \"GD-101\"\npoint = \"CH1\"\nsett = 1.0\n");
        assert!(
            e.starts_with("leak.toml:5:") && e.contains("unknown field `sett`"),
            "{e}"
        );
        let e = error_of("[[event]]\nat = \"1 fortnight\"\ndevice = \"GD-101\"\nset = 1.0\n");
        assert!(
            e.starts_with("leak.toml:2:") && e.contains("not a time unit"),
            "{e}"
        );
        let e = error_of("[[event]]\ndevice = \"GD-101\"\nfault = { kind = \"silent\" }\n");
        assert!(e.contains("event[0].at: missing"), "{e}");
        let e =
            error_of("[[event]]\nat = \"1s\"\ndevice = \"GD-101\"\nfault = { kind = \"melt\" }\n");
        assert!(e.contains("\"melt\" is not a fault kind"), "{e}");
        let e = error_of("[[event]]\nat = \"1s\"\ndevice = \"GD-101\"\npoint = \"CH1\"\nfault = { kind = \"silent\" }\n");
        assert!(e.contains("whole device"), "{e}");
        let e = error_of("[[event]]\nat = \"1s\"\ndevice = \"GD-101\"\npoint = \"CH1\"\nfault = { kind = \"out_of_range\", code = 3 }\n");
        assert!(e.contains("fault.code"), "{e}");
    }
}

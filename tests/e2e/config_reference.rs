//! `docs/config-reference.md` lists exactly the fields the binaries accept. For every table
//! it documents, a minimal valid config gets one unknown key, `zz_probe`, inside that table;
//! `hazgate check` (site and profile files) or `hazingest check` (the central file) refuses
//! it with serde's list of the table's fields ("unknown field `zz_probe`, expected one of
//! `a`, `b`"), and that list must be the one in the reference. A field added to the code and
//! not documented, a documented one the code does not take, a documented table no probe
//! reaches and a probe whose table is not documented all fail here. A table serde cannot
//! list (see `UNPROBED`) is compared with a field list written here instead.

use std::collections::BTreeSet;
use std::process::{Command, Output};

use hazgate_e2e::{bin, hazgate, Workdir};

/// The line every probe puts into its table; the same config without it must be valid.
const PROBE_LINE: &str = "zz_probe = 1\n";
/// What serde says of the probe key, followed by the fields the table takes.
const UNKNOWN: &str = "unknown field `zz_probe`";
/// The columns of every table of the reference.
const HEADER: &str = "| field | type | default | range | example | meaning |";

/// The three kinds of config file, each a `## ` section of the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum File {
    Site,
    Profile,
    Central,
}

impl File {
    const ALL: [File; 3] = [File::Site, File::Profile, File::Central];

    fn section(self) -> &'static str {
        match self {
            File::Site => "Site file (hazgate)",
            File::Profile => "Profile files",
            File::Central => "Central file (hazingest)",
        }
    }

    /// A minimal valid file with `{slot}`s where probes put their fragment.
    fn template(self) -> &'static str {
        match self {
            File::Site => SITE,
            File::Profile => PROFILE,
            File::Central => CENTRAL,
        }
    }

    fn probes(self) -> Probes {
        match self {
            File::Site => SITE_PROBES,
            File::Profile => PROFILE_PROBES,
            File::Central => CENTRAL_PROBES,
        }
    }
}

/// A site with one bus and one device of the probe profile; `{bus}` holds the bus's link.
const SITE: &str = r#"{top}[site]
id = "T-1"
gateway = "g"
profile_dirs = ["profiles"]
{site}[[bus]]
id = "b"
{bus}[[device]]
id = "D1"
bus = "b"
unit = 1
profile = "probe"
poll = "1s"
{tail}"#;

/// The site's profile (`profiles/probe.toml`): an input, an output and a measured value,
/// which is the last point, so `[point.*]` fragments at `{tail}` belong to it.
const PROFILE: &str = r#"model = "probe"
{top}[[point]]
id = "KEY"
kind = "discrete"
address = 0

[[point]]
id = "OUT"
kind = "coil"
address = 0

[[point]]
id = "GAS"
kind = "holding"
address = 0
unit = "%LEL"
range = [0.0, 100.0]
{tail}"#;

const CENTRAL: &str = r#"{top}[mqtt]
broker = "mqtt://127.0.0.1:1883"
{mqtt}[store]
url = "http://127.0.0.1:8428"
{store}{tail}"#;

/// Every slot of the templates, with what it holds when no probe fills it.
const SLOTS: &[(&str, &str)] = &[
    ("top", ""),
    ("site", ""),
    ("bus", "tcp = { host = \"127.0.0.1\", port = 1502 }\n"),
    ("mqtt", ""),
    ("store", ""),
    ("tail", ""),
];

/// A probe per documented table, as (heading, slot, fragment): the fragment, holding
/// [`PROBE_LINE`] inside the heading's table, goes into that slot of the file's template.
type Probes = &'static [(&'static str, &'static str, &'static str)];

/// Tables of the site file; `D1.GAS` is the measured point, `D1.KEY` an input.
const SITE_PROBES: Probes = &[
    ("Top level", "top", "zz_probe = 1\n"),
    ("[site]", "site", "zz_probe = 1\n"),
    ("[site.ack_button]", "tail", "[site.ack_button]\ndevice = \"D1\"\npoint = \"KEY\"\nzz_probe = 1\n"),
    ("[uplink]", "tail", "[uplink]\nbroker = \"mqtt://127.0.0.1:1883\"\nzz_probe = 1\n"),
    ("[store]", "tail", "[store]\ndir = \"store\"\nzz_probe = 1\n"),
    ("[metrics]", "tail", "[metrics]\nlisten = \"127.0.0.1:9464\"\nzz_probe = 1\n"),
    ("[[hazard_source]]", "tail", "[[hazard_source]]\nid = \"HS-1\"\nname = \"Tanks\"\ngrade = 2\nzz_probe = 1\n"),
    ("[hazard_source.cross_item]", "tail", "[[hazard_source]]\nid = \"HS-1\"\nname = \"Dam\"\ngrade = 3\nrollup = \"gb39496\"\n[hazard_source.cross_item]\nblue = 4\nyellow = 3\norange = 2\nzz_probe = 1\n"),
    ("[[bus]]", "bus", "tcp = { host = \"127.0.0.1\", port = 1502 }\nzz_probe = 1\n"),
    ("[bus.tcp]", "bus", "[bus.tcp]\nhost = \"127.0.0.1\"\nport = 1502\nzz_probe = 1\n"),
    ("[bus.rtu]", "bus", "[bus.rtu]\nport = \"/dev/ttyUSB0\"\nbaud = 9600\nzz_probe = 1\n"),
    ("[bus.rtu_over_tcp]", "bus", "[bus.rtu_over_tcp]\nhost = \"127.0.0.1\"\nport = 1502\nzz_probe = 1\n"),
    ("[[device]]", "tail", "zz_probe = 1\n"),
    ("[device.report]", "tail", "[device.report]\nevery = \"10min\"\nzz_probe = 1\n"),
    ("[device.points.ID]", "tail", "[device.points.GAS]\nname = \"Tank top\"\nzz_probe = 1\n"),
    ("[device.points.ID.alarm]", "tail", "[device.points.GAS.alarm]\ndeadband = 1.0\nzz_probe = 1\n"),
    ("[device.derived.ID]", "tail", "[device.derived.MARGIN]\ndifference = [100.0, \"GAS\"]\nzz_probe = 1\n"),
    ("[device.derived.ID.total]", "tail", "[device.derived.DOSE.total]\nof = \"GAS\"\nover = \"1h\"\nzz_probe = 1\n"),
    ("[device.derived.ID.rate]", "tail", "[device.derived.RISE.rate]\nof = \"GAS\"\nover = \"10min\"\nper = \"1min\"\nzz_probe = 1\n"),
];

/// Tables of a profile; `[point.*]` fragments belong to `GAS`, the last point.
const PROFILE_PROBES: Probes = &[
    ("Top level", "top", "zz_probe = 1\n"),
    ("[status_codes.NAME.CODE]", "tail", "[status_codes.state.0]\ntext = \"normal\"\nzz_probe = 1\n"),
    ("[[point]]", "tail", "zz_probe = 1\n"),
    ("[point.simulate]", "tail", "[point.simulate]\nnormal = 1.0\nzz_probe = 1\n"),
    ("[point.report]", "tail", "[point.report]\ndeadband = 1.0\nzz_probe = 1\n"),
    ("[point.alarm]", "tail", "[point.alarm]\ndeadband = 1.0\nzz_probe = 1\n"),
    ("[point.alarm.limits]", "tail", "[[point.alarm.limits]]\nabove = 50.0\nlevel = \"red\"\nzz_probe = 1\n"),
    ("[point.alarm.rate]", "tail", "[point.alarm.rate]\nchange = 5.0\nwithin = \"1min\"\nlevel = \"orange\"\nzz_probe = 1\n"),
    ("[point.alarm.comm_loss]", "tail", "[point.alarm.comm_loss]\nafter = \"30s\"\nlevel = \"yellow\"\nzz_probe = 1\n"),
    ("[point.alarm.calibration]", "tail", "[point.alarm.calibration]\nmax = \"30min\"\nlevel = \"yellow\"\nzz_probe = 1\n"),
    ("[point.alarm.calibration.input]", "tail", "[point.alarm.calibration]\nmax = \"30min\"\nlevel = \"yellow\"\n[point.alarm.calibration.input]\ndevice = \"D1\"\npoint = \"KEY\"\nzz_probe = 1\n"),
    ("[point.alarm.stuck]", "tail", "[point.alarm.stuck]\nsamples = 60\nlevel = \"blue\"\nzz_probe = 1\n"),
    ("[point.alarm.jump]", "tail", "[point.alarm.jump]\nchange = 5.0\nper = \"1s\"\nlevel = \"blue\"\nzz_probe = 1\n"),
    ("[point.alarm.linkage]", "tail", "[[point.alarm.linkage]]\nlevel = \"red\"\ndevice = \"D1\"\npoint = \"OUT\"\nzz_probe = 1\n"),
    ("[point.alarm.linkage.reset]", "tail", "[[point.alarm.linkage]]\nlevel = \"red\"\ndevice = \"D1\"\npoint = \"OUT\"\nlatch = true\n[point.alarm.linkage.reset]\ndevice = \"D1\"\npoint = \"KEY\"\nzz_probe = 1\n"),
    ("[point.alarm.linkage.feedback]", "tail", "[[point.alarm.linkage]]\nlevel = \"red\"\ndevice = \"D1\"\npoint = \"OUT\"\n[point.alarm.linkage.feedback]\ndevice = \"D1\"\npoint = \"KEY\"\nwithin = \"5s\"\nzz_probe = 1\n"),
];

/// Tables of the central file.
const CENTRAL_PROBES: Probes = &[
    ("Top level", "top", "zz_probe = 1\n"),
    ("[mqtt]", "mqtt", "zz_probe = 1\n"),
    ("[store]", "store", "zz_probe = 1\n"),
    ("[ingest]", "tail", "[ingest]\ngroup = \"hazingest\"\nzz_probe = 1\n"),
    ("[web]", "tail", "[web]\nlisten = \"127.0.0.1:8080\"\nzz_probe = 1\n"),
    ("[metrics]", "tail", "[metrics]\nlisten = \"127.0.0.1:9465\"\nzz_probe = 1\n"),
    ("[supervision]", "tail", "[supervision]\nsilence_after = \"2min\"\nzz_probe = 1\n"),
    ("[notify]", "tail", "[notify]\nutc_offset = \"+08:00\"\nzz_probe = 1\n"),
    ("[notify.smtp]", "tail", "[notify.smtp]\nhost = \"smtp.example.org\"\nfrom = \"hazingest@example.org\"\nzz_probe = 1\n"),
    ("[notify.sms]", "tail", "[notify.sms]\nurl = \"https://sms.example.org/send\"\nbody = \"{to}: {text}\"\nzz_probe = 1\n"),
    ("[[contact]]", "tail", "[[contact]]\nid = \"duty\"\nname = \"Duty officer\"\nwebhook = \"http://127.0.0.1:9000/hook\"\nzz_probe = 1\n"),
    ("[[escalation]]", "tail", "[[contact]]\nid = \"duty\"\nname = \"Duty officer\"\nwebhook = \"http://127.0.0.1:9000/hook\"\n[[escalation]]\nsites = [\"*\"]\nzz_probe = 1\n[[escalation.tiers]]\nname = \"Duty\"\ncontacts = [\"duty\"]\nred = \"0s\"\n"),
    ("[escalation.tiers]", "tail", "[[contact]]\nid = \"duty\"\nname = \"Duty officer\"\nwebhook = \"http://127.0.0.1:9000/hook\"\n[[escalation]]\nsites = [\"*\"]\n[[escalation.tiers]]\nname = \"Duty\"\ncontacts = [\"duty\"]\nred = \"0s\"\nzz_probe = 1\n"),
];

/// One table of the reference and how to put the probe key into it.
struct Probe {
    file: File,
    heading: &'static str,
    slot: &'static str,
    fragment: &'static str,
}

/// Every probe, of every file.
fn probes() -> impl Iterator<Item = Probe> {
    File::ALL.into_iter().flat_map(|file| {
        file.probes()
            .iter()
            .map(move |&(heading, slot, fragment)| Probe {
                file,
                heading,
                slot,
                fragment,
            })
    })
}

/// A documented table serde cannot list the fields of, why, and its fields as the code
/// has them, compared with the reference instead of a probe's answer.
struct Unprobed {
    file: File,
    heading: &'static str,
    reason: &'static str,
    fields: &'static [&'static str],
}

const UNPROBED: &[Unprobed] = &[Unprobed {
    file: File::Profile,
    heading: "[unit_codes]",
    reason: "a map from register values to units (RawProfile::unit_codes, BTreeMap<String, String>): any key is taken, so serde has no field list; `CODE` stands for the keys",
    fields: &["CODE"],
}];

impl Probe {
    /// The probed file's text, with the probe key or without it.
    fn text(&self, with_key: bool) -> String {
        assert_eq!(
            self.fragment.matches(PROBE_LINE).count(),
            1,
            "the probe of {} must hold `{}` once",
            self.heading,
            PROBE_LINE.trim()
        );
        let fragment = if with_key {
            self.fragment.to_string()
        } else {
            self.fragment.replace(PROBE_LINE, "")
        };
        fill(self.file, self.slot, &fragment)
    }

    /// Writes the probed file (and the site or profile that goes with it) and runs
    /// `hazgate check` or `hazingest check` on it.
    fn check(&self, with_key: bool) -> Output {
        let w = Workdir::new();
        let text = self.text(with_key);
        if self.file == File::Central {
            let path = w.write("central.toml", &text);
            return Command::new(bin("hazingest"))
                .args(["check", "-c"])
                .arg(path)
                .output()
                .expect("hazingest runs");
        }
        let (site, profile) = match self.file {
            File::Profile => (fill(File::Site, "tail", ""), text),
            _ => (text, fill(File::Profile, "tail", "")),
        };
        std::fs::create_dir(w.path().join("profiles")).expect("profiles folder");
        w.write("profiles/probe.toml", &profile);
        let path = w.write("site.toml", &site);
        hazgate(&[
            "check",
            "-c",
            path.to_str().expect("a UTF-8 temporary path"),
        ])
    }

    fn describe(&self) -> String {
        format!("{} {}", self.file.section(), self.heading)
    }
}

/// `file`'s template with `fragment` in `slot` and the other slots at their defaults.
fn fill(file: File, slot: &str, fragment: &str) -> String {
    let template = file.template();
    let mark = |name: &str| format!("{{{name}}}");
    assert!(
        template.contains(&mark(slot)),
        "the {file:?} template has no slot {slot}"
    );
    let mut text = template.replace(&mark(slot), fragment);
    for &(name, default) in SLOTS {
        text = text.replace(&mark(name), default);
    }
    text
}

/// Everything a checker printed.
fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The fields serde names after the probe key: "expected one of `a`, `b`", "expected `a`
/// or `b`", "expected `a`", or none ("there are no fields"). `None` when no line names the
/// probe key.
fn accepted_fields(output: &str) -> Option<BTreeSet<String>> {
    let line = output.lines().find(|l| l.contains(UNKNOWN))?;
    let (_, rest) = line.split_once(UNKNOWN)?;
    // Anything after a ';' is advice the loader adds, not serde's list.
    let list = rest.split(';').next().unwrap_or_default();
    Some(backticked(list).map(str::to_string).collect())
}

/// The texts between pairs of backticks.
fn backticked(text: &str) -> impl Iterator<Item = &str> {
    text.split('`').skip(1).step_by(2)
}

/// One `### ` table of the reference.
struct Table {
    file: File,
    heading: String,
    line: usize,
    fields: BTreeSet<String>,
    /// Rows whose type is or holds a table: each must name the heading that describes it.
    table_rows: Vec<(String, String)>,
    /// Table lines seen so far (header and separator included), and whether it ended.
    lines: usize,
    ended: bool,
}

impl Table {
    fn new(file: File, heading: &str, line: usize) -> Self {
        Table {
            file,
            heading: heading.trim().trim_matches('`').to_string(),
            line,
            fields: BTreeSet::new(),
            table_rows: Vec::new(),
            lines: 0,
            ended: false,
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} {} (line {})",
            self.file.section(),
            self.heading,
            self.line
        )
    }

    /// Takes one line of its markdown table.
    fn row(&mut self, line: &str, at: usize, problems: &mut Vec<String>) {
        let place = format!("line {at}, under {}", self.describe());
        self.lines += 1;
        if self.ended {
            problems.push(format!("{place}: a second table under one heading"));
            return;
        }
        match self.lines {
            1 if line.trim() != HEADER => {
                problems.push(format!("{place}: the table must start with {HEADER}"))
            }
            1 => {}
            2 if !line.chars().all(|c| matches!(c, '|' | '-' | ':' | ' ')) => {
                problems.push(format!("{place}: the header's separator row is missing"))
            }
            2 => {}
            _ => {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let name = cells
                    .get(1)
                    .and_then(|c| c.strip_prefix('`')?.strip_suffix('`'))
                    .filter(|n| !n.is_empty() && !n.contains('`'));
                let Some(name) = name else {
                    problems.push(format!(
                        "{place}: the first column must be one field name in backticks"
                    ));
                    return;
                };
                if !self.fields.insert(name.to_string()) {
                    problems.push(format!("{place}: `{name}` is listed twice"));
                }
                if cells.get(2).is_some_and(|ty| ty.contains("table")) {
                    self.table_rows.push((name.to_string(), line.to_string()));
                }
            }
        }
    }
}

/// The reference's tables, and what is wrong with its format.
struct Reference {
    tables: Vec<Table>,
    problems: Vec<String>,
}

impl Reference {
    fn read() -> Reference {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/config-reference.md");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Reference::parse(&text)
    }

    fn parse(text: &str) -> Reference {
        let mut file = None;
        let mut tables: Vec<Table> = Vec::new();
        let mut problems = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let at = i + 1;
            if let Some(title) = line.strip_prefix("## ") {
                file = File::ALL.into_iter().find(|f| f.section() == title.trim());
                if file.is_none() {
                    problems.push(format!(
                        "line {at}: \"{title}\" is not one of the sections {:?}",
                        File::ALL.map(File::section)
                    ));
                }
            } else if let Some(heading) = line.strip_prefix("### ") {
                match file {
                    Some(file) => tables.push(Table::new(file, heading, at)),
                    None => problems.push(format!("line {at}: a heading outside a file's section")),
                }
            } else if line.starts_with('|') {
                match tables.last_mut() {
                    Some(t) => t.row(line, at, &mut problems),
                    None => problems.push(format!("line {at}: a table before any heading")),
                }
            } else if let Some(t) = tables.last_mut() {
                t.ended |= t.lines > 0;
            }
        }
        let mut seen = BTreeSet::new();
        for t in &tables {
            if t.fields.is_empty() {
                problems.push(format!("{}: no table of fields", t.describe()));
            }
            if !seen.insert((t.file, t.heading.as_str())) {
                problems.push(format!("{}: the heading is there twice", t.describe()));
            }
        }
        // A field that is a table (or holds tables) names the heading describing it, so a
        // sub-table cannot be listed as a field and left undescribed.
        let headings: BTreeSet<&str> = tables.iter().map(|t| t.heading.as_str()).collect();
        for t in &tables {
            for (name, row) in &t.table_rows {
                if !backticked(row).any(|b| headings.contains(b)) {
                    problems.push(format!(
                        "{}: `{name}` is a table but its row names no heading of the reference",
                        t.describe()
                    ));
                }
            }
        }
        Reference { tables, problems }
    }

    fn table(&self, file: File, heading: &str) -> Option<&Table> {
        self.tables
            .iter()
            .find(|t| t.file == file && t.heading == heading)
    }
}

/// Says how the documented fields differ from the ones the code takes, if they do.
fn compare(
    what: &str,
    documented: &BTreeSet<String>,
    accepted: &BTreeSet<String>,
) -> Option<String> {
    let extra: Vec<&String> = documented.difference(accepted).collect();
    let missing: Vec<&String> = accepted.difference(documented).collect();
    (!extra.is_empty() || !missing.is_empty()).then(|| {
        format!("{what}: documented but not accepted {extra:?}; accepted but not documented {missing:?}")
    })
}

#[test]
fn reference_lists_exactly_the_fields_every_table_accepts() {
    let reference = Reference::read();
    let mut problems = reference.problems.clone();
    let known = |file: File, heading: &str| {
        probes().any(|p| p.file == file && p.heading == heading)
            || UNPROBED
                .iter()
                .any(|u| u.file == file && u.heading == heading)
    };
    for t in &reference.tables {
        if !known(t.file, &t.heading) {
            problems.push(format!(
                "{}: no probe reaches this table; add one to its file's probes (or to \
                 UNPROBED, saying why serde cannot list its fields)",
                t.describe()
            ));
        }
    }
    for probe in probes() {
        let Some(table) = reference.table(probe.file, probe.heading) else {
            problems.push(format!(
                "{}: probed, but not in the reference",
                probe.describe()
            ));
            continue;
        };
        let out = probe.check(true);
        match accepted_fields(&printed(&out)) {
            Some(accepted) => problems.extend(compare(&table.describe(), &table.fields, &accepted)),
            None => problems.push(format!(
                "{}: the probe was not refused as an unknown field:\n{}",
                table.describe(),
                printed(&out)
            )),
        }
    }
    for u in UNPROBED {
        let Some(table) = reference.table(u.file, u.heading) else {
            problems.push(format!(
                "{} {}: listed in UNPROBED, but not in the reference",
                u.file.section(),
                u.heading
            ));
            continue;
        };
        let fields = u.fields.iter().map(|f| f.to_string()).collect();
        let what = format!("{} (not probed: {})", table.describe(), u.reason);
        problems.extend(compare(&what, &table.fields, &fields));
    }
    assert!(
        problems.is_empty(),
        "docs/config-reference.md disagrees with the code:\n{}",
        problems.join("\n")
    );
}

/// Each probe config is valid without the probe key, so the key is the only thing its
/// checker can refuse, and the field list it prints is the table's.
#[test]
fn probe_configs_are_valid_without_the_probe() {
    let mut failures = Vec::new();
    for probe in probes() {
        let out = probe.check(false);
        if !out.status.success() {
            failures.push(format!(
                "{}:\n{}\n{}",
                probe.describe(),
                probe.text(false),
                printed(&out)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "probe configs refused without the probe key:\n{}",
        failures.join("\n")
    );
}

#[test]
fn serde_field_lists_are_read_in_every_form() {
    let fields = |text: &str| accepted_fields(text).map(|s| s.into_iter().collect::<Vec<_>>());
    let line = |tail: &str| format!("site.toml:3: unknown field `zz_probe`, {tail}");
    assert_eq!(
        fields(&line("expected one of `a`, `b`, `c`")),
        Some(vec!["a".into(), "b".into(), "c".into()])
    );
    assert_eq!(
        fields(&line("expected `a` or `b`")),
        Some(vec!["a".into(), "b".into()])
    );
    assert_eq!(fields(&line("expected `a`")), Some(vec!["a".into()]));
    assert_eq!(fields(&line("there are no fields")), Some(vec![]));
    assert_eq!(
        fields(&line(
            "expected `a`; a password is never written into the config: use `password_file`"
        )),
        Some(vec!["a".into()])
    );
    assert_eq!(fields("site.toml:3: device \"D\".bus: no bus \"b\""), None);
}

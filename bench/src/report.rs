//! Tables on the terminal and sections of BENCHMARKS.md, one per benchmark, replaced in
//! place so each run keeps the other benchmarks' figures.

use std::path::Path;

pub struct Table {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub notes: Vec<String>,
}

impl Table {
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "## {}\n\n| {} |\n|{}|\n",
            self.title,
            self.header.join(" | "),
            self.header
                .iter()
                .map(|_| "---")
                .collect::<Vec<_>>()
                .join("|")
        );
        for row in &self.rows {
            s.push_str(&format!("| {} |\n", row.join(" | ")));
        }
        if !self.notes.is_empty() {
            s.push('\n');
            for n in &self.notes {
                s.push_str(&format!("{n}\n"));
            }
        }
        s
    }

    pub fn print(&self) {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r[i].len())
                    .chain([self.header[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        println!("\n{}", self.title);
        let line = |cells: &[String]| {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
        };
        println!("{}", line(&self.header));
        for r in &self.rows {
            println!("{}", line(r));
        }
        for n in &self.notes {
            println!("{n}");
        }
    }
}

/// Replaces (or appends) the section between this benchmark's markers.
pub fn write_section(file: &Path, key: &str, table: &Table) -> std::io::Result<()> {
    let start = format!("<!-- bench:{key}:start -->");
    let end = format!("<!-- bench:{key}:end -->");
    let body = format!("{start}\n{}{end}\n", table.markdown());
    let old = std::fs::read_to_string(file).unwrap_or_else(|_| {
        "# Benchmarks\n\nFigures written by `scripts/bench` on the machine named in each section. Do not edit between the markers.\n\n".to_string()
    });
    let new = match (old.find(&start), old.find(&end)) {
        (Some(a), Some(b)) if b > a => {
            format!("{}{}{}", &old[..a], body, &old[b + end.len() + 1..])
        }
        _ => format!("{old}\n{body}"),
    };
    std::fs::write(file, new)
}

pub fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {cpu}")
}

/// "target: met" or "target: NOT met".
pub fn verdict(ok: bool, target: &str) -> String {
    format!("{target}: {}", if ok { "met" } else { "NOT met" })
}

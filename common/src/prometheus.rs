//! The Prometheus text exposition format (version 0.0.4), written rather than rendered by
//! hand in each daemon: every metric gets its `# HELP` and `# TYPE` lines, label values are
//! escaped, and a histogram's buckets, sum and count come out in the order scrapers expect.
//!
//! ```
//! let mut t = hazgate_common::PromText::new("hazgate_");
//! t.counter("polls_total", "Device poll cycles run.", 3);
//! assert_eq!(
//!     t.finish(),
//!     "# HELP hazgate_polls_total Device poll cycles run.\n# TYPE hazgate_polls_total counter\nhazgate_polls_total 3\n"
//! );
//! ```

use std::fmt::{Display, Write};

/// The content type of a page written by [`PromText`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// A metric's type, as `# TYPE` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// One `/metrics` page; every name is given without the daemon's prefix.
#[derive(Debug)]
pub struct PromText {
    prefix: &'static str,
    out: String,
}

impl PromText {
    /// A page whose metric names all start with `prefix` (e.g. `"hazgate_"`).
    pub fn new(prefix: &'static str) -> Self {
        Self {
            prefix,
            out: String::with_capacity(4096),
        }
    }

    /// A counter: only ever grows (until the daemon restarts).
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.single(name, help, Kind::Counter, value);
    }

    /// A gauge: a value that goes up and down.
    pub fn gauge(&mut self, name: &str, help: &str, value: u64) {
        self.single(name, help, Kind::Gauge, value);
    }

    fn single(&mut self, name: &str, help: &str, kind: Kind, value: u64) {
        self.head(name, help, kind.as_str());
        let _ = writeln!(self.out, "{}{name} {value}", self.prefix);
    }

    /// One metric with a series per value of `label`, in the order given (none at all
    /// leaves just the `# HELP` and `# TYPE` lines).
    pub fn labelled<V: Display>(
        &mut self,
        name: &str,
        help: &str,
        kind: Kind,
        label: &str,
        series: impl IntoIterator<Item = (V, u64)>,
    ) {
        self.head(name, help, kind.as_str());
        for (value, n) in series {
            let _ = writeln!(
                self.out,
                "{}{name}{{{label}=\"{}\"}} {n}",
                self.prefix,
                escape(&value.to_string())
            );
        }
    }

    /// A histogram: `buckets` are (upper bound, observations at or below it), cumulative
    /// and in increasing order; `count` is every observation (the `+Inf` bucket), `sum`
    /// their total.
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        buckets: impl IntoIterator<Item = (f64, u64)>,
        count: u64,
        sum: f64,
    ) {
        self.head(name, help, "histogram");
        let p = self.prefix;
        for (bound, n) in buckets {
            let _ = writeln!(self.out, "{p}{name}_bucket{{le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(self.out, "{p}{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(self.out, "{p}{name}_sum {sum}");
        let _ = writeln!(self.out, "{p}{name}_count {count}");
    }

    fn head(&mut self, name: &str, help: &str, kind: &str) {
        let p = self.prefix;
        let _ = writeln!(
            self.out,
            "# HELP {p}{name} {}\n# TYPE {p}{name} {kind}",
            help.replace('\\', "\\\\").replace('\n', "\\n")
        );
    }

    /// The page.
    pub fn finish(self) -> String {
        self.out
    }
}

/// A label value as the format wants it: backslash, double quote and line feed escaped.
fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains(['\\', '"', '\n']) {
        value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
            .into()
    } else {
        value.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_kind_exactly() {
        let mut t = PromText::new("x_");
        t.gauge("up", "1 while up.", 1);
        t.labelled(
            "errors_total",
            "Errors by reason.",
            Kind::Counter,
            "reason",
            [("timeout", 2), ("a\"b", 1)],
        );
        t.labelled(
            "none_total",
            "Nothing yet.",
            Kind::Counter,
            "k",
            Vec::<(&str, u64)>::new(),
        );
        t.histogram(
            "request_seconds",
            "Latency.",
            [(0.005, 1), (0.5, 3), (1.0, 4)],
            5,
            2.25,
        );
        assert_eq!(
            t.finish(),
            "# HELP x_up 1 while up.\n# TYPE x_up gauge\nx_up 1\n\
             # HELP x_errors_total Errors by reason.\n# TYPE x_errors_total counter\n\
             x_errors_total{reason=\"timeout\"} 2\nx_errors_total{reason=\"a\\\"b\"} 1\n\
             # HELP x_none_total Nothing yet.\n# TYPE x_none_total counter\n\
             # HELP x_request_seconds Latency.\n# TYPE x_request_seconds histogram\n\
             x_request_seconds_bucket{le=\"0.005\"} 1\nx_request_seconds_bucket{le=\"0.5\"} 3\n\
             x_request_seconds_bucket{le=\"1\"} 4\nx_request_seconds_bucket{le=\"+Inf\"} 5\n\
             x_request_seconds_sum 2.25\nx_request_seconds_count 5\n"
        );
    }
}

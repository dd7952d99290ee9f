//! Config errors an operator can act on: which file, which line, which field, what is wrong
//! and what would be valid.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem found in a config or profile file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line, when the problem can be pinned to one.
    pub line: Option<usize>,
    /// Dotted path of the field, e.g. `device "GD-101".bus`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one load: an operator fixes them all in one pass, not one per run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ConfigErrors {
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }
}

/// The text of one file, kept to turn byte spans into line numbers.
#[derive(Debug, Clone)]
pub struct SourceText {
    pub path: PathBuf,
    pub text: String,
}

impl SourceText {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            text: text.into(),
        }
    }

    pub fn read(path: &Path) -> Result<Self, ConfigErrors> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Self::new(path, text)),
            Err(e) => Err(ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: None,
                field: String::new(),
                message: format!("cannot read the file: {e}"),
            }])),
        }
    }

    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// Turns a TOML syntax or shape error into a located error.
    pub fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        let line = e.span().map(|s| self.line_of(s.start));
        // A wrong type names its field (`device.poll`), found from where the value is.
        let field = e
            .span()
            .filter(|_| e.message().starts_with("invalid type"))
            .map(|s| field_at(&self.text, s.start))
            .unwrap_or_default();
        ConfigError {
            file: self.path.clone(),
            line,
            field,
            message: e.message().trim().to_string(),
        }
    }
}

/// The dotted name of the key whose value starts at `at`: the nearest table header above
/// (`[[device]]` gives `device`), the inline tables open on its line, and the key itself.
fn field_at(text: &str, at: usize) -> String {
    let at = (0..=at.min(text.len()))
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    // Keys on the value's line: each `key =` names what follows; `{` opens a table of it.
    let mut path: Vec<String> = table.into_iter().collect();
    let base = path.len();
    let (mut word, mut key) = (String::new(), None::<String>);
    for c in text[line_start..at].chars() {
        match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '_' | '-' => word.push(c),
            '=' => key = Some(std::mem::take(&mut word)),
            '{' => {
                if let Some(k) = key.take() {
                    path.push(k);
                }
            }
            '}' => {
                if path.len() > base {
                    path.pop();
                }
            }
            ' ' | '\t' => {}
            _ => word.clear(),
        }
        if c == ',' {
            key = None;
        }
    }
    path.extend(key);
    path.join(".")
}

#[cfg(test)]
mod field_tests {
    use super::field_at;

    #[test]
    fn a_value_is_named_by_its_table_and_key() {
        let text = "[site]\nid = \"T\"\n[[device]]\nid = \"D\"\npoll = 5\n[[bus]]\ntcp = { host = \"h\", port = \"x\" }\n";
        assert_eq!(field_at(text, text.find("5").unwrap()), "device.poll");
        assert_eq!(field_at(text, text.find("\"x\"").unwrap()), "bus.tcp.port");
        assert_eq!(field_at(text, text.find("\"T\"").unwrap()), "site.id");
    }
}

/// Collects errors against one source file.
#[derive(Debug)]
pub struct Diagnostics<'a> {
    pub source: &'a SourceText,
    pub errors: Vec<ConfigError>,
}

impl<'a> Diagnostics<'a> {
    pub fn new(source: &'a SourceText) -> Self {
        Self {
            source,
            errors: Vec::new(),
        }
    }

    pub fn error(
        &mut self,
        span: Option<Range<usize>>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.errors.push(ConfigError {
            file: self.source.path.clone(),
            line: span.map(|s| self.source.line_of(s.start)),
            field: field.into(),
            message: message.into(),
        });
    }

    pub fn finish<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ConfigErrors(self.errors))
        }
    }
}

//! Device profiles: one TOML file per device model, holding its register map.

pub mod alarm;
mod builtin;
pub mod model;
pub mod raw;
pub mod report;
pub mod resolve;

pub use builtin::{builtin_profile, builtin_profiles};
pub use model::*;

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{ConfigErrors, Diagnostics, SourceText};
use raw::RawProfile;
use resolve::{resolve_points, Tables};

/// A profile read from its file, kept raw as well so a site can override its points.
#[derive(Debug)]
pub struct LoadedProfile {
    /// Shared by every device of this model.
    pub profile: std::sync::Arc<Profile>,
    pub raw_points: Vec<raw::RawPoint>,
    pub source: SourceText,
}

/// Parses and checks one profile; `expected_model` is the name the site used for it.
pub fn parse_profile(
    source: SourceText,
    expected_model: Option<&str>,
) -> Result<LoadedProfile, ConfigErrors> {
    let raw: RawProfile =
        toml::from_str(&source.text).map_err(|e| ConfigErrors(vec![source.toml_error(&e)]))?;
    let mut diag = Diagnostics::new(&source);
    let model = raw.model.get_ref().clone();
    if let Some(expected) = expected_model {
        if expected != model {
            diag.error(
                Some(raw.model.span()),
                "model",
                format!("the file is named for \"{expected}\" but says model = \"{model}\""),
            );
        }
    }
    let mut status_tables = BTreeMap::new();
    for (name, codes) in &raw.status_codes {
        let mut table = BTreeMap::new();
        for (code, meaning) in codes {
            match code.parse::<u16>() {
                Ok(c) => {
                    table.insert(c, meaning.clone());
                }
                Err(_) => diag.error(
                    None,
                    format!("status_codes.{name}.{code}"),
                    "status codes are register values 0..=65535",
                ),
            }
        }
        status_tables.insert(name.clone(), table);
    }
    let mut unit_codes = BTreeMap::new();
    for (code, unit) in &raw.unit_codes {
        if let Err(e) = hazgate_wire::validate::unit(unit) {
            diag.error(None, format!("unit_codes.{code}"), e.to_string());
        }
        match code.parse::<u16>() {
            Ok(c) => {
                unit_codes.insert(c, unit.clone());
            }
            Err(_) => diag.error(
                None,
                format!("unit_codes.{code}"),
                "unit codes are register values 0..=65535",
            ),
        }
    }
    let limit =
        |v: &Option<toml::Spanned<u16>>, max: u16, field: &str, diag: &mut Diagnostics| -> u16 {
            match v {
                Some(s) if (1..=max).contains(s.get_ref()) => *s.get_ref(),
                Some(s) => {
                    diag.error(
                        Some(s.span()),
                        field,
                        format!("{} is not allowed; Modbus reads at most {max}", s.get_ref()),
                    );
                    max
                }
                None => max,
            }
        };
    let max_registers = limit(&raw.max_registers, 125, "max_registers", &mut diag);
    let max_bits = limit(&raw.max_bits, 2000, "max_bits", &mut diag);
    if raw.points.is_empty() {
        diag.error(None, "point", "a profile needs at least one [[point]]");
    }
    let tables = Tables {
        status: &status_tables,
    };
    let points = resolve_points(&raw.points, &tables, &mut diag, "point");
    let profile = Profile {
        model,
        vendor: raw.vendor,
        description: raw.description,
        max_registers,
        max_bits,
        unit_codes,
        status_tables,
        points: points.into(),
    };
    diag.finish(())?;
    Ok(LoadedProfile {
        profile: std::sync::Arc::new(profile),
        raw_points: raw.points,
        source,
    })
}

/// Finds a profile by model name: first in the site's own profile folders, then among the
/// profiles built into the binary.
pub fn find_profile(
    model: &str,
    dirs: &[std::path::PathBuf],
) -> Option<Result<LoadedProfile, ConfigErrors>> {
    for dir in dirs {
        let path = dir.join(format!("{model}.toml"));
        if path.is_file() {
            return Some(SourceText::read(&path).and_then(|s| parse_profile(s, Some(model))));
        }
    }
    builtin_profile(model).map(|text| {
        let path = Path::new("firmware-config/profiles").join(format!("{model}.toml"));
        parse_profile(SourceText::new(path, text), Some(model))
    })
}

//! The JSON Schemas of docs/schema/, for validating messages taken off the broker.

use anyhow::{anyhow, Result};
use serde_json::Value;

use crate::workspace;

const BASE: &str = "https://hazgate.example/schema/";

/// Validators for every message kind, with cross-file references resolved locally.
pub struct Schemas {
    by_kind: Vec<(String, jsonschema::Validator)>,
}

impl Schemas {
    pub fn load() -> Result<Schemas> {
        let dir = workspace().join("docs/schema");
        let mut documents = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
                documents.push((path.file_stem().unwrap().to_string_lossy().to_string(), doc));
            }
        }
        let mut by_kind = Vec::new();
        for (name, doc) in &documents {
            let mut options = jsonschema::options();
            for (other, other_doc) in &documents {
                let resource = jsonschema::Resource::from_contents(other_doc.clone())
                    .map_err(|e| anyhow!("{other}: {e}"))?;
                options.with_resource(format!("{BASE}{other}.json"), resource);
            }
            let validator = options
                .build(doc)
                .map_err(|e| anyhow!("schema {name}: {e}"))?;
            by_kind.push((name.clone(), validator));
        }
        Ok(Schemas { by_kind })
    }

    /// Checks a message against the schema of its `kind`; the error lists every violation.
    pub fn validate(&self, message: &Value) -> Result<()> {
        let kind = message["kind"]
            .as_str()
            .ok_or_else(|| anyhow!("message has no kind: {message}"))?;
        let (_, v) = self
            .by_kind
            .iter()
            .find(|(k, _)| k == kind)
            .ok_or_else(|| anyhow!("no schema for kind {kind:?}"))?;
        let errors: Vec<String> = v
            .iter_errors(message)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(anyhow!(
                "{kind} message does not match docs/schema/{kind}.json: {}\n{message}",
                errors.join("; ")
            ))
        }
    }
}

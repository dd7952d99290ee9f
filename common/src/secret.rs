//! Secrets (an MQTT password, a store token) read where the config says they are, at the
//! moment they are needed, and never logged: a config file holds only where they are.

use std::path::PathBuf;

use firmware_config::site::Secret;

/// A secret that could not be read; says which one and where it was looked for, never
/// what it is.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read the {what} from {}: {source}", path.display())]
    File {
        what: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the environment variable {name} with the {what} is not set")]
    Env { what: String, name: String },
}

/// Reads a secret where the config says it is; `what` names it in the error. A file's
/// trailing line break is not part of the secret.
pub fn read_secret(secret: &Secret, what: &str) -> Result<String, SecretError> {
    match secret {
        Secret::File(path) => std::fs::read_to_string(path)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
            .map_err(|source| SecretError::File {
                what: what.to_string(),
                path: path.clone(),
                source,
            }),
        Secret::Env(name) => std::env::var(name).map_err(|_| SecretError::Env {
            what: what.to_string(),
            name: name.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_secret_loses_its_line_break_and_errors_name_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\r\n").unwrap();
        assert_eq!(
            read_secret(&Secret::File(path.clone()), "MQTT password").unwrap(),
            "s3cret"
        );
        let missing = dir.path().join("missing");
        let e = read_secret(&Secret::File(missing.clone()), "MQTT password").unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "cannot read the MQTT password from {}: ",
                missing.display()
            )),
            "{e}"
        );
        let e = read_secret(
            &Secret::Env("HAZGATE_TEST_SURELY_UNSET".into()),
            "store token",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the environment variable HAZGATE_TEST_SURELY_UNSET with the store token is not set"
        );
    }
}

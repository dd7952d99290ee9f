//! TLS to the broker with rustls (ring provider): the CA that signed the broker's
//! certificate, and optionally a client certificate and key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// What is wrong with the TLS files a config names.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("an mqtts:// broker needs `ca_file`, the CA that signed the broker's certificate")]
    NoCaFile,
    #[error("cannot read CA file {}: {source}", path.display())]
    ReadCa { path: PathBuf, source: pem::Error },
    #[error("bad certificate in {}: {source}", path.display())]
    BadCa { path: PathBuf, source: pem::Error },
    #[error("unusable CA certificate in {}: {source}", path.display())]
    UnusableCa {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("no certificate in CA file {}", path.display())]
    EmptyCa { path: PathBuf },
    #[error("{0}")]
    Protocols(rustls::Error),
    #[error("cannot read client certificate {}: {source}", path.display())]
    ReadClientCert { path: PathBuf, source: pem::Error },
    #[error("cannot read client key {}: {source}", path.display())]
    ReadClientKey { path: PathBuf, source: pem::Error },
    #[error("client certificate and key do not fit together: {0}")]
    ClientAuth(rustls::Error),
}

/// A client config trusting only `ca_file`'s certificates, with the client certificate and
/// key of `client` (cert file, key file) when given.
pub fn client_config(
    ca_file: Option<&Path>,
    client: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    let ca_file = ca_file.ok_or(TlsError::NoCaFile)?;
    let path = || ca_file.to_path_buf();
    let certs = CertificateDer::pem_file_iter(ca_file).map_err(|source| TlsError::ReadCa {
        path: path(),
        source,
    })?;
    for cert in certs {
        let cert = cert.map_err(|source| TlsError::BadCa {
            path: path(),
            source,
        })?;
        roots.add(cert).map_err(|source| TlsError::UnusableCa {
            path: path(),
            source,
        })?;
    }
    if roots.is_empty() {
        return Err(TlsError::EmptyCa { path: path() });
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Protocols)?
            .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert_file, key_file)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
                .and_then(|it| it.collect())
                .map_err(|source| TlsError::ReadClientCert {
                    path: cert_file.to_path_buf(),
                    source,
                })?;
            let key = PrivateKeyDer::from_pem_file(key_file).map_err(|source| {
                TlsError::ReadClientKey {
                    path: key_file.to_path_buf(),
                    source,
                }
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(TlsError::ClientAuth)?
        }
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_ca_files_are_named() {
        assert_eq!(
            client_config(None, None).unwrap_err().to_string(),
            "an mqtts:// broker needs `ca_file`, the CA that signed the broker's certificate"
        );
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "").unwrap();
        assert_eq!(
            client_config(Some(&empty), None).unwrap_err().to_string(),
            format!("no certificate in CA file {}", empty.display())
        );
        let missing = dir.path().join("none.pem");
        let e = client_config(Some(&missing), None).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("cannot read CA file {}: ", missing.display())),
            "{e}"
        );
    }
}

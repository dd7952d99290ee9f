//! TLS to the broker with rustls (ring provider): the site's CA, and optionally a client
//! certificate and key.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use super::UplinkError;

pub fn client_config(
    ca_file: Option<&Path>,
    client: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, UplinkError> {
    let mut roots = RootCertStore::empty();
    let Some(ca_file) = ca_file else {
        return Err(UplinkError::Tls(
            "an mqtts:// broker needs `ca_file`, the CA that signed the broker's certificate"
                .into(),
        ));
    };
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| UplinkError::Tls(format!("cannot read CA file {}: {e}", ca_file.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| {
            UplinkError::Tls(format!("bad certificate in {}: {e}", ca_file.display()))
        })?;
        roots.add(cert).map_err(|e| {
            UplinkError::Tls(format!(
                "unusable CA certificate in {}: {e}",
                ca_file.display()
            ))
        })?;
    }
    if roots.is_empty() {
        return Err(UplinkError::Tls(format!(
            "no certificate in CA file {}",
            ca_file.display()
        )));
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| UplinkError::Tls(e.to_string()))?
            .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert_file, key_file)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
                .and_then(|it| it.collect())
                .map_err(|e| {
                    UplinkError::Tls(format!(
                        "cannot read client certificate {}: {e}",
                        cert_file.display()
                    ))
                })?;
            let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
                UplinkError::Tls(format!(
                    "cannot read client key {}: {e}",
                    key_file.display()
                ))
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                UplinkError::Tls(format!(
                    "client certificate and key do not fit together: {e}"
                ))
            })?
        }
    };
    Ok(Arc::new(config))
}

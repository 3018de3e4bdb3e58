//! TLS client settings shared by IMAP and SMTP: rustls with the ring provider, never OpenSSL.
//!
//! Servers are verified against the system's roots, or against `ca_file` alone when it is set (a
//! private CA, or a test lab): pinning to one CA is stricter than adding it to the system roots.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, pki_types::CertificateDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("CA file {path}: {detail}")]
    CaFile { path: String, detail: String },
    #[error("no trusted root certificates found on this system (set ca_file)")]
    NoRoots,
}

/// Installs ring as the process-wide crypto provider. Idempotent.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The certificates in a PEM file.
pub fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |detail: String| TlsError::CaFile { path: path.display().to_string(), detail };
    let data = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let certs: Vec<_> =
        rustls_pemfile::certs(&mut data.as_slice()).collect::<Result<_, _>>().map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in it".into()));
    }
    Ok(certs)
}

pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    install_provider();
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in read_pem(path)? {
                roots
                    .add(cert)
                    .map_err(|e| TlsError::CaFile { path: path.display().to_string(), detail: e.to_string() })?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(TlsError::NoRoots);
            }
        }
    }
    Ok(Arc::new(ClientConfig::builder().with_root_certificates(roots).with_no_client_auth()))
}

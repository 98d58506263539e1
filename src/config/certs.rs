//! PEM files named by `tls:` blocks: read, parsed and cross-checked once, so that
//! `veil check` and start-up report a bad certificate with its key, and the shell builds
//! its TLS contexts from files already known to be good.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Every certificate in a PEM file, in file order (leaf first for a chain). An empty
/// file or one with no `CERTIFICATE` block is an error.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| pem_error(path, e))?;
    let certs = iter
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no PEM CERTIFICATE block found",
            path.display()
        ));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(path, e))
}

/// The key signs for the leaf certificate: a mismatch would only surface as handshake
/// failures at run time.
pub fn check_pair(
    certs: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
) -> Result<(), String> {
    let signing = rustls::crypto::ring::sign::any_supported_type(key)
        .map_err(|e| format!("unusable private key: {e}"))?;
    rustls::sign::CertifiedKey::new(certs.to_vec(), signing)
        .keys_match()
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                "the key does not match the certificate".to_string()
            }
            other => format!("the key cannot be checked against the certificate: {other}"),
        })
}

/// A root store from a CA file; every certificate in it must be a usable trust anchor.
pub fn load_roots(path: &Path) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| format!("{}: not a usable CA certificate: {e}", path.display()))?;
    }
    Ok(roots)
}

fn pem_error(path: &Path, e: rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(io) => format!("cannot read {}: {io}", path.display()),
        Error::NoItemsFound => format!("{}: no matching PEM block found", path.display()),
        other => format!("{}: not valid PEM: {other:?}", path.display()),
    }
}

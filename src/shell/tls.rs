//! TLS contexts built from the config: one acceptor per TLS listener, one client context
//! per TLS peer (its CA or the system roots, its SNI name, its client certificate). All
//! use the ring provider, the only one compiled in.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::certs::{check_pair, load_certs, load_key, load_roots};
use crate::config::{Config, PeerConfig, TlsConfig, Transport};
use crate::sip::Host;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server side of a TLS listener; with `ca`, client certificates are verified
/// (required with `verify_client: true`).
pub(super) fn acceptor(cfg: &TlsConfig) -> Result<TlsAcceptor, String> {
    let certs = load_certs(&cfg.cert)?;
    let key = load_key(&cfg.key)?;
    check_pair(&certs, &key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &cfg.ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(load_roots(ca)?), provider());
            let verifier = if cfg.verify_client {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| e.to_string())?)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// How veil connects to one TLS peer.
#[derive(Clone)]
pub(super) struct PeerClient {
    pub connector: TlsConnector,
    /// SNI, and the name the peer's certificate must be valid for.
    pub name: ServerName<'static>,
}

/// Client contexts for every TLS peer, by peer name (a name may resolve to many
/// addresses, and they change with DNS); `fallback` is for TLS targets that are no
/// configured peer (a Contact elsewhere): system roots, the IP as the name.
#[derive(Clone)]
pub(super) struct Clients {
    pub by_peer: HashMap<String, PeerClient>,
    fallback: Option<TlsConnector>,
}

impl Clients {
    pub fn build(cfg: &Config) -> Result<Clients, String> {
        let mut system: Option<Arc<RootCertStore>> = None;
        let mut by_peer = HashMap::new();
        for p in &cfg.peers {
            if p.transport != Transport::Tls {
                continue;
            }
            let client =
                peer_client(p, &mut system).map_err(|e| format!("peer {}: {e}", p.name))?;
            by_peer.insert(p.name.clone(), client);
        }
        let any_tls = cfg.sip.listen.iter().any(|l| l.transport == Transport::Tls);
        let fallback = if any_tls {
            let roots = system_roots(&mut system);
            let config = ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Some(TlsConnector::from(Arc::new(config)))
        } else {
            None
        };
        Ok(Clients { by_peer, fallback })
    }

    /// The context for `remote`: its peer's, else the fallback named by the IP.
    pub fn for_peer(&self, peer: Option<&String>, remote: SocketAddr) -> Option<PeerClient> {
        if let Some(c) = peer.and_then(|p| self.by_peer.get(p)) {
            return Some(c.clone());
        }
        self.fallback.as_ref().map(|connector| PeerClient {
            connector: connector.clone(),
            name: ServerName::IpAddress(remote.ip().into()),
        })
    }
}

fn system_roots(cache: &mut Option<Arc<RootCertStore>>) -> Arc<RootCertStore> {
    cache
        .get_or_insert_with(|| {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "system CA certificates: some could not be read");
            }
            let mut roots = RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            tracing::debug!(added, ignored, "system CA certificates loaded");
            Arc::new(roots)
        })
        .clone()
}

fn peer_client(
    p: &PeerConfig,
    system: &mut Option<Arc<RootCertStore>>,
) -> Result<PeerClient, String> {
    let tls = p.tls.clone().unwrap_or_default();
    let roots = match &tls.ca {
        Some(ca) => Arc::new(load_roots(ca)?),
        None => system_roots(system),
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(|e| e.to_string())?,
        _ => builder.with_no_client_auth(),
    };
    let name = match (&tls.server_name, &p.address.host) {
        (Some(n), _) => ServerName::try_from(n.clone()).map_err(|e| format!("server_name: {e}"))?,
        (None, Host::V4(a)) => ServerName::IpAddress(std::net::IpAddr::V4(*a).into()),
        (None, Host::V6(a)) => ServerName::IpAddress(std::net::IpAddr::V6(*a).into()),
        (None, Host::Name(n)) => {
            ServerName::try_from(n.clone()).map_err(|e| format!("server_name: {e}"))?
        }
    };
    Ok(PeerClient {
        connector: TlsConnector::from(Arc::new(config)),
        name,
    })
}

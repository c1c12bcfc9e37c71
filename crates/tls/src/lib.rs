//! TLS material read from PEM files, and the rustls configurations built from it: the RESP
//! port's (Redis's `tls-*` settings) and the peers' (mutual TLS between nodes).
//!
//! Certificates are rotated without a restart: a [`Reloading`] configuration looks at its
//! files' modification times (and sizes) at most once every [`RELOAD_CHECK`], when a
//! connection asks for it, and builds a new configuration when they changed. Connections
//! open keep the configuration they started with; the next one gets the new. A file that
//! does not load (half written, a key that does not match its certificate) changes
//! nothing: the configuration in use stays, and a warning says why; it is tried again once
//! a file changes again.
//!
//! One crypto provider, ring, everywhere: every configuration is built with
//! [`provider`] rather than a process-wide default, so nothing depends on which provider
//! another crate may have installed.
//!
//! Invariants: a [`Reloading`] always holds a configuration that loaded completely (the
//! first one must load, or it is not made); checking for changes costs no system call
//! more than once a second.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tracing::{info, warn};

pub use rustls;
pub use tokio_rustls;

/// Least time between two looks at the files of a [`Reloading`] configuration.
pub const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// Why TLS material did not load.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file is missing, unreadable, or holds no usable PEM.
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    /// rustls refused the material (a key that does not match its certificate, say).
    #[error("{0}")]
    Rustls(String),
}

/// The files of one TLS identity: a certificate chain, its private key, and the CA
/// certificates a peer's certificate must chain to (`None`: peers are not asked for one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Files {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: Option<PathBuf>,
}

/// What a server asks of its clients' certificates (Redis's `tls-auth-clients`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientCerts {
    /// None is asked for (`no`).
    Ignored,
    /// One is asked for; a client without one is taken, one with a bad one is refused
    /// (`optional`).
    Optional,
    /// A client must present one chained to the CA (`yes`).
    Required,
}

/// The crypto provider of every configuration: ring's.
// rustls deprecates ring's provider for lacking post-quantum key exchange; aws-lc-rs,
// which has it, needs cmake and a C toolchain to build, which this project avoids.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// What the files held.
struct Material {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    roots: Option<Arc<RootCertStore>>,
}

fn file_error(path: &Path, reason: impl ToString) -> Error {
    Error::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The certificates of a PEM file (at least one).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no CERTIFICATE in the file"));
    }
    Ok(certs)
}

impl Files {
    fn load(&self) -> Result<Material, Error> {
        let certs = read_certs(&self.cert)?;
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| file_error(&self.key, e))?;
        let roots = match &self.ca {
            None => None,
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in read_certs(ca)? {
                    roots.add(cert).map_err(|e| file_error(ca, e))?;
                }
                Some(Arc::new(roots))
            }
        };
        Ok(Material { certs, key, roots })
    }

    /// What tells a changed file from the one loaded: modification time and size of
    /// each (`None` for one that cannot be read).
    fn stamps(&self) -> Vec<Option<(SystemTime, u64)>> {
        [Some(&self.cert), Some(&self.key), self.ca.as_ref()]
            .into_iter()
            .flatten()
            .map(|p| {
                std::fs::metadata(p)
                    .and_then(|m| Ok((m.modified()?, m.len())))
                    .ok()
            })
            .collect()
    }
}

fn rustls_error(e: impl ToString) -> Error {
    Error::Rustls(e.to_string())
}

/// A server configuration: this identity, and client certificates as `clients` says
/// (checked against the CA, which `Optional` and `Required` need).
fn server_config(m: Material, clients: ClientCerts, alpn: &[&[u8]]) -> Result<ServerConfig, Error> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(rustls_error)?;
    let builder = match (clients, m.roots) {
        (ClientCerts::Ignored, _) => builder.with_no_client_auth(),
        (_, None) => {
            return Err(Error::Rustls(
                "client certificates are asked for, but no CA file is given".into(),
            ))
        }
        (clients, Some(roots)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier = if clients == ClientCerts::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().map_err(rustls_error)?)
        }
    };
    let mut config = builder
        .with_single_cert(m.certs, m.key)
        .map_err(rustls_error)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A client configuration: this identity, presented to servers, whose certificates must
/// chain to the CA and name the host dialed.
fn client_config(m: Material, alpn: &[&[u8]]) -> Result<ClientConfig, Error> {
    let roots = m
        .roots
        .ok_or_else(|| Error::Rustls("a client needs a CA file to check servers with".into()))?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(rustls_error)?
        .with_root_certificates(roots)
        .with_client_auth_cert(m.certs, m.key)
        .map_err(rustls_error)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

type Build<T> = Box<dyn Fn(Material) -> Result<T, Error> + Send + Sync>;

/// A configuration rebuilt from its files when they change (see the module's header).
pub struct Reloading<T> {
    files: Files,
    /// What it is for, in its log lines (`"tls"`, `"peer-tls"`).
    what: &'static str,
    build: Build<T>,
    state: Mutex<State<T>>,
}

struct State<T> {
    current: Arc<T>,
    /// The files' stamps when last looked at.
    stamps: Vec<Option<(SystemTime, u64)>>,
    checked: Instant,
}

impl<T> Reloading<T> {
    fn new(files: Files, what: &'static str, build: Build<T>) -> Result<Reloading<T>, Error> {
        let stamps = files.stamps();
        let current = Arc::new(build(files.load()?)?);
        Ok(Reloading {
            files,
            what,
            build,
            state: Mutex::new(State {
                current,
                stamps,
                checked: Instant::now(),
            }),
        })
    }

    /// The configuration for a new connection: rebuilt first if a file changed since it
    /// was last looked at (at most once every [`RELOAD_CHECK`]).
    pub fn current(&self) -> Arc<T> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.checked.elapsed() < RELOAD_CHECK {
            return state.current.clone();
        }
        state.checked = Instant::now();
        let stamps = self.files.stamps();
        if stamps != state.stamps {
            state.stamps = stamps;
            match self.files.load().and_then(|m| (self.build)(m)) {
                Ok(config) => {
                    info!(what = self.what, cert = %self.files.cert.display(), "TLS files changed: reloaded");
                    state.current = Arc::new(config);
                }
                Err(e) => warn!(
                    what = self.what,
                    cause = %e,
                    "TLS files changed but do not load; keeping the certificates in use"
                ),
            }
        }
        state.current.clone()
    }

    /// The files it is built from.
    pub fn files(&self) -> &Files {
        &self.files
    }
}

/// A server's reloading configuration.
pub type ServerTls = Reloading<ServerConfig>;
/// A client's reloading configuration.
pub type ClientTls = Reloading<ClientConfig>;

impl Reloading<ServerConfig> {
    /// A server with the identity in `files`, asking clients for certificates as
    /// `clients` says, offering `alpn` (empty: none). Fails if the files do not load.
    pub fn server(
        files: Files,
        what: &'static str,
        clients: ClientCerts,
        alpn: &'static [&'static [u8]],
    ) -> Result<ServerTls, Error> {
        Reloading::new(
            files,
            what,
            Box::new(move |m| server_config(m, clients, alpn)),
        )
    }

    /// An acceptor with the current configuration.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.current())
    }
}

impl Reloading<ClientConfig> {
    /// A client presenting the identity in `files` and checking servers against its CA
    /// (which it needs). Fails if the files do not load.
    pub fn client(
        files: Files,
        what: &'static str,
        alpn: &'static [&'static [u8]],
    ) -> Result<ClientTls, Error> {
        Reloading::new(files, what, Box::new(move |m| client_config(m, alpn)))
    }

    /// A connector with the current configuration.
    pub fn connector(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(self.current())
    }
}

/// The name to check a server's certificate against for `host` (an IP address, with or
/// without brackets, or a DNS name).
pub fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|e| Error::Rustls(format!("'{host}': {e}")))
}

/// True if the end-entity certificate `cert` names `host` (a DNS name or an IP address)
/// among its subject alternative names. Nothing else about it is checked here: the TLS
/// handshake has checked its chain and validity already.
pub fn names_host(cert: &CertificateDer<'_>, host: &str) -> bool {
    let Ok(name) = server_name(host) else {
        return false;
    };
    let Ok(cert) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    cert.verify_is_valid_for_subject_name(&name).is_ok()
}

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod tests;

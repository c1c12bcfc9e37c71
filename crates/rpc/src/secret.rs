//! The cluster secret: what a node presents on every call to a peer, and what a node's
//! gRPC server demands before any handler runs, so that a process that reaches the gRPC
//! port without it can neither vote, append, install snapshots, join, remove members,
//! forward writes or reads, nor ask for status.
//!
//! The secret travels in the `x-redraft-peer-secret-bin` metadata of each call, in the
//! clear: it keeps out a process that does not know it, not one that can read the traffic
//! between nodes (mutual TLS is for that). Compared in constant time.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::links::Links;

/// The metadata key the secret rides in (binary: any bytes).
pub const HEADER: &str = "x-redraft-peer-secret-bin";

/// Fewest bytes a secret may have.
pub const MIN_BYTES: usize = 16;

/// The cluster secret (its bytes are never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct PeerSecret(Arc<[u8]>);

impl PeerSecret {
    /// A secret of these bytes, at least [`MIN_BYTES`] of them.
    pub fn new(bytes: &[u8]) -> Result<PeerSecret, String> {
        if bytes.len() < MIN_BYTES {
            return Err(format!(
                "the cluster secret has {} bytes; it needs at least {MIN_BYTES} (for example \
                 `head -c 32 /dev/urandom | base64 > secret`)",
                bytes.len()
            ));
        }
        Ok(PeerSecret(bytes.into()))
    }

    /// The secret in the file at `path`, without the white space around it (a trailing
    /// newline is not part of it).
    pub fn read(path: &Path) -> Result<PeerSecret, String> {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("reading the cluster secret {}: {e}", path.display()))?;
        PeerSecret::new(bytes.trim_ascii()).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// True if `presented` is this secret; takes the same time wherever they differ.
    fn matches(&self, presented: &[u8]) -> bool {
        presented.len() == self.0.len()
            && presented
                .iter()
                .zip(self.0.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl fmt::Debug for PeerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerSecret({} bytes)", self.0.len())
    }
}

/// Adds the secret, if there is one, to every call a client makes.
#[derive(Clone, Debug, Default)]
pub struct Present(pub Option<PeerSecret>);

impl tonic::service::Interceptor for Present {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(secret) = &self.0 {
            request
                .metadata_mut()
                .insert_bin(HEADER, MetadataValue::from_bytes(&secret.0));
        }
        Ok(request)
    }
}

/// A channel to a peer whose calls carry the secret.
pub type PeerChannel = InterceptedService<Channel, Present>;

/// What a node's gRPC server checks on every call before any handler sees it: the secret,
/// when the node has one, and, in tests' in-process clusters, the links a test cut.
#[derive(Clone, Debug, Default)]
pub struct Gate {
    pub secret: Option<PeerSecret>,
    /// The test's links and the address this server listens on.
    pub links: Option<(Links, IpAddr)>,
}

impl Gate {
    /// `UNAVAILABLE` for a call over a cut link (as the network would fail it), then
    /// `UNAUTHENTICATED` for a call without this node's secret.
    #[allow(clippy::result_large_err)]
    pub fn check(&self, request: Request<()>) -> Result<Request<()>, Status> {
        if let (Some((links, own)), Some(from)) = (&self.links, request.remote_addr()) {
            if links.is_cut(from.ip(), *own) {
                return Err(Status::unavailable(format!(
                    "the link from {} to {own} is cut",
                    from.ip()
                )));
            }
        }
        if let Some(secret) = &self.secret {
            let presented = request.metadata().get_bin(HEADER).map(|v| v.to_bytes());
            match presented {
                Some(Ok(bytes)) if secret.matches(&bytes) => {}
                Some(_) => {
                    return Err(Status::unauthenticated(
                        "this node's cluster secret is another (check --cluster-secret-file)",
                    ))
                }
                None => {
                    return Err(Status::unauthenticated(
                        "this node takes calls only from peers with the cluster secret \
                         (--cluster-secret-file)",
                    ))
                }
            }
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    fn secret(s: &str) -> PeerSecret {
        PeerSecret::new(s.as_bytes()).unwrap()
    }

    #[test]
    fn a_secret_is_long_enough_and_never_printed() {
        assert!(PeerSecret::new(b"short").is_err());
        let s = secret("0123456789abcdef-secret");
        assert!(!format!("{s:?}").contains("secret"));
        assert!(s.matches(b"0123456789abcdef-secret"));
        assert!(!s.matches(b"0123456789abcdef-secreT"));
        assert!(!s.matches(b"0123456789abcdef"));
    }

    #[test]
    fn the_gate_takes_only_calls_with_the_secret() {
        let gate = Gate {
            secret: Some(secret("the-cluster-secret")),
            links: None,
        };
        let call = |with: Option<&str>| {
            let request = Present(with.map(secret)).call(Request::new(())).unwrap();
            gate.check(request).map(|_| ()).map_err(|s| s.code())
        };
        assert_eq!(call(Some("the-cluster-secret")), Ok(()));
        assert_eq!(
            call(Some("another-cluster-secret")),
            Err(tonic::Code::Unauthenticated)
        );
        assert_eq!(call(None), Err(tonic::Code::Unauthenticated));
        // A node without a secret takes every call.
        let open = Gate::default();
        assert!(open.check(Request::new(())).is_ok());
    }

    #[test]
    fn a_secret_file_is_read_without_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "the-cluster-secret\n").unwrap();
        assert_eq!(
            PeerSecret::read(&path).unwrap(),
            secret("the-cluster-secret")
        );
        std::fs::write(&path, "short\n").unwrap();
        let e = PeerSecret::read(&path).unwrap_err();
        assert!(e.contains("at least 16"), "{e}");
        assert!(PeerSecret::read(&dir.path().join("none")).is_err());
    }
}

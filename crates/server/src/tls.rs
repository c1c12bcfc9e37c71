//! The node's TLS settings: Redis's `tls-*` for the RESP port, and `peer-tls-*` for gRPC
//! between nodes; what they must be together, and the configurations built from them.
//!
//! Redis's rules: `tls-port` needs `tls-cert-file` and `tls-key-file`; asking clients for
//! certificates (`tls-auth-clients yes`, the default, or `optional`) needs
//! `tls-ca-cert-file`; `port 0` with a `tls-port` serves TLS only. Peer TLS is all three
//! `peer-tls-*` files or none.

use std::path::{Path, PathBuf};

use crate::config::{Cli, Config, TlsAuthClients};
use crate::Error;

/// `Some(path)` unless empty.
fn named(path: &Path) -> Option<PathBuf> {
    (!path.as_os_str().is_empty()).then(|| path.to_path_buf())
}

impl Config {
    /// Takes the `--tls-*` and `--peer-tls-*` flags (or their environment variables).
    pub(crate) fn apply_tls_flags(&mut self, cli: &Cli) {
        if let Some(v) = cli.tls_port {
            self.tls_port = v;
        }
        for (flag, field) in [
            (&cli.tls_cert_file, &mut self.tls_cert_file),
            (&cli.tls_key_file, &mut self.tls_key_file),
            (&cli.tls_ca_cert_file, &mut self.tls_ca_cert_file),
            (&cli.peer_tls_cert_file, &mut self.peer_tls_cert_file),
            (&cli.peer_tls_key_file, &mut self.peer_tls_key_file),
            (&cli.peer_tls_ca_file, &mut self.peer_tls_ca_file),
        ] {
            if let Some(v) = flag {
                *field = v.clone();
            }
        }
        if let Some(v) = cli.tls_auth_clients {
            self.tls_auth_clients = v;
        }
    }

    /// Checks the TLS settings, loading the files they name.
    pub(crate) fn check_tls(&self) -> Result<(), Error> {
        if self.tls_port != 0 && self.tls_port == self.port {
            return Err(Error::Config(format!(
                "port and tls-port must differ (both {})",
                self.port
            )));
        }
        self.client_tls()?;
        self.peer_tls()?;
        Ok(())
    }

    /// True if the RESP port listens for plain TCP: not with `port 0` and a `tls-port`
    /// (TLS only, as in Redis). `port 0` alone still picks a free port (tests).
    pub fn serves_plain(&self) -> bool {
        self.port != 0 || self.tls_port == 0
    }

    /// What the TLS port asks of clients' certificates.
    pub fn client_certs(&self) -> tls::ClientCerts {
        match self.tls_auth_clients {
            TlsAuthClients::Yes => tls::ClientCerts::Required,
            TlsAuthClients::Optional => tls::ClientCerts::Optional,
            TlsAuthClients::No => tls::ClientCerts::Ignored,
        }
    }

    /// The TLS port's configuration, re-read when its files change; `None` without a
    /// `tls-port`.
    pub fn client_tls(&self) -> Result<Option<tls::ServerTls>, Error> {
        if self.tls_port == 0 {
            return Ok(None);
        }
        let bad = |what: &str| Error::Config(format!("tls-port needs {what}"));
        let cert = named(&self.tls_cert_file).ok_or_else(|| bad("tls-cert-file"))?;
        let key = named(&self.tls_key_file).ok_or_else(|| bad("tls-key-file"))?;
        let ca = named(&self.tls_ca_cert_file);
        if ca.is_none() && self.tls_auth_clients != TlsAuthClients::No {
            return Err(Error::Config(
                "tls-ca-cert-file must be given when tls-auth-clients is yes (the default) \
                 or optional; set tls-auth-clients no to take clients without certificates"
                    .into(),
            ));
        }
        let files = tls::Files { cert, key, ca };
        tls::ServerTls::server(files, "tls", self.client_certs(), &[])
            .map(Some)
            .map_err(|e| Error::Config(format!("tls: {e}")))
    }

    /// Mutual TLS between nodes; `None` without the `peer-tls-*` files.
    pub fn peer_tls(&self) -> Result<Option<cluster::PeerTls>, Error> {
        let files = [
            named(&self.peer_tls_cert_file),
            named(&self.peer_tls_key_file),
            named(&self.peer_tls_ca_file),
        ];
        match files {
            [None, None, None] => Ok(None),
            [Some(cert), Some(key), Some(ca)] => cluster::PeerTls::load(tls::Files {
                cert,
                key,
                ca: Some(ca),
            })
            .map(Some)
            .map_err(|e| Error::Config(format!("peer-tls: {e}"))),
            _ => Err(Error::Config(
                "peer-tls-cert-file, peer-tls-key-file and peer-tls-ca-file go together".into(),
            )),
        }
    }

    /// The TLS settings `CONFIG GET` reports, Redis's names.
    pub fn tls_params(&self) -> Vec<(&'static str, String)> {
        let path = |p: &Path| p.display().to_string();
        vec![
            ("tls-port", self.tls_port.to_string()),
            ("tls-cert-file", path(&self.tls_cert_file)),
            ("tls-key-file", path(&self.tls_key_file)),
            ("tls-ca-cert-file", path(&self.tls_ca_cert_file)),
            (
                "tls-auth-clients",
                match self.tls_auth_clients {
                    TlsAuthClients::Yes => "yes",
                    TlsAuthClients::No => "no",
                    TlsAuthClients::Optional => "optional",
                }
                .into(),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn tls_settings_follow_redis_rules() {
        let dir = tempfile::tempdir().unwrap();
        let ca = tls::testing::Ca::new("test CA");
        let id = ca.issue(&["127.0.0.1"]).write(dir.path(), "server");
        let ca_file = ca.write(&dir.path().join("ca.crt"));
        let cli = Cli::try_parse_from([
            "redraft".as_ref(),
            "--tls-port".as_ref(),
            "6380".as_ref(),
            "--tls-cert-file".as_ref(),
            id.cert.as_os_str(),
            "--tls-key-file".as_ref(),
            id.key.as_os_str(),
        ])
        .unwrap();
        let e = Config::load(&cli).unwrap_err().to_string();
        assert!(e.contains("tls-ca-cert-file must be given"), "{e}");
        let mut c = Config {
            tls_port: 6380,
            tls_cert_file: id.cert.clone(),
            tls_key_file: id.key.clone(),
            tls_auth_clients: TlsAuthClients::No,
            ..Config::default()
        };
        assert!(c.validate().is_ok());
        assert!(c.serves_plain());
        c.port = 0;
        assert!(!c.serves_plain(), "port 0 with a tls-port is TLS only");
        c.tls_auth_clients = TlsAuthClients::Optional;
        assert!(c.validate().is_err());
        c.tls_ca_cert_file = ca_file.clone();
        assert!(c.validate().is_ok());
        c.port = 6380;
        assert!(c.validate().is_err(), "one port for both");
        c.port = 6379;
        c.tls_key_file = dir.path().join("missing.key");
        assert!(c.validate().is_err());
        assert!(Config {
            port: 0,
            ..Config::default()
        }
        .serves_plain());

        let file: Config = toml::from_str(&format!(
            "tls-port = 6390\ntls-cert-file = {:?}\ntls-key-file = {:?}\ntls-ca-cert-file = {:?}\ntls-auth-clients = \"optional\"\n",
            id.cert, id.key, ca_file
        ))
        .unwrap();
        assert!(file.validate().is_ok());
        let params = file.tls_params();
        assert!(params.contains(&("tls-port", "6390".into())));
        assert!(params.contains(&("tls-auth-clients", "optional".into())));

        let peers = Config {
            peer_tls_cert_file: id.cert.clone(),
            ..Config::default()
        };
        let e = peers.validate().unwrap_err().to_string();
        assert!(e.contains("go together"), "{e}");
        let peers = Config {
            peer_tls_cert_file: id.cert.clone(),
            peer_tls_key_file: id.key.clone(),
            peer_tls_ca_file: ca_file,
            ..Config::default()
        };
        assert!(peers.validate().is_ok());
        assert!(peers.cluster().unwrap().peer_tls.is_some());
    }
}

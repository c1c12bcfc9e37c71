use super::testing::Ca;
use super::*;

/// A handshake over an in-memory pipe with `server`, as a client trusting `ca` that
/// presents `client` (if any) and dials `host`: the server's certificate, or the error.
async fn handshake(
    server: &ServerTls,
    ca: &Ca,
    client: Option<&testing::Identity>,
    host: &str,
) -> Result<CertificateDer<'static>, String> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca.pem().as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(id) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(id.cert_pem.as_bytes())
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    let (a, b) = tokio::io::duplex(64 * 1024);
    let acceptor = server.acceptor();
    let accept = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut s = acceptor.accept(a).await.map_err(|e| e.to_string())?;
        // A refused client certificate shows on the first read (TLS 1.3).
        let mut byte = [0u8; 1];
        s.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    });
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let mut stream = connector
        .connect(server_name(host).unwrap(), b)
        .await
        .map_err(|e| e.to_string())?;
    use tokio::io::AsyncWriteExt;
    let cert = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
    stream.write_all(b"x").await.map_err(|e| e.to_string())?;
    accept.await.unwrap()?;
    Ok(cert)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_certificate_names_its_hosts_only() {
    let ca = Ca::new("test CA");
    let id = ca.issue(&["127.0.0.5", "node-1.redraft"]);
    let cert = CertificateDer::from_pem_slice(id.cert_pem.as_bytes()).unwrap();
    assert!(names_host(&cert, "127.0.0.5"));
    assert!(names_host(&cert, "node-1.redraft"));
    assert!(!names_host(&cert, "127.0.0.6"));
    assert!(!names_host(&cert, "node-2.redraft"));
    assert!(!names_host(&cert, ""));
}

#[test]
fn certificates_are_reloaded_when_their_files_change_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let first = ca.issue(&["127.0.0.1"]);
    let w = first.write(dir.path(), "server");
    let files = Files {
        cert: w.cert.clone(),
        key: w.key.clone(),
        ca: None,
    };
    let server = ServerTls::server(files, "tls", ClientCerts::Ignored, &[]).unwrap();
    let rt = runtime();
    let served = |server: &ServerTls| rt.block_on(handshake(server, &ca, None, "127.0.0.1"));
    let der =
        |id: &testing::Identity| CertificateDer::from_pem_slice(id.cert_pem.as_bytes()).unwrap();
    assert_eq!(served(&server).unwrap(), der(&first));

    // A new certificate and key on disk are served once the next look is due.
    let second = ca.issue(&["127.0.0.1"]);
    second.write(dir.path(), "server");
    std::thread::sleep(RELOAD_CHECK + Duration::from_millis(100));
    assert_eq!(served(&server).unwrap(), der(&second));

    // A certificate that does not match its key is not taken: the last good one stays.
    let third = ca.issue(&["127.0.0.1"]);
    std::fs::write(&w.cert, &third.cert_pem).unwrap();
    std::thread::sleep(RELOAD_CHECK + Duration::from_millis(100));
    assert_eq!(served(&server).unwrap(), der(&second));
    // Nor a half-written one.
    std::fs::write(&w.cert, &third.cert_pem[..100]).unwrap();
    std::thread::sleep(RELOAD_CHECK + Duration::from_millis(100));
    assert_eq!(served(&server).unwrap(), der(&second));
    // Once both files are good again, they are.
    third.write(dir.path(), "server");
    std::thread::sleep(RELOAD_CHECK + Duration::from_millis(100));
    assert_eq!(served(&server).unwrap(), der(&third));
}

#[test]
fn client_certificates_are_checked_as_asked() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let other = Ca::new("another CA");
    let w = ca.issue(&["127.0.0.1"]).write(dir.path(), "server");
    let ca_file = ca.write(&dir.path().join("ca.crt"));
    let files = Files {
        cert: w.cert,
        key: w.key,
        ca: Some(ca_file),
    };
    let rt = runtime();
    let good = ca.issue(&["client"]);
    let stranger = other.issue(&["client"]);
    let expired = ca.issue_expired(&["client"]);
    let server = |clients| ServerTls::server(files.clone(), "tls", clients, &[]).unwrap();
    let try_with = |server: &ServerTls, client| {
        rt.block_on(handshake(server, &ca, client, "127.0.0.1"))
            .map(|_| ())
    };

    let required = server(ClientCerts::Required);
    assert!(try_with(&required, Some(&good)).is_ok());
    assert!(try_with(&required, None).is_err());
    assert!(try_with(&required, Some(&stranger)).is_err());
    assert!(try_with(&required, Some(&expired)).is_err());

    let optional = server(ClientCerts::Optional);
    assert!(try_with(&optional, Some(&good)).is_ok());
    assert!(try_with(&optional, None).is_ok());
    assert!(try_with(&optional, Some(&stranger)).is_err());

    let ignored = server(ClientCerts::Ignored);
    assert!(try_with(&ignored, None).is_ok());

    // The server's own name is checked by the client.
    assert!(rt
        .block_on(handshake(&required, &ca, Some(&good), "127.0.0.2"))
        .is_err());

    let no_ca = Files {
        ca: None,
        ..files.clone()
    };
    assert!(ServerTls::server(no_ca, "tls", ClientCerts::Required, &[]).is_err());
}

#[test]
fn a_rotated_ca_takes_the_new_clients_only() {
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (Ca::new("old CA"), Ca::new("new CA"));
    let w = old_ca.issue(&["127.0.0.1"]).write(dir.path(), "server");
    let ca_file = old_ca.write(&dir.path().join("ca.crt"));
    let files = Files {
        cert: w.cert,
        key: w.key,
        ca: Some(ca_file.clone()),
    };
    let server = ServerTls::server(files, "tls", ClientCerts::Required, &[]).unwrap();
    let rt = runtime();
    let (old_client, new_client) = (old_ca.issue(&["client"]), new_ca.issue(&["client"]));
    let try_with = |client| {
        rt.block_on(handshake(&server, &old_ca, Some(client), "127.0.0.1"))
            .map(|_| ())
    };
    assert!(try_with(&old_client).is_ok());
    assert!(try_with(&new_client).is_err());
    new_ca.write(&ca_file);
    std::thread::sleep(RELOAD_CHECK + Duration::from_millis(100));
    assert!(
        try_with(&new_client).is_ok(),
        "the new CA's clients are taken"
    );
    assert!(
        try_with(&old_client).is_err(),
        "the old CA's are not any more"
    );
}

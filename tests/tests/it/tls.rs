//! TLS stories on real processes: RESP clients over TLS (`redis-cli --tls` and the `redis`
//! crate) with Redis's `tls-auth-clients` rules, certificates rotated on disk, a TLS-only
//! node (`--port 0`), and mutual TLS between nodes, which keeps out every call from a
//! process without a member's certificate. Every certificate is made here, with rcgen;
//! none is committed.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use redis::Value;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tls::testing::{Ca, Identity};

use crate::nodes::{free_ports, poll, redraft_bin, Cluster, Options};

/// How long a rotated certificate may take to be served (the files are looked at once a
/// second).
const ROTATION: Duration = Duration::from_secs(10);
const ELECTION: Duration = Duration::from_secs(30);

/// A directory of a test's certificates, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("redraft-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory for certificates");
        Dir(dir)
    }

    fn path(&self, file: &str) -> String {
        self.0.join(file).display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// `redis-cli --tls` against `ip:port` trusting `ca`, presenting `client` (stem of its
/// `.crt` and `.key` in `dir`) if given.
fn redis_cli(dir: &Dir, ip: Ipv4Addr, port: u16, client: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["--tls", "--cacert", &dir.path("ca.crt")]);
    if let Some(stem) = client {
        cmd.args([
            "--cert",
            &dir.path(&format!("{stem}.crt")),
            "--key",
            &dir.path(&format!("{stem}.key")),
        ]);
    }
    cmd.args(["-h", &ip.to_string(), "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli (Debian's redis-tools; make deps installs it)")
}

/// redis-cli's reply, trimmed, if it got one (it exits 0 even for an error reply, but
/// prints `Could not connect` or an I/O error when the TLS handshake fails).
fn cli_reply(out: &Output) -> Result<String, String> {
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if !out.status.success()
        || stdout.is_empty()
        || stdout.contains("Could not connect")
        || stderr.contains("Could not")
        || stdout.contains("I/O error")
        || stdout.contains("Connection reset")
        || stdout.contains("Server closed")
    {
        return Err(format!("{stdout} {stderr}"));
    }
    Ok(stdout)
}

/// A client of the `redis` crate over TLS to `ip:port`.
fn redis_client(ca: &Ca, ip: Ipv4Addr, port: u16, client: Option<&Identity>) -> redis::Client {
    redis::Client::build_with_tls(
        format!("rediss://{ip}:{port}"),
        redis::TlsCertificates {
            client_tls: client.map(|id| redis::ClientTlsConfig {
                client_cert: id.cert_pem.clone().into_bytes(),
                client_key: id.key_pem.clone().into_bytes(),
            }),
            root_cert: Some(ca.pem().into_bytes()),
        },
    )
    .expect("a TLS client")
}

/// A rustls client configuration trusting `ca`, presenting `client` if given.
fn rustls_client(ca: &Ca, client: Option<&Identity>) -> Arc<tls::rustls::ClientConfig> {
    let mut roots = tls::rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem().as_bytes()).expect("CA"))
        .expect("a root");
    let builder = tls::rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots);
    Arc::new(match client {
        None => builder.with_no_client_auth(),
        Some(id) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(id.cert_pem.as_bytes()).expect("cert")],
                PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).expect("key"),
            )
            .expect("a client identity"),
    })
}

/// The certificate `ip:port` serves to a new TLS connection (with `client`'s identity),
/// or why the handshake failed.
fn served_cert(
    ca: &Ca,
    ip: Ipv4Addr,
    port: u16,
    client: Option<&Identity>,
) -> Result<CertificateDer<'static>, String> {
    let config = rustls_client(ca, client);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect((ip, port))
            .await
            .map_err(|e| e.to_string())?;
        let name = tls::server_name(&ip.to_string()).map_err(|e| e.to_string())?;
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        Ok(stream
            .get_ref()
            .1
            .peer_certificates()
            .expect("a server certificate")[0]
            .clone())
    })
}

fn der(id: &Identity) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(id.cert_pem.as_bytes()).expect("a certificate")
}

/// The `tls-port` each node got, by id.
type TlsPorts = std::collections::BTreeMap<u64, (Ipv4Addr, u16)>;

/// Starts three nodes, each with a TLS port (besides the plain one the harness uses)
/// serving a certificate of `ca` for its IP, in `dir` as `node<id>.crt`/`.key`.
fn tls_cluster(name: &str, dir: &Dir, ca: &Ca) -> (Cluster, TlsPorts) {
    let mut ports = TlsPorts::new();
    let cluster = Cluster::start_with(name, 3, Options::default(), |id, ip| {
        ca.issue(&[&ip.to_string()])
            .write(&dir.0, &format!("node{id}"));
        let (tls_port, _) = free_ports(ip);
        ports.insert(id, (ip, tls_port));
        [
            ("--tls-port", tls_port.to_string()),
            ("--tls-cert-file", dir.path(&format!("node{id}.crt"))),
            ("--tls-key-file", dir.path(&format!("node{id}.key"))),
            ("--tls-ca-cert-file", dir.path("ca.crt")),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_string(), value])
        .collect()
    });
    (cluster, ports)
}

#[test]
fn clients_talk_tls_with_redis_rules_and_rotated_certificates() {
    let dir = Dir::new("tls-clients");
    let ca = Ca::new("redraft test CA");
    ca.write(&dir.0.join("ca.crt"));
    let client = ca.issue(&["client"]);
    client.write(&dir.0, "client");
    let other_ca = Ca::new("another CA");
    let stranger = other_ca.issue(&["client"]);
    stranger.write(&dir.0, "stranger");
    let (mut cluster, ports) = tls_cluster("tls-clients", &dir, &ca);
    let ids = cluster.ids();
    cluster.wait_leader(&ids, ELECTION);
    let (ip1, port1) = ports[&1];
    let (ip2, port2) = ports[&2];

    // redis-cli --tls with a client certificate: writes on one node, reads on another.
    let set = redis_cli(
        &dir,
        ip1,
        port1,
        Some("client"),
        &["SET", "greeting", "hello"],
    );
    assert_eq!(cli_reply(&set), Ok("OK".into()));
    let get = redis_cli(&dir, ip2, port2, Some("client"), &["GET", "greeting"]);
    assert_eq!(cli_reply(&get), Ok("hello".into()));

    // The redis crate over TLS, the same session as over plain TCP: a transaction,
    // CONFIG GET tls-*.
    let mut con = redis_client(&ca, ip2, port2, Some(&client))
        .get_connection()
        .expect("a TLS connection");
    let (n,): (i64,) = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("counter")
        .query(&mut con)
        .expect("MULTI/EXEC over TLS");
    assert_eq!(n, 1);
    let got: String = redis::cmd("GET")
        .arg("greeting")
        .query(&mut con)
        .expect("GET");
    assert_eq!(got, "hello");
    let params: std::collections::HashMap<String, String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("tls-*")
        .query(&mut con)
        .expect("CONFIG GET tls-*");
    assert_eq!(params["tls-port"], port2.to_string());
    assert_eq!(params["tls-auth-clients"], "yes");
    assert_eq!(params["tls-ca-cert-file"], dir.path("ca.crt"));
    drop(con);

    // tls-auth-clients yes (the default): no certificate, or one of another CA, is refused.
    for who in [None, Some("stranger")] {
        let out = redis_cli(&dir, ip1, port1, who, &["PING"]);
        assert!(cli_reply(&out).is_err(), "{who:?} was served: {out:?}");
    }
    for who in [None, Some(&stranger)] {
        let served = redis_client(&ca, ip1, port1, who)
            .get_connection()
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
        assert!(
            served.is_err(),
            "the redis crate was served without a good certificate"
        );
    }
    // The plain port is still plain: a TLS client gets nowhere there.
    let plain = cluster.addr(1);
    let out = redis_cli(&dir, ip1, plain.port(), Some("client"), &["PING"]);
    assert!(cli_reply(&out).is_err(), "TLS on the plain port: {out:?}");

    // A certificate rotated on disk is served to the next connection, with no restart;
    // connections open meanwhile go on.
    let mut open = redis_client(&ca, ip1, port1, Some(&client))
        .get_connection()
        .expect("a connection before the rotation");
    let old = served_cert(&ca, ip1, port1, Some(&client)).expect("a handshake");
    let rotated = ca.issue(&[&ip1.to_string()]);
    rotated.write(&dir.0, "node1");
    let pid = cluster.node(1).pid();
    let new = poll(ROTATION, || {
        served_cert(&ca, ip1, port1, Some(&client))
            .ok()
            .filter(|c| *c != old)
    })
    .expect("the rotated certificate is served");
    assert_eq!(new, der(&rotated));
    assert_eq!(cluster.node(1).pid(), pid, "no restart");
    let pong: String = redis::cmd("PING")
        .query(&mut open)
        .expect("the open connection");
    assert_eq!(pong, "PONG");
    let out = redis_cli(&dir, ip1, port1, Some("client"), &["GET", "greeting"]);
    assert_eq!(cli_reply(&out), Ok("hello".into()));
    // A broken file on disk changes nothing: the rotated certificate stays.
    std::fs::write(
        dir.0.join("node1.crt"),
        "-----BEGIN CERTIFICATE-----\nbroken\n",
    )
    .expect("write");
    std::thread::sleep(tls::RELOAD_CHECK * 2);
    assert_eq!(
        served_cert(&ca, ip1, port1, Some(&client)),
        Ok(der(&rotated))
    );
    let warned = poll(ROTATION, || {
        cluster
            .log_since_start(1)
            .contains("do not load; keeping the certificates in use")
            .then_some(())
    });
    assert!(warned.is_some(), "no warning about the broken file");

    // tls-auth-clients optional: a client without a certificate is served, one with a
    // certificate of another CA is not.
    cluster.terminate(3, Duration::from_secs(20));
    cluster.set_arg(3, "--tls-auth-clients", "optional");
    cluster.restart(3);
    let (ip3, port3) = ports[&3];
    let out = redis_cli(&dir, ip3, port3, None, &["GET", "greeting"]);
    assert_eq!(cli_reply(&out), Ok("hello".into()));
    let out = redis_cli(&dir, ip3, port3, Some("client"), &["PING"]);
    assert_eq!(cli_reply(&out), Ok("PONG".into()));
    let out = redis_cli(&dir, ip3, port3, Some("stranger"), &["PING"]);
    assert!(
        cli_reply(&out).is_err(),
        "optional took a bad certificate: {out:?}"
    );

    // tls-auth-clients no: no certificate is asked for, so any client is served.
    cluster.terminate(3, Duration::from_secs(20));
    cluster.set_arg(3, "--tls-auth-clients", "no");
    cluster.restart(3);
    for who in [None, Some("client"), Some("stranger")] {
        let out = redis_cli(&dir, ip3, port3, who, &["GET", "greeting"]);
        assert_eq!(cli_reply(&out), Ok("hello".into()), "{who:?}");
    }
    let no: std::collections::HashMap<String, String> = redis_client(&ca, ip3, port3, None)
        .get_connection()
        .and_then(|mut c| {
            redis::cmd("CONFIG")
                .arg("GET")
                .arg("tls-auth-clients")
                .query(&mut c)
        })
        .expect("CONFIG GET without a certificate");
    assert_eq!(no["tls-auth-clients"], "no");
    assert_eq!(
        cluster.call(1, &["GET", "greeting"]),
        Value::BulkString(b"hello".to_vec())
    );
}

/// One `redraft` process started by a test, killed (by PID) when dropped.
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn port_0_with_a_tls_port_serves_tls_only() {
    let dir = Dir::new("tls-only");
    let ca = Ca::new("redraft test CA");
    ca.write(&dir.0.join("ca.crt"));
    let ip = Ipv4Addr::new(127, 0, 0, 1);
    ca.issue(&["127.0.0.1"]).write(&dir.0, "server");
    let (tls_port, grpc_port) = free_ports(ip);
    let log = std::fs::File::create(dir.0.join("node.log")).expect("a log file");
    let child = Command::new(redraft_bin())
        .args([
            "--bind",
            "127.0.0.1",
            "--grpc-bind",
            "127.0.0.1",
            "--port",
            "0",
        ])
        .args(["--tls-port", &tls_port.to_string()])
        .args(["--grpc-port", &grpc_port.to_string()])
        .args(["--tls-cert-file", &dir.path("server.crt")])
        .args(["--tls-key-file", &dir.path("server.key")])
        .args(["--tls-auth-clients", "no", "--raft-groups", "1"])
        .args(["--data-dir", &dir.path("data")])
        .stdout(log.try_clone().expect("a log file"))
        .stderr(log)
        .spawn()
        .expect("start redraft");
    let _node = Process(child);
    let pong = poll(Duration::from_secs(20), || {
        cli_reply(&redis_cli(&dir, ip, tls_port, None, &["PING"])).ok()
    });
    assert_eq!(pong.as_deref(), Some("PONG"), "the TLS port answers");
    let out = redis_cli(&dir, ip, tls_port, None, &["CONFIG", "GET", "port"]);
    assert_eq!(cli_reply(&out), Ok("port\n0".into()));
    let log = std::fs::read_to_string(dir.0.join("node.log")).expect("the log");
    let log = without_colors(&log);
    let ready = log
        .lines()
        .find(|l| l.contains("ready to accept connections"))
        .expect("a ready line");
    assert!(ready.contains("addr=None"), "a plain port listens: {ready}");
    assert!(
        ready.contains(&format!("127.0.0.1:{tls_port}")),
        "the TLS port: {ready}"
    );
}

/// `text` without the terminal's color codes (`ESC [ ... m`).
fn without_colors(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A node's peer certificate of `ca`, for its IP, in `dir` as `peer-<ip>.*`.
fn peer_cert(dir: &Dir, ca: &Ca, ip: Ipv4Addr) -> Identity {
    let id = ca.issue(&[&ip.to_string()]);
    id.write(&dir.0, &format!("peer-{ip}"));
    id
}

/// The peer TLS flags of every node, the same for all (`{ip}`: the node's own IP), so a
/// node that joins later gets them too.
fn peer_flags(dir: &Dir) -> Vec<String> {
    [
        ("--peer-tls-cert-file", dir.path("peer-{ip}.crt")),
        ("--peer-tls-key-file", dir.path("peer-{ip}.key")),
        ("--peer-tls-ca-file", dir.path("peer-ca.crt")),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_string(), value])
    .collect()
}

/// What a caller got from each kind of call: none may succeed.
fn every_call_refused(
    rt: &tokio::runtime::Runtime,
    pool: &rpc::PeerPool,
    addr: &str,
    target: u64,
    who: &str,
) -> Vec<tonic::Status> {
    use rpc::{Forward, Join, Leave};
    let mut p = rt.block_on(async { pool.node(addr) }).expect("a client");
    let flushall = kv::Proposal::Command {
        args: vec!["FLUSHALL".into()],
        seed: 0,
    };
    let mut refusals = Vec::new();
    let mut refused = |what: &str, r: Result<String, tonic::Status>| match r {
        Err(s) => refusals.push(s),
        Ok(ok) => panic!("{who}: {what} was taken: {ok}"),
    };
    let forward = Forward {
        group_id: cluster::FIRST_DATA_GROUP,
        args: Vec::new(),
        proto_version: 3,
        seed: None,
        proposal: Some(flushall.encode().into()),
    };
    refused(
        "a forwarded FLUSHALL",
        rt.block_on(p.forward(forward)).map(|r| format!("{r:?}")),
    );
    // A join with an address its certificate does not name (a member's).
    let join = Join {
        node_id: 9,
        resp_addr: "127.0.0.1:1".into(),
        grpc_addr: addr.to_string(),
        hostname: String::new(),
        forwarded: false,
        group: None,
    };
    refused(
        "a join",
        rt.block_on(p.join(join)).map(|()| "joined".into()),
    );
    let leave = Leave {
        node_id: target,
        group: None,
    };
    refused(
        "a leave",
        rt.block_on(p.leave(leave)).map(|()| "left".into()),
    );
    refused(
        "a read index",
        rt.block_on(p.read_index(cluster::FIRST_DATA_GROUP))
            .map(|r| format!("{r:?}")),
    );
    refused(
        "a status",
        rt.block_on(p.status()).map(|s| format!("{s:?}")),
    );
    {
        use openraft::raft::VoteRequest;
        use raft::typ::Vote;
        use rpc::message::{Envelope, VoteCall};
        use rpc::pb::raft as rpb;
        let msg = rpb::VoteRequest::try_from(Envelope {
            group_id: cluster::FIRST_DATA_GROUP,
            target,
            body: VoteCall::<raft::TypeConfig> {
                pre_vote: false,
                req: VoteRequest::new(Vote::new(1_000, 9), None),
            },
        })
        .expect("encode");
        let vote = rt.block_on(async {
            let mut client = pool.raft_client(addr).expect("a client");
            client.vote(msg).await
        });
        refused("a vote", vote.map(|r| format!("{r:?}")));
    }
    refusals
}

#[test]
fn peers_take_calls_only_from_members_over_mutual_tls() {
    use rpc::{PeerPool, PeerTls, PoolConfig};

    let dir = Dir::new("peer-tls");
    let ca = Ca::new("redraft peers CA");
    ca.write(&dir.0.join("peer-ca.crt"));
    let mut ips = std::collections::BTreeMap::new();
    let options = Options {
        extra: peer_flags(&dir),
        ..Options::default()
    };
    let mut cluster = Cluster::start_with("peer-tls", 3, options, |id, ip| {
        ips.insert(id, ip);
        peer_cert(&dir, &ca, ip);
        Vec::new()
    });
    let ids = cluster.ids();
    let leader = cluster.wait_leader(&ids, ELECTION);
    for i in 0..100 {
        let key = format!("kept:{i}");
        assert_eq!(cluster.call(leader, &["SET", &key, "v"]), Value::Okay);
    }
    let follower = *ids.iter().find(|&&i| i != leader).expect("a follower");
    cluster.wait_converged(&ids, ELECTION);
    assert_eq!(
        cluster.call(follower, &["DBSIZE"]),
        Value::Int(100),
        "replicated over TLS"
    );

    // Callers that reach the gRPC port without a member's certificate: plain TCP, a TLS
    // certificate of another CA, an expired one of the right CA for a member's IP, and
    // a good one for a name that is no member's. Each is refused every call.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let addr = cluster.node(leader).grpc_addr();
    let other_ca = Ca::new("another CA");
    let with_cert = |stem: &str, id: &Identity| {
        id.write(&dir.0, stem);
        let tls = PeerTls::load(tls::Files {
            cert: dir.0.join(format!("{stem}.crt")),
            key: dir.0.join(format!("{stem}.key")),
            ca: Some(dir.0.join("peer-ca.crt")),
        })
        .expect("a caller's TLS");
        PoolConfig {
            tls: Some(tls),
            ..PoolConfig::default()
        }
    };
    let member_ip = ips[&follower].to_string();
    let callers = [
        ("no TLS", PoolConfig::default()),
        (
            "another CA",
            with_cert("other", &other_ca.issue(&[&member_ip])),
        ),
        (
            "expired",
            with_cert("expired", &ca.issue_expired(&[&member_ip])),
        ),
        (
            "no member",
            with_cert("nobody", &ca.issue(&["127.0.0.99", "nobody.redraft"])),
        ),
    ];
    for (who, config) in callers {
        let pool = PeerPool::new(config);
        let refusals = every_call_refused(&rt, &pool, &addr, leader, who);
        if who == "no member" {
            // Through the handshake, then refused by name.
            for s in &refusals {
                assert_eq!(s.code(), tonic::Code::PermissionDenied, "{who}: {s}");
            }
        }
    }
    // The node refused those handshakes itself, for the reason each deserved.
    for cause in [
        "received corrupt message",
        "invalid peer certificate: UnknownIssuer",
        "invalid peer certificate: certificate expired",
    ] {
        let seen = poll(ROTATION, || {
            cluster
                .log_since_start(leader)
                .contains(cause)
                .then_some(())
        });
        assert!(seen.is_some(), "the leader never logged `{cause}`");
    }
    // A TLS client presenting no certificate fails its handshake.
    let (leader_ip, leader_grpc) = {
        let a: std::net::SocketAddr = addr.parse().expect("an address");
        match a.ip() {
            std::net::IpAddr::V4(ip) => (ip, a.port()),
            _ => unreachable!(),
        }
    };
    let no_cert = rt.block_on(async {
        use tokio::io::AsyncReadExt;
        let tcp = tokio::net::TcpStream::connect((leader_ip, leader_grpc)).await?;
        let name = tls::server_name(&leader_ip.to_string()).expect("a name");
        let mut s = tokio_rustls::TlsConnector::from(rustls_client(&ca, None))
            .connect(name, tcp)
            .await?;
        let mut buf = [0u8; 64];
        s.read(&mut buf).await
    });
    assert!(
        !matches!(no_cert, Ok(n) if n > 0),
        "a client without a certificate was served: {no_cert:?}"
    );
    let seen = poll(ROTATION, || {
        let log = cluster.log_since_start(leader);
        log.contains("peer sent no certificates").then_some(())
    });
    assert!(
        seen.is_some(),
        "the leader never logged a handshake without a certificate"
    );
    // The same calls with a member's certificate are served: the refusals were the
    // certificates'.
    let member = ca.issue(&[&member_ip]);
    let pool = PeerPool::new(with_cert("member", &member));
    let mut p = rt.block_on(async { pool.node(&addr) }).expect("a client");
    rt.block_on(p.status())
        .expect("status with a member's certificate");
    for &id in &ids {
        assert_eq!(
            cluster.call(id, &["DBSIZE"]),
            Value::Int(100),
            "node {id} lost nothing"
        );
        let info = cluster.raft_info(id).expect("INFO");
        assert_eq!(info.voters, Some(ids.clone()), "node {id}'s voters");
        assert!(
            info.term < 1_000,
            "node {id} took the vote's term: {}",
            info.term
        );
    }

    // A node's certificate rotated on disk is served to new connections without a
    // restart, and the cluster goes on replicating.
    let (ip1, _) = (ips[&leader], ());
    let old = served_cert(&ca, ip1, leader_grpc, Some(&member)).expect("a handshake");
    let rotated = peer_cert(&dir, &ca, ip1);
    let pid = cluster.node(leader).pid();
    let new = poll(ROTATION, || {
        served_cert(&ca, ip1, leader_grpc, Some(&member))
            .ok()
            .filter(|c| *c != old)
    })
    .expect("the rotated certificate is served");
    assert_eq!(new, der(&rotated));
    assert_eq!(cluster.node(leader).pid(), pid, "no restart");
    // Restarting a follower makes every connection to it new: the leader dials it with
    // its rotated certificate, and the follower catches up.
    cluster.kill9(follower);
    assert_eq!(
        cluster.call(leader, &["SET", "after", "rotation"]),
        Value::Okay
    );
    cluster.restart(follower);
    cluster.wait_converged(&ids, ELECTION);
    assert_eq!(
        cluster.call(follower, &["DBSIZE"]),
        Value::Int(101),
        "the restarted follower caught up over TLS"
    );

    // A new node with a certificate of the CA for its own address joins: its Join is
    // taken before it is a member, the members replicate to it before it knows them, and
    // then it is one of them.
    let ip4 = {
        let [a, b, c, _] = ips[&1].octets();
        Ipv4Addr::new(a, b, c, 14)
    };
    peer_cert(&dir, &ca, ip4);
    cluster.join(4, leader);
    let mut last = String::new();
    poll(ELECTION, || match cluster.raft_info(4) {
        Ok(i) if i.role == "follower" && i.leader.is_some() => Some(()),
        Ok(i) => {
            last = format!("{i:?}");
            None
        }
        Err(e) => {
            last = e;
            None
        }
    })
    .unwrap_or_else(|| panic!("node 4 did not join over mutual TLS: {last}"));
    let caught_up = poll(ELECTION, || {
        (cluster.try_call(4, &["DBSIZE"]).ok()? == Value::Int(101)).then_some(())
    });
    assert!(caught_up.is_some(), "node 4 did not catch up");
}

#[test]
fn protected_mode_takes_remote_tls_clients_with_a_checked_certificate() {
    if !crate::faults::may_mount("protected mode over TLS (a network namespace)") {
        return;
    }
    // As in faults::protected_mode_takes_remote_clients_only_with_a_password: a client
    // connecting to 10.77.0.1 comes from a non-loopback address.
    let ns = crate::faults::namespace_with_address();
    let dir = Dir::new("tls-protected");
    let ca = Ca::new("redraft test CA");
    ca.write(&dir.0.join("ca.crt"));
    ca.issue(&["127.0.0.1", "10.77.0.1"])
        .write(&dir.0, "server");
    ca.issue(&["client"]).write(&dir.0, "client");
    let cli = |host: &str, tls_client: Option<Option<&str>>| -> String {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.name, "redis-cli", "-h", host]);
        match tls_client {
            None => {
                cmd.args(["-p", "6390"]);
            }
            Some(stem) => {
                cmd.args(["-p", "6391", "--tls", "--cacert", &dir.path("ca.crt")]);
                if let Some(stem) = stem {
                    cmd.args(["--cert", &dir.path(&format!("{stem}.crt"))]);
                    cmd.args(["--key", &dir.path(&format!("{stem}.key"))]);
                }
            }
        }
        let out = cmd.arg("PING").output().expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let denied = "DENIED Redis is running in protected mode";
    // (tls-auth-clients, remote plain, remote TLS without a certificate, remote TLS with one)
    let cases = [
        ("optional", denied, denied, "PONG"),
        ("no", denied, denied, denied),
        ("yes", denied, "", "PONG"),
    ];
    for (auth, plain, without, with) in cases {
        let data = dir.0.join(auth);
        let mut node = Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .arg(redraft_bin())
            .args(["--bind", "0.0.0.0", "--port", "6390", "--grpc-port", "7390"])
            .args(["--tls-port", "6391", "--tls-auth-clients", auth])
            .args(["--tls-cert-file", &dir.path("server.crt")])
            .args(["--tls-key-file", &dir.path("server.key")])
            .args(["--tls-ca-cert-file", &dir.path("ca.crt")])
            .arg("--data-dir")
            .arg(&data)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start redraft in the namespace");
        let local = poll(Duration::from_secs(20), || {
            (cli("127.0.0.1", Some(Some("client"))) == "PONG").then_some(())
        });
        assert!(
            local.is_some(),
            "{auth}: a loopback TLS client was not served"
        );
        let got = cli("10.77.0.1", None);
        assert!(
            got.contains(plain),
            "{auth}: a remote plain client got {got:?}"
        );
        let got = cli("10.77.0.1", Some(None));
        if without.is_empty() {
            assert!(
                !got.contains("PONG"),
                "{auth}: a remote client without a certificate got {got:?}"
            );
        } else {
            assert!(
                got.contains(without),
                "{auth}: a remote client without a certificate got {got:?}"
            );
        }
        let got = cli("10.77.0.1", Some(Some("client")));
        assert!(
            got.contains(with),
            "{auth}: a remote client with a certificate got {got:?}"
        );
        // `ip netns exec` runs redraft in its own place: this PID is the node's.
        let _ = Command::new("kill")
            .args(["-TERM", &node.id().to_string()])
            .status();
        let _ = node.wait();
    }
    drop(ns);
}

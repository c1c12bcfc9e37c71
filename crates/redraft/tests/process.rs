//! The `redraft` binary as a user meets it: its flags, its configuration sources, and a
//! graceful shutdown on SIGTERM (in-flight replies sent, exit code 0).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_redraft");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("redraft-process-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A node process, killed on drop if still running.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                return s;
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("node on port {port} did not come up: {e}"),
        }
    }
}

fn request(stream: &mut TcpStream, line: &str) -> String {
    stream.write_all(format!("{line}\r\n").as_bytes()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut reply = String::new();
    reader.read_line(&mut reply).unwrap();
    if let Some(len) = reply
        .strip_prefix('$')
        .and_then(|n| n.trim().parse::<usize>().ok())
    {
        let mut body = vec![0u8; len + 2];
        reader.read_exact(&mut body).unwrap();
        reply.push_str(&String::from_utf8_lossy(&body));
    }
    reply
}

#[test]
fn help_documents_every_flag() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--bind",
        "--port",
        "--data-dir",
        "--config",
        "--log-format",
        "--maxclients",
        "--hz",
        "--grpc-bind",
        "--cluster-secret-file",
    ] {
        assert!(
            help.contains(flag),
            "--help does not mention {flag}:\n{help}"
        );
    }
    for default in ["127.0.0.1", "6379", "./data"] {
        assert!(
            help.contains(default),
            "--help does not give the default {default}"
        );
    }
}

#[test]
fn flags_override_environment_which_overrides_the_file() {
    let dir = temp_dir("config");
    let (file_port, env_port, flag_port) = (free_port(), free_port(), free_port());
    let config = dir.join("redraft.toml");
    std::fs::write(&config, format!("port = {file_port}\nhz = 20\n")).unwrap();
    // Each node gets its own data directory and gRPC port: they run side by side.
    let node = |name: &str| {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.join(name))
            .arg("--grpc-port")
            .arg(free_port().to_string())
            .stderr(Stdio::null());
        cmd
    };

    // The file alone.
    let _a = Node(node("a").spawn().unwrap());
    assert_eq!(request(&mut connect(file_port), "PING"), "+PONG\r\n");

    // The environment over the file.
    let _b = Node(
        node("b")
            .env("REDRAFT_PORT", env_port.to_string())
            .spawn()
            .unwrap(),
    );
    assert_eq!(request(&mut connect(env_port), "PING"), "+PONG\r\n");

    // A flag over both.
    let _c = Node(
        node("c")
            .arg("--port")
            .arg(flag_port.to_string())
            .env("REDRAFT_PORT", env_port.to_string())
            .spawn()
            .unwrap(),
    );
    let mut conn = connect(flag_port);
    let info = request(&mut conn, "INFO server");
    assert!(info.contains(&format!("tcp_port:{flag_port}")), "{info}");
    assert!(
        info.contains("hz:20"),
        "the file's other settings still apply: {info}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_configuration_is_refused_before_start() {
    let dir = temp_dir("bad");
    let config = dir.join("redraft.toml");
    std::fs::write(&config, "portt = 1\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("portt"), "the error names the bad key: {err}");

    let out = Command::new(BIN)
        .args(["--hz", "0", "--port", &free_port().to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("hz"));

    // Named at an address its gRPC port does not listen on (loopback unless set).
    let port = free_port().to_string();
    let out = Command::new(BIN)
        .args(["--port", &port, "--data-dir"])
        .arg(dir.join("data"))
        .args(["--initial-cluster", "1=10.1.2.3:7379,2=10.1.2.4:7379"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--grpc-bind 10.1.2.3"), "{err}");

    // A cluster secret too short to be one.
    let secret = dir.join("secret");
    std::fs::write(&secret, "short\n").unwrap();
    let out = Command::new(BIN)
        .args(["--port", &port, "--cluster-secret-file"])
        .arg(&secret)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at least 16"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_finishes_in_flight_replies_and_exits_zero() {
    let dir = temp_dir("sigterm");
    let port = free_port();
    let mut node = Node(
        Command::new(BIN)
            .args([
                "--port",
                &port.to_string(),
                "--grpc-port",
                &free_port().to_string(),
                "--data-dir",
            ])
            .arg(&dir)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut conn = connect(port);
    assert_eq!(request(&mut conn, "SET k v"), "+OK\r\n");

    // A pipeline of 1,000 commands is in flight when SIGTERM arrives: every reply comes back.
    let mut pipeline = String::new();
    for i in 0..1000 {
        pipeline.push_str(&format!("INCR n{}\r\n", i % 7));
    }
    conn.write_all(pipeline.as_bytes()).unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &node.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut reader = BufReader::new(conn);
    let mut replies = 0;
    let mut line = String::new();
    while replies < 1000 {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        assert!(line.starts_with(':'), "unexpected reply {line:?}");
        replies += 1;
    }
    assert_eq!(
        replies, 1000,
        "every in-flight request is answered before the node exits"
    );

    let deadline = Instant::now() + Duration::from_secs(15);
    let code = loop {
        if let Some(status) = node.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the node did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(code.success(), "exit status after SIGTERM: {code}");
    let mut log = String::new();
    node.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(
        log.contains("SIGTERM"),
        "the log says why it stopped: {log}"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "no longer accepting"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

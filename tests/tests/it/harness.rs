//! Servers and raw connections for the integration tests.
//!
//! [`RedisServer`] is a real `redis-server` child process (Debian's 7.0) on a free loopback
//! port, with persistence off; it is killed by PID when dropped. [`Redraft`] is redraft's
//! server library run in-process on its own tokio runtime, on a port the OS hands out; it is
//! shut down through its shutdown future when dropped. [`Target`] is either, so a test can be
//! pointed at both: setting `REDRAFT_TEST_TARGET=redis` runs every "redraft" side against a
//! second `redis-server` instead, which proves the harness and the tests themselves.
//!
//! [`Conn`] is a blocking raw RESP connection: commands are encoded by the `redis` crate and
//! replies decoded by its parser into [`redis::Value`]s, error replies included (as
//! `Value::ServerError`, whose full text [`error_text`] rebuilds), so nothing is hidden by a
//! client library's conveniences.

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use redis::Value;

/// How long a test waits for any one reply before it calls the server hung.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

const INSTALL_HINT: &str = "apt-get install redis-server redis-tools (the Makefile installs them)";

/// Panics with an install hint unless `bin` runs. A missing reference never passes silently.
pub fn require_binary(bin: &str) {
    match Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("`{bin} --version` failed ({s}); install it: {INSTALL_HINT}"),
        Err(e) => panic!("`{bin}` is not runnable ({e}); the tests need it: {INSTALL_HINT}"),
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A `redis-server` child process, killed on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts `redis-server` on a free port and waits until it answers PING.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// [`RedisServer::start`] with more arguments (`--requirepass pw`: readiness signs in).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        require_binary("redis-server");
        let password = extra
            .iter()
            .position(|&a| a == "--requirepass")
            .and_then(|i| extra.get(i + 1))
            .map(|p| p.to_string());
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string()])
                .args(["--bind", "127.0.0.1"])
                .args(["--save", ""])
                .args(["--appendonly", "no"])
                .args(["--daemonize", "no"])
                .args(["--logfile", ""])
                .args(["--loglevel", "warning"])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn redis-server: {e}; {INSTALL_HINT}"));
            let mut server = RedisServer { child, port };
            match server.wait_ready(password.as_deref()) {
                Ok(()) => return server,
                Err(e) => last_err = e,
            }
        }
        panic!("redis-server never came up: {last_err}");
    }

    fn wait_ready(&mut self, password: Option<&str>) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "redis-server on port {} exited: {status}",
                    self.port
                ));
            }
            if let Ok(mut c) = Conn::try_connect(self.addr()) {
                if let Some(password) = password {
                    let _ = c.call(&["AUTH", password]);
                }
                // Ours, not another test's server that got the same port first.
                if let Ok(Value::BulkString(info)) = c.call(&["INFO", "server"]) {
                    let want = format!("process_id:{}\r\n", self.child.id());
                    if String::from_utf8_lossy(&info).contains(&want) {
                        return Ok(());
                    }
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(format!(
                        "port {} belongs to another redis-server",
                        self.port
                    ));
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "redis-server on port {} not ready in 10s",
                    self.port
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL by PID (Child::kill); never by name.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// redraft's server running in this process on its own runtime; stopped on drop.
pub struct Redraft {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
    task: Option<tokio::task::JoinHandle<Result<server::Exit, server::Error>>>,
}

impl Redraft {
    /// Binds 127.0.0.1:0 and spawns `server::run` on a fresh two-thread runtime.
    pub fn start() -> Redraft {
        Redraft::start_with(|_| {})
    }

    /// [`Redraft::start`] with the configuration changed by `configure` (a `requirepass`:
    /// readiness signs in).
    pub fn start_with(configure: impl FnOnce(&mut server::Config)) -> Redraft {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("redraft-test")
            .enable_all()
            .build()
            .expect("build a tokio runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        // The command layer under test, in memory by default (replication has its own
        // tests); REDRAFT_TEST_ENGINE=raft runs the same tests through a one-node Raft
        // group instead (every write a log entry, every read behind a read barrier).
        let raft = std::env::var("REDRAFT_TEST_ENGINE").is_ok_and(|e| e == "raft");
        let data_dir =
            std::env::temp_dir().join(format!("redraft-it-{}-{}", std::process::id(), addr.port()));
        let grpc_port = free_port();
        let mut config = server::Config {
            bind: "127.0.0.1".into(),
            port: addr.port(),
            in_memory: !raft,
            // One group: every multi-key command stays atomic in one log, as in a
            // standalone Redis the differential tests compare with.
            raft_groups: 1,
            data_dir,
            grpc_port,
            ..Default::default()
        };
        configure(&mut config);
        let password = config.requirepass.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = runtime.spawn(server::run(listener, config, shutdown));
        let redraft = Redraft {
            addr,
            stop: Some(stop),
            runtime: Some(runtime),
            task: Some(task),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = Conn::try_connect(addr) {
                if !password.is_empty() {
                    let _ = c.call(&["AUTH", password.as_str()]);
                }
                if c.call(&["PING"]).is_ok() {
                    return redraft;
                }
            }
            assert!(
                Instant::now() < deadline,
                "in-process redraft on {addr} not ready in 10s"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Redraft {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let (Some(rt), Some(task)) = (self.runtime.take(), self.task.take()) {
            let outcome =
                rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), task).await });
            let failed = match outcome {
                Ok(Ok(Ok(server::Exit::Shutdown))) => None,
                Ok(Ok(Ok(server::Exit::Restart))) => {
                    Some("server::run asked for a restart (its log is stuck)".to_string())
                }
                Ok(Ok(Err(e))) => Some(format!("server::run returned an error: {e}")),
                Ok(Err(e)) => Some(format!("server::run panicked: {e}")),
                Err(_) => Some("server::run did not stop within 10s of shutdown".to_string()),
            };
            rt.shutdown_timeout(Duration::from_secs(2));
            if let Some(msg) = failed {
                if !thread::panicking() {
                    panic!("{msg}");
                }
            }
        }
    }
}

/// What a test talks to as "redraft": the in-process server, or with
/// `REDRAFT_TEST_TARGET=redis` a second redis-server (to prove the tests themselves).
pub enum Target {
    Redraft(Redraft),
    Redis(RedisServer),
}

impl Target {
    pub fn start() -> Target {
        match std::env::var("REDRAFT_TEST_TARGET").as_deref() {
            Ok("redis") => Target::Redis(RedisServer::start()),
            Ok("redraft") | Err(_) => Target::Redraft(Redraft::start()),
            Ok(other) => panic!("REDRAFT_TEST_TARGET={other}: expected `redraft` or `redis`"),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        match self {
            Target::Redraft(r) => r.addr(),
            Target::Redis(r) => r.addr(),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    pub fn name(&self) -> &'static str {
        match self {
            Target::Redraft(_) => "redraft",
            Target::Redis(_) => "redis-server (REDRAFT_TEST_TARGET=redis)",
        }
    }
}

/// The full text of an error reply, as it was on the wire after the `-` (`None` if `v` is
/// not an error). redis 0.27 splits it into a code and the rest; this joins them again.
pub fn error_text(v: &Value) -> Option<String> {
    match v {
        Value::ServerError(e) => Some(match e.details() {
            Some(d) => format!("{} {}", e.code(), d),
            None => e.code().to_string(),
        }),
        _ => None,
    }
}

/// The full text of an error from `query`/`query_async`, when it came from the server.
pub fn redis_error_text(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(c), Some(d)) => format!("{c} {d}"),
        (Some(c), None) => c.to_string(),
        _ => e.to_string(),
    }
}

/// A blocking raw RESP connection.
pub struct Conn {
    writer: TcpStream,
    reader: BufReader<Tee>,
    parser: redis::Parser,
}

/// The socket's read half, keeping a copy of every byte read (for [`Conn::call_raw`]).
struct Tee {
    stream: TcpStream,
    seen: Vec<u8>,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.stream.read(buf)?;
        self.seen.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

impl Conn {
    pub fn try_connect(addr: SocketAddr) -> std::io::Result<Conn> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(REPLY_TIMEOUT))?;
        s.set_write_timeout(Some(REPLY_TIMEOUT))?;
        let reader = BufReader::with_capacity(
            64 * 1024,
            Tee {
                stream: s.try_clone()?,
                seen: Vec::new(),
            },
        );
        Ok(Conn {
            writer: s,
            reader,
            parser: redis::Parser::new(),
        })
    }

    /// The address this connection is to.
    pub fn peer(&self) -> SocketAddr {
        self.writer.peer_addr().expect("a connected socket")
    }

    pub fn connect(addr: SocketAddr) -> Conn {
        Conn::try_connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
    }

    /// Writes several commands in one write (a pipeline); read the replies with [`Conn::recv`].
    pub fn send<A: AsRef<[u8]>>(&mut self, cmds: &[Vec<A>]) -> std::io::Result<()> {
        let mut buf = Vec::new();
        for args in cmds {
            buf.extend_from_slice(&encode(args));
        }
        self.writer.write_all(&buf)
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)
    }

    pub fn recv(&mut self) -> redis::RedisResult<Value> {
        self.parser.parse_value(&mut self.reader)
    }

    /// One command, one reply.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> redis::RedisResult<Value> {
        self.writer.write_all(&encode(args))?;
        self.recv()
    }

    /// One command, its reply and the reply's exact bytes (only with nothing else in flight).
    pub fn call_raw<A: AsRef<[u8]>>(&mut self, args: &[A]) -> (redis::RedisResult<Value>, Vec<u8>) {
        self.reader.get_mut().seen.clear();
        let v = self.call(args);
        (v, std::mem::take(&mut self.reader.get_mut().seen))
    }

    /// Reads raw bytes until EOF (`true`) or until `idle` passes without any (`false`).
    pub fn read_raw_until_idle(&mut self, idle: Duration) -> (Vec<u8>, bool) {
        self.read_raw_at_least(0, idle)
    }

    /// Reads until at least `want` bytes arrived or the peer closed (waiting up to
    /// `REPLY_TIMEOUT` between reads), then until the connection stays idle for `idle`.
    /// Comparing with a reference that sent `want` bytes, this waits for a slower server
    /// instead of mistaking its pace for a missing reply.
    pub fn read_raw_at_least(&mut self, want: usize, idle: Duration) -> (Vec<u8>, bool) {
        // What the BufReader holds already, then the socket.
        let mut out = self.reader.buffer().to_vec();
        let n = out.len();
        std::io::BufRead::consume(&mut self.reader, n);
        let stream = &mut self.reader.get_mut().stream;
        let mut buf = [0u8; 65536];
        let mut eof = false;
        loop {
            // Patient until `want` bytes are in, then only until the line goes quiet.
            let wait = if out.len() < want {
                REPLY_TIMEOUT
            } else {
                idle
            };
            let _ = stream.set_read_timeout(Some(wait));
            match stream.read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    eof = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let _ = stream.set_read_timeout(Some(REPLY_TIMEOUT));
        (out, eof)
    }

    pub fn writer(&mut self) -> &mut TcpStream {
        &mut self.writer
    }
}

/// RESP encoding of one command (an array of bulk strings), by the `redis` crate.
pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut cmd = redis::Cmd::new();
    for a in args {
        cmd.arg(a.as_ref());
    }
    cmd.get_packed_command()
}

/// Renders a command for humans: words, quoted when they need it.
pub fn show_cmd<A: AsRef<[u8]>>(args: &[A]) -> String {
    args.iter()
        .map(|a| show_word(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn show_word(w: &[u8]) -> String {
    let plain = !w.is_empty()
        && w.iter()
            .all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\'' && b != b'\\');
    if plain {
        return String::from_utf8_lossy(w).into_owned();
    }
    let mut s = String::from("\"");
    for &b in w {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}

/// Renders a reply for humans, close to `redis-cli` with errors in full.
pub fn show_value(v: &Value) -> String {
    match v {
        Value::Nil => "(nil)".into(),
        Value::Int(n) => format!("(integer) {n}"),
        Value::BulkString(b) => show_word_always_quoted(b),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(show_value).collect::<Vec<_>>().join(", ")
        ),
        Value::SimpleString(s) => format!("+{s}"),
        Value::Okay => "+OK".into(),
        Value::Map(kv) => format!(
            "{{{}}}",
            kv.iter()
                .map(|(k, v)| format!("{}: {}", show_value(k), show_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Set(items) => format!(
            "~{{{}}}",
            items.iter().map(show_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Double(d) => format!("(double) {d}"),
        Value::Boolean(b) => format!("(bool) {b}"),
        Value::ServerError(_) => format!("(error) {}", error_text(v).unwrap_or_default()),
        other => format!("{other:?}"),
    }
}

fn show_word_always_quoted(w: &[u8]) -> String {
    let s = show_word(w);
    if s.starts_with('"') {
        s
    } else {
        format!("\"{s}\"")
    }
}

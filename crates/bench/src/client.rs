//! The network side of the load generator: connections to a RESP server or to an etcd
//! member (etcd's v3 gRPC API through tonic), one batch of requests at a time, and
//! single-request probes the suite uses to wait for readiness, find leaders and time
//! failovers.
//!
//! Invariants: a batch of `n` requests yields exactly `n` outcomes or an error that ends the
//! connection (a RESP stream whose replies were miscounted cannot be reused); every wait on
//! the network is bounded by a timeout.

use anyhow::{bail, Context, Result};
use bytes::{Buf, BytesMut};
use redraft_bench::report::Op;
use redraft_bench::resp::{self, Reply};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub mod etcdpb {
    #![allow(clippy::all)]
    tonic::include_proto!("etcdserverpb");
}

use etcdpb::kv_client::KvClient;
use etcdpb::maintenance_client::MaintenanceClient;
use tonic::transport::Channel;

/// Where a load goes.
#[derive(Debug, Clone)]
pub enum Target {
    Resp(SocketAddr),
    /// An etcd member's client URL, e.g. `http://127.0.0.51:20379`.
    Etcd(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Resp(a) => write!(f, "{a}"),
            Target::Etcd(u) => write!(f, "{u}"),
        }
    }
}

/// What became of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A GET that found no value of the expected size.
    Miss,
    Error,
}

/// One request of a batch: the operation (SET or GET) and the key index.
#[derive(Debug, Clone, Copy)]
pub struct Req {
    pub set: bool,
    pub key: u64,
}

/// One open connection.
pub enum Conn {
    Resp {
        stream: TcpStream,
        out: Vec<u8>,
        input: BytesMut,
    },
    Etcd(KvClient<Channel>),
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Conn {
    pub async fn open(target: &Target) -> Result<Conn> {
        match target {
            Target::Resp(addr) => {
                let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
                    .await
                    .with_context(|| format!("connecting to {addr}: timed out"))?
                    .with_context(|| format!("connecting to {addr}"))?;
                stream.set_nodelay(true)?;
                Ok(Conn::Resp {
                    stream,
                    out: Vec::with_capacity(64 * 1024),
                    input: BytesMut::with_capacity(64 * 1024),
                })
            }
            Target::Etcd(url) => Ok(Conn::Etcd(KvClient::new(etcd_channel(url).await?))),
        }
    }

    /// Sends `reqs` at once (a RESP pipeline, or concurrent gRPC calls on one HTTP/2
    /// connection) and calls `done(outcome, latency)` for each as its reply arrives; latency
    /// runs from the moment the batch is sent, as redis-benchmark counts it.
    pub async fn batch(
        &mut self,
        reqs: &[Req],
        value: &[u8],
        mut done: impl FnMut(Outcome, Duration),
    ) -> Result<()> {
        match self {
            Conn::Resp { stream, out, input } => {
                out.clear();
                for r in reqs {
                    let k = redraft_bench::key(r.key);
                    if r.set {
                        resp::encode_set(out, k.as_bytes(), value);
                    } else {
                        resp::encode_get(out, k.as_bytes());
                    }
                }
                let t0 = Instant::now();
                stream.write_all(out).await?;
                for r in reqs {
                    let reply = loop {
                        if let Some((reply, used)) = resp::parse_reply(input)? {
                            input.advance(used);
                            break reply;
                        }
                        if stream.read_buf(input).await? == 0 {
                            bail!("server closed the connection");
                        }
                    };
                    let outcome = match reply {
                        Reply::Error(_) => Outcome::Error,
                        Reply::Bulk(Some(n)) if !r.set && n == value.len() => Outcome::Ok,
                        _ if !r.set => Outcome::Miss,
                        _ => Outcome::Ok,
                    };
                    done(outcome, t0.elapsed());
                }
                Ok(())
            }
            Conn::Etcd(client) => {
                let t0 = Instant::now();
                let calls = reqs.iter().map(|r| {
                    let mut c = client.clone();
                    let key = redraft_bench::key(r.key).into_bytes();
                    let set = r.set;
                    let value = value.to_vec();
                    async move {
                        let outcome = if set {
                            match c.put(etcdpb::PutRequest { key, value }).await {
                                Ok(_) => Outcome::Ok,
                                Err(_) => Outcome::Error,
                            }
                        } else {
                            let want = value.len();
                            match c.range(range_one(key)).await {
                                Ok(resp) => match resp.into_inner().kvs.first() {
                                    Some(kv) if kv.value.len() == want => Outcome::Ok,
                                    _ => Outcome::Miss,
                                },
                                Err(_) => Outcome::Error,
                            }
                        };
                        (outcome, t0.elapsed())
                    }
                });
                for (outcome, latency) in futures_util::future::join_all(calls).await {
                    done(outcome, latency);
                }
                Ok(())
            }
        }
    }
}

fn range_one(key: Vec<u8>) -> etcdpb::RangeRequest {
    etcdpb::RangeRequest {
        key,
        range_end: Vec::new(),
        limit: 0,
        serializable: false,
    }
}

async fn etcd_channel(url: &str) -> Result<Channel> {
    Channel::from_shared(url.to_string())
        .with_context(|| format!("bad etcd URL {url}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("connecting to etcd at {url}"))
}

/// Which requests a batch holds.
pub fn choose(op: Op, rng: &mut redraft_bench::Rng) -> bool {
    match op {
        Op::Set => true,
        Op::Get => false,
        Op::Mix => rng.below(10) == 0,
    }
}

/// One RESP command on a fresh connection; the reply and its raw bytes.
pub async fn resp_call(
    addr: SocketAddr,
    args: &[&[u8]],
    timeout: Duration,
) -> Result<(Reply, Vec<u8>)> {
    let work = async {
        let mut s = TcpStream::connect(addr).await?;
        let mut out = Vec::new();
        resp::encode(&mut out, args);
        s.write_all(&out).await?;
        let mut input = BytesMut::with_capacity(4096);
        loop {
            if let Some((reply, used)) = resp::parse_reply(&input)? {
                return Ok((reply, input[..used].to_vec()));
            }
            if s.read_buf(&mut input).await? == 0 {
                bail!("{addr} closed the connection");
            }
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .with_context(|| format!("no reply from {addr} in {timeout:?}"))?
}

/// A write through `target`: SET or Put of `key` to `value`; Ok only if it succeeded.
pub async fn write_once(target: &Target, key: &str, value: &[u8], timeout: Duration) -> Result<()> {
    match target {
        Target::Resp(addr) => {
            match resp_call(*addr, &[b"SET", key.as_bytes(), value], timeout).await? {
                (Reply::Simple, _) => Ok(()),
                (other, _) => bail!("SET answered {other:?}"),
            }
        }
        Target::Etcd(url) => {
            let work = async {
                let mut c = KvClient::new(etcd_channel(url).await?);
                c.put(etcdpb::PutRequest {
                    key: key.as_bytes().to_vec(),
                    value: value.to_vec(),
                })
                .await?;
                Ok(())
            };
            tokio::time::timeout(timeout, work)
                .await
                .with_context(|| format!("no reply from {url} in {timeout:?}"))?
        }
    }
}

/// A read through `target`: Ok(true) if `key` holds a value of `size` bytes.
pub async fn read_once(target: &Target, key: &str, size: usize, timeout: Duration) -> Result<bool> {
    match target {
        Target::Resp(addr) => match resp_call(*addr, &[b"GET", key.as_bytes()], timeout).await? {
            (Reply::Bulk(n), _) => Ok(n == Some(size)),
            (other, _) => bail!("GET answered {other:?}"),
        },
        Target::Etcd(url) => {
            let work = async {
                let mut c = KvClient::new(etcd_channel(url).await?);
                let r = c
                    .range(range_one(key.as_bytes().to_vec()))
                    .await?
                    .into_inner();
                Ok(r.kvs.first().is_some_and(|kv| kv.value.len() == size))
            };
            tokio::time::timeout(timeout, work)
                .await
                .with_context(|| format!("no reply from {url} in {timeout:?}"))?
        }
    }
}

/// This etcd member's id and the id of the leader it knows (0 if none).
pub async fn etcd_status(url: &str, timeout: Duration) -> Result<(u64, u64)> {
    let work = async {
        let mut c = MaintenanceClient::new(etcd_channel(url).await?);
        let s = c.status(etcdpb::StatusRequest {}).await?.into_inner();
        let member = s.header.map(|h| h.member_id).unwrap_or(0);
        Ok((member, s.leader))
    };
    tokio::time::timeout(timeout, work)
        .await
        .with_context(|| format!("no status from {url} in {timeout:?}"))?
}

/// The leader id a redraft node reports in `INFO replication` (`raft_leader_id`).
/// The data groups a redraft node lists in `INFO replication`
/// (`raft_group_<id>:...,leader=<id>,...,slots=<a>-<b> ...`): each group's leader, if it
/// knows one, and its first slot range. Empty for a node of one group.
pub async fn redraft_groups(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<Vec<(Option<u64>, u16, u16)>> {
    let (reply, raw) = resp_call(addr, &[b"INFO", b"replication"], timeout).await?;
    if let Reply::Error(e) = reply {
        bail!("INFO answered {e}");
    }
    let text = String::from_utf8_lossy(&raw);
    let mut groups = Vec::new();
    for line in text.lines() {
        let Some((name, fields)) = line.trim().split_once(':') else {
            continue;
        };
        if !name.starts_with("raft_group_") {
            continue;
        }
        let field = |f: &str| {
            fields
                .split(',')
                .find_map(|kv| kv.strip_prefix(f)?.strip_prefix('='))
        };
        let leader = field("leader").and_then(|l| l.parse().ok());
        let range = field("slots")
            .and_then(|r| r.split(' ').next())
            .and_then(|r| r.split_once('-'))
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
        if let Some((a, b)) = range {
            groups.push((leader, a, b));
        }
    }
    Ok(groups)
}

/// From a redraft node's `INFO replication`: how many data groups it has, how many it
/// leads, and how many have no leader it knows of.
pub async fn redraft_leadership(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<(usize, usize, usize)> {
    let (reply, raw) = resp_call(addr, &[b"INFO", b"replication"], timeout).await?;
    if let Reply::Error(e) = reply {
        bail!("INFO answered {e}");
    }
    let text = String::from_utf8_lossy(&raw);
    let field = |name: &str| -> Result<usize> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no {name} in INFO replication"))
    };
    Ok((
        field("raft_groups")?,
        field("raft_groups_led")?,
        field("raft_groups_without_leader")?,
    ))
}

pub async fn redraft_leader(addr: SocketAddr, timeout: Duration) -> Result<Option<u64>> {
    let (reply, raw) = resp_call(addr, &[b"INFO", b"replication"], timeout).await?;
    if let Reply::Error(e) = reply {
        bail!("INFO answered {e}");
    }
    let text = String::from_utf8_lossy(&raw);
    Ok(text
        .lines()
        .find_map(|l| l.trim().strip_prefix("raft_leader_id:"))
        .and_then(|v| v.trim().parse().ok()))
}

//! Configuration: defaults, then a TOML file (`--config`), then `REDRAFT_*` environment
//! variables, then command-line flags; each later source overrides the earlier ones.
//! [`Config::validate`] runs once, before anything starts.

use std::path::PathBuf;

use clap::Parser;
use cluster::ReadMode;
use serde::Deserialize;

use crate::Error;

/// Default address to listen on.
pub const DEFAULT_BIND: &str = "127.0.0.1";
/// Default RESP port (Redis's).
pub const DEFAULT_PORT: u16 = 6379;
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./data";
/// Default most concurrent client connections (Redis's `maxclients`).
pub const DEFAULT_MAXCLIENTS: usize = 10_000;
/// Default background task frequency in Hz (Redis's `hz`): active expiry runs this often.
pub const DEFAULT_HZ: u32 = 10;
/// Default node id of a node started without `--node-id`.
pub const DEFAULT_NODE_ID: u64 = 1;
/// Default gRPC port between nodes.
pub const DEFAULT_GRPC_PORT: u16 = 7379;
/// Default applied entries between snapshots.
pub const DEFAULT_SNAPSHOT_LOGS: u64 = cluster::DEFAULT_SNAPSHOT_LOGS;
/// Default Raft heartbeat interval, milliseconds.
pub const DEFAULT_HEARTBEAT_MS: u64 = 50;
/// Default largest write accepted, bytes (see [`cluster::DEFAULT_MAX_REQUEST_BYTES`]).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = cluster::DEFAULT_MAX_REQUEST_BYTES;
/// Default shutdown budget, seconds: after SIGTERM the process exits within this, whatever
/// is stuck (Kubernetes waits 30 s before it kills a pod).
pub const DEFAULT_SHUTDOWN_TIMEOUT: u64 = 20;

/// The largest `max-request-bytes` allowed: 4 GiB, what one large write may hold.
pub const MAX_REQUEST_BYTES_LIMIT: usize = 4 << 30;
/// Largest `timeout`, seconds (Redis's `INT_MAX`).
pub const MAX_TIMEOUT: u64 = i32::MAX as u64;

/// How reads are served (`--read-consistency`).
/// `--read-consistency`'s names, listed in `--help` and checked by clap.
fn read_mode_parser() -> impl clap::builder::TypedValueParser<Value = ReadMode> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(ReadMode::NAMES)
        .try_map(|name| name.parse::<ReadMode>())
}

/// What a node does with a command for slots it does not serve (`--cluster-routing`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Routing {
    /// Forward it to the node that serves them: any client works on any node.
    #[default]
    Proxy,
    /// Answer `-MOVED <slot> <host>:<port>`, as Redis Cluster does.
    Redirect,
}

/// What cluster replies name a node by (`--preferred-endpoint-type`, Redis's
/// `cluster-preferred-endpoint-type`): the endpoint of `CLUSTER SLOTS` and `SHARDS`, and
/// the host of `-MOVED`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum EndpointType {
    /// Its address's host (the host of `--advertise`).
    #[default]
    Ip,
    /// The hostname it announces (`--announce-hostname`), `?` if it announces none.
    Hostname,
    /// Neither: clients reach it at the address they already used (an empty host, or
    /// null in `CLUSTER SLOTS`), for nodes behind one load balancer.
    UnknownEndpoint,
}

/// A deliberately unsafe behaviour (`--unsafe`), only for proving that the fault-injection
/// suite catches what it breaks. Not in `--help`; a node running one logs a loud warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum UnsafeMode {
    /// Every node answers reads from its own state with no ReadIndex and no lease: stale
    /// reads on lagging followers and deposed leaders. NOT linearizable.
    LocalReads,
    /// The Raft log's records are read without checking their checksums, and the log is
    /// not compared with its watermark at start: a damaged log loses acknowledged writes
    /// silently. NOT durable.
    SkipLogChecks,
    /// Every replica applies writes with its own clock instead of the time the leader
    /// stamped the entry with: replicas compute different expiry times for one write, and
    /// diverge. NOT deterministic.
    LocalClock,
    /// Slot moves copy the source's keys while it still takes writes, then delete them
    /// there: writes in between are LOST.
    MoveWithoutFreeze,
}

impl UnsafeMode {
    /// The name used on the command line and in `INFO replication`.
    pub fn name(self) -> &'static str {
        match self {
            UnsafeMode::LocalReads => "local-reads",
            UnsafeMode::SkipLogChecks => "skip-log-checks",
            UnsafeMode::LocalClock => "local-clock",
            UnsafeMode::MoveWithoutFreeze => "move-without-freeze",
        }
    }

    /// What it breaks, for the warning at start.
    pub fn danger(self) -> &'static str {
        match self {
            UnsafeMode::LocalReads => {
                "reads are served from local state with no ReadIndex and no lease; they can \
                 be STALE"
            }
            UnsafeMode::SkipLogChecks => {
                "the Raft log is not checked for damage; a damaged log LOSES ACKNOWLEDGED \
                 WRITES without a word"
            }
            UnsafeMode::LocalClock => {
                "each replica applies writes with its own clock; replicas compute different \
                 expiry times and DIVERGE"
            }
            UnsafeMode::MoveWithoutFreeze => {
                "slot moves copy keys while the source still takes writes, then delete them \
                 there; a move LOSES ACKNOWLEDGED WRITES"
            }
        }
    }
}

/// A setting Redis spells `yes` or `no` (`--protected-mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum YesNo {
    #[default]
    Yes,
    No,
}

/// What the TLS port asks of clients' certificates (`--tls-auth-clients`, Redis's
/// `tls-auth-clients`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TlsAuthClients {
    /// A client must present a certificate chained to `tls-ca-cert-file`.
    #[default]
    Yes,
    /// No certificate is asked for.
    No,
    /// A client may present one (then it must be good) or none.
    Optional,
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Command-line flags. Every flag can also be set with a `REDRAFT_*` environment variable
/// or in the TOML file given with `--config` (same names, with `_` for `-`).
#[derive(Parser, Debug, Default, Clone)]
#[command(
    name = "redraft",
    version,
    about = "A Redis-compatible key-value store whose writes go through Raft."
)]
pub struct Cli {
    /// Address to listen on for RESP clients [default: 127.0.0.1]
    #[arg(long, env = "REDRAFT_BIND")]
    pub bind: Option<String>,
    /// TCP port for RESP clients; 0 with --tls-port: none, TLS only [default: 6379]
    #[arg(long, env = "REDRAFT_PORT")]
    pub port: Option<u16>,
    /// Directory for the node's data [default: ./data]
    #[arg(long, env = "REDRAFT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML configuration file; flags and environment variables override its values
    #[arg(long, env = "REDRAFT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format: text or json [default: text]; the level comes from RUST_LOG (default info)
    #[arg(long, env = "REDRAFT_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Most concurrent client connections [default: 10000]
    #[arg(long, env = "REDRAFT_MAXCLIENTS")]
    pub maxclients: Option<usize>,
    /// Background task frequency in Hz, 1-500; active expiry runs this often [default: 10]
    #[arg(long, env = "REDRAFT_HZ")]
    pub hz: Option<u32>,
    /// This node's id, a positive integer unique in the cluster [default: 1]
    #[arg(long, env = "REDRAFT_NODE_ID")]
    pub node_id: Option<u64>,
    /// Port for gRPC between nodes [default: 7379]
    #[arg(long, env = "REDRAFT_GRPC_PORT")]
    pub grpc_port: Option<u16>,
    /// Address the gRPC port for other nodes listens on, apart from the clients' --bind;
    /// a node whose peers reach it elsewhere must name it (or 0.0.0.0) [default: 127.0.0.1]
    #[arg(long, env = "REDRAFT_GRPC_BIND")]
    pub grpc_bind: Option<String>,
    /// host:port other nodes reach this node's gRPC port at; a DNS name is fine
    /// [default: <grpc-bind>:<grpc-port>]
    #[arg(long, env = "REDRAFT_ADVERTISE")]
    pub advertise: Option<String>,
    /// Every founding member, etcd-style: `1=host:port,2=host:port,3=host:port` (gRPC
    /// addresses). Without it a node is a one-member cluster of itself. Used on the first
    /// start only; later starts resume from the data directory.
    #[arg(long, env = "REDRAFT_INITIAL_CLUSTER")]
    pub initial_cluster: Option<String>,
    /// How reads are served: linearizable (ReadIndex), lease, or stale [default: linearizable]
    #[arg(long, env = "REDRAFT_READ_CONSISTENCY", value_parser = read_mode_parser())]
    pub read_consistency: Option<ReadMode>,
    /// gRPC host:port of any member of a running cluster: this (new) node asks to be
    /// added, first as a learner, then as a voter. First start only.
    #[arg(long, env = "REDRAFT_JOIN")]
    pub join: Option<String>,
    /// Applied log entries between two snapshots, after which the log is purged [default: 20000]
    #[arg(long, env = "REDRAFT_SNAPSHOT_LOGS")]
    pub snapshot_logs: Option<u64>,
    /// Raft heartbeat interval in milliseconds; a leader silent for 3 to 6 heartbeats is
    /// replaced [default: 50]
    #[arg(long, env = "REDRAFT_HEARTBEAT_MS")]
    pub heartbeat_ms: Option<u64>,
    /// Raft groups the 16384 hash slots are spread over, each with its own leader; fixed
    /// when the cluster is founded, the same on every node [default: 16]
    #[arg(long, env = "REDRAFT_RAFT_GROUPS")]
    pub raft_groups: Option<u32>,
    /// Longest a command for a slot being moved between groups is held, in milliseconds,
    /// before it is answered `-TRYAGAIN` (a move freezes its slots while their keys are
    /// copied) [default: 500]
    #[arg(long, env = "REDRAFT_SLOT_MOVE_WAIT_MS")]
    pub slot_move_wait_ms: Option<u64>,
    /// What a node does with a command for slots whose group another node leads: `proxy`
    /// forwards it there, so any client works on any node; `redirect` answers `-MOVED` to
    /// the leader, as a Redis Cluster node does, saving cluster-aware clients a hop
    /// [default: proxy]
    #[arg(long, env = "REDRAFT_CLUSTER_ROUTING", value_enum)]
    pub cluster_routing: Option<Routing>,
    /// A DNS name clients can reach this node at, announced beside its address in CLUSTER
    /// SLOTS/SHARDS/NODES (Redis's cluster-announce-hostname; a StatefulSet pod's stable
    /// name in Kubernetes) [default: none]
    #[arg(long, env = "REDRAFT_ANNOUNCE_HOSTNAME")]
    pub announce_hostname: Option<String>,
    /// What cluster replies and -MOVED name nodes by: `ip` (the host of their address),
    /// `hostname` (their announced hostname) or `unknown-endpoint` (none: the address
    /// the client used) [default: ip]
    #[arg(long, env = "REDRAFT_PREFERRED_ENDPOINT_TYPE", value_enum)]
    pub preferred_endpoint_type: Option<EndpointType>,
    /// Largest write accepted, in bytes (the whole command, or a whole EXEC); larger ones
    /// get an error before anything is proposed [default: 629145600, 600 MiB]
    #[arg(long, env = "REDRAFT_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<usize>,
    /// Seconds a shutdown may take after SIGTERM or Ctrl-C before the process exits anyway;
    /// a second signal exits at once [default: 20]
    #[arg(long, env = "REDRAFT_SHUTDOWN_TIMEOUT")]
    pub shutdown_timeout: Option<u64>,
    /// TCP port for RESP clients over TLS (Redis's tls-port); 0: none. With it, `--port 0`
    /// serves TLS only [default: 0]
    #[arg(long, env = "REDRAFT_TLS_PORT")]
    pub tls_port: Option<u16>,
    /// The TLS port's certificate chain, PEM; re-read when it changes [default: none]
    #[arg(long, env = "REDRAFT_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// The private key of --tls-cert-file, PEM; re-read when it changes [default: none]
    #[arg(long, env = "REDRAFT_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// CA certificates clients' certificates must chain to, PEM [default: none]
    #[arg(long, env = "REDRAFT_TLS_CA_CERT_FILE")]
    pub tls_ca_cert_file: Option<PathBuf>,
    /// yes: a TLS client must present a certificate chained to --tls-ca-cert-file; optional:
    /// it may; no: none is asked for (Redis's tls-auth-clients) [default: yes]
    #[arg(long, env = "REDRAFT_TLS_AUTH_CLIENTS", value_enum)]
    pub tls_auth_clients: Option<TlsAuthClients>,
    /// This node's certificate for gRPC between nodes, PEM, naming the host of its
    /// advertised address; with --peer-tls-key-file and --peer-tls-ca-file, nodes talk
    /// mutual TLS. Re-read when it changes [default: none]
    #[arg(long, env = "REDRAFT_PEER_TLS_CERT_FILE")]
    pub peer_tls_cert_file: Option<PathBuf>,
    /// The private key of --peer-tls-cert-file, PEM [default: none]
    #[arg(long, env = "REDRAFT_PEER_TLS_KEY_FILE")]
    pub peer_tls_key_file: Option<PathBuf>,
    /// CA certificates every peer's certificate must chain to, PEM [default: none]
    #[arg(long, env = "REDRAFT_PEER_TLS_CA_FILE")]
    pub peer_tls_ca_file: Option<PathBuf>,
    /// A file holding the cluster secret (at least 16 bytes; white space around it is not
    /// part of it): every call between nodes carries it, and a node refuses gRPC calls
    /// without it. Every node of a cluster needs the same one [default: none: any process
    /// that reaches the gRPC port is taken for a peer]
    #[arg(long, env = "REDRAFT_CLUSTER_SECRET_FILE")]
    pub cluster_secret_file: Option<PathBuf>,
    /// The password clients give with AUTH (Redis's requirepass; the environment or the
    /// file keep it out of `ps`) [default: none]
    #[arg(long, env = "REDRAFT_REQUIREPASS")]
    pub requirepass: Option<String>,
    /// yes: without a requirepass, take clients from loopback addresses only, as Redis's
    /// protected mode does [default: yes]
    #[arg(long, env = "REDRAFT_PROTECTED_MODE", value_enum)]
    pub protected_mode: Option<YesNo>,
    /// Seconds a client may stay idle before its connection is closed; 0 never (Redis's
    /// timeout) [default: 0]
    #[arg(long, env = "REDRAFT_TIMEOUT")]
    pub timeout: Option<u64>,
    /// An ACL file (Redis's format: `user <name> <rules...>` per line): its users seed the
    /// cluster's on the first start of a cluster whose users were never changed, and ACL
    /// SAVE and ACL LOAD write and read it [default: none]
    #[arg(long, env = "REDRAFT_ACLFILE")]
    pub aclfile: Option<PathBuf>,
    /// UNSAFE, for the fault-injection suites' self-tests only: `local-reads` serves every
    /// read from the node's own state (stale reads); `skip-log-checks` trusts a damaged
    /// log (lost writes); `local-clock` applies writes with each replica's own clock
    /// (diverging replicas); `move-without-freeze` moves slots without freezing them
    /// (lost writes). Hidden from --help on purpose.
    #[arg(long = "unsafe", env = "REDRAFT_UNSAFE", value_enum, hide = true)]
    pub unsafe_mode: Option<UnsafeMode>,
}

/// The settings a node runs with.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Address to listen on.
    pub bind: String,
    /// RESP port; 0 with a `tls-port`: none (TLS only, as in Redis), else 0 picks a free
    /// one (tests).
    pub port: u16,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Log format.
    pub log_format: LogFormat,
    /// Most concurrent client connections.
    pub maxclients: usize,
    /// Background task frequency in Hz.
    pub hz: u32,
    /// This node's id.
    pub node_id: u64,
    /// gRPC port between nodes; 0 picks a free one (tests).
    pub grpc_port: u16,
    /// Address the gRPC port listens on.
    pub grpc_bind: String,
    /// Address other nodes reach this node at (`host:port`); empty means
    /// `grpc-bind:grpc-port`.
    pub advertise: String,
    /// Founding members, `id=host:port,...`; empty means a one-member cluster.
    pub initial_cluster: String,
    /// How reads are served.
    pub read_consistency: ReadMode,
    /// A member's gRPC address to join through (first start only).
    pub join: String,
    /// Applied log entries between snapshots.
    pub snapshot_logs: u64,
    /// Raft heartbeat interval, milliseconds.
    pub heartbeat_ms: u64,
    /// Data groups the slots are spread over.
    pub raft_groups: u32,
    /// Longest a command for a moving slot is held, milliseconds.
    pub slot_move_wait_ms: u64,
    /// Forward commands for other nodes' slots, or redirect them.
    pub cluster_routing: Routing,
    /// Hostname announced to clients; empty: none.
    pub announce_hostname: String,
    /// What cluster replies name nodes by.
    pub preferred_endpoint_type: EndpointType,
    /// Largest write accepted, bytes.
    pub max_request_bytes: usize,
    /// Shutdown budget, seconds.
    pub shutdown_timeout: u64,
    /// RESP port over TLS; 0: none.
    pub tls_port: u16,
    /// The TLS port's certificate chain (PEM); empty: none.
    pub tls_cert_file: PathBuf,
    /// Its private key (PEM); empty: none.
    pub tls_key_file: PathBuf,
    /// CA certificates clients' certificates must chain to (PEM); empty: none.
    pub tls_ca_cert_file: PathBuf,
    /// What the TLS port asks of clients' certificates.
    pub tls_auth_clients: TlsAuthClients,
    /// This node's certificate between nodes (PEM); empty: no TLS between nodes.
    pub peer_tls_cert_file: PathBuf,
    /// Its private key (PEM).
    pub peer_tls_key_file: PathBuf,
    /// CA certificates peers' certificates must chain to (PEM).
    pub peer_tls_ca_file: PathBuf,
    /// File holding the cluster secret; empty: none.
    pub cluster_secret_file: PathBuf,
    /// The default user's password; empty: none.
    pub requirepass: String,
    /// Without a password, take loopback clients only.
    pub protected_mode: YesNo,
    /// Idle seconds before a client is disconnected; 0: never.
    pub timeout: u64,
    /// The ACL file; empty: none.
    pub aclfile: PathBuf,
    /// UNSAFE behaviour for the fault-injection suite's self-test (`unsafe = "local-reads"`
    /// in a file); none by default, and nothing else should ever set it.
    #[serde(rename = "unsafe")]
    pub unsafe_mode: Option<UnsafeMode>,
    /// Keep the data in memory only, without Raft (tests of the command layer). Not a
    /// flag: a node started by the binary always replicates through Raft.
    #[serde(skip)]
    pub in_memory: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: DEFAULT_BIND.to_string(),
            port: DEFAULT_PORT,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            log_format: LogFormat::Text,
            maxclients: DEFAULT_MAXCLIENTS,
            hz: DEFAULT_HZ,
            node_id: DEFAULT_NODE_ID,
            grpc_port: DEFAULT_GRPC_PORT,
            grpc_bind: DEFAULT_BIND.to_string(),
            advertise: String::new(),
            initial_cluster: String::new(),
            read_consistency: ReadMode::Linearizable,
            join: String::new(),
            snapshot_logs: DEFAULT_SNAPSHOT_LOGS,
            heartbeat_ms: DEFAULT_HEARTBEAT_MS,
            raft_groups: cluster::DEFAULT_RAFT_GROUPS,
            slot_move_wait_ms: cluster::DEFAULT_SLOT_MOVE_WAIT.as_millis() as u64,
            cluster_routing: Routing::Proxy,
            announce_hostname: String::new(),
            preferred_endpoint_type: EndpointType::Ip,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            tls_port: 0,
            tls_cert_file: PathBuf::new(),
            tls_key_file: PathBuf::new(),
            tls_ca_cert_file: PathBuf::new(),
            tls_auth_clients: TlsAuthClients::Yes,
            peer_tls_cert_file: PathBuf::new(),
            peer_tls_key_file: PathBuf::new(),
            peer_tls_ca_file: PathBuf::new(),
            cluster_secret_file: PathBuf::new(),
            requirepass: String::new(),
            protected_mode: YesNo::Yes,
            timeout: 0,
            aclfile: PathBuf::new(),
            unsafe_mode: None,
            in_memory: false,
        }
    }
}

impl Config {
    /// Builds the configuration from defaults, the file named by `--config`, and the
    /// flags/environment in `cli`, then validates it.
    pub fn load(cli: &Cli) -> Result<Config, Error> {
        let mut config = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
                toml::from_str(&text)
                    .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?
            }
            None => Config::default(),
        };
        if let Some(v) = &cli.bind {
            config.bind = v.clone();
        }
        if let Some(v) = cli.port {
            config.port = v;
        }
        if let Some(v) = &cli.data_dir {
            config.data_dir = v.clone();
        }
        if let Some(v) = cli.log_format {
            config.log_format = v;
        }
        if let Some(v) = cli.maxclients {
            config.maxclients = v;
        }
        if let Some(v) = cli.hz {
            config.hz = v;
        }
        if let Some(v) = cli.node_id {
            config.node_id = v;
        }
        if let Some(v) = cli.grpc_port {
            config.grpc_port = v;
        }
        if let Some(v) = &cli.grpc_bind {
            config.grpc_bind = v.clone();
        }
        if let Some(v) = &cli.advertise {
            config.advertise = v.clone();
        }
        if let Some(v) = &cli.initial_cluster {
            config.initial_cluster = v.clone();
        }
        if let Some(v) = cli.read_consistency {
            config.read_consistency = v;
        }
        if let Some(v) = &cli.join {
            config.join = v.clone();
        }
        if let Some(v) = cli.snapshot_logs {
            config.snapshot_logs = v;
        }
        if let Some(v) = cli.heartbeat_ms {
            config.heartbeat_ms = v;
        }
        if let Some(v) = cli.raft_groups {
            config.raft_groups = v;
        }
        if let Some(v) = cli.slot_move_wait_ms {
            config.slot_move_wait_ms = v;
        }
        if let Some(v) = cli.cluster_routing {
            config.cluster_routing = v;
        }
        if let Some(v) = &cli.announce_hostname {
            config.announce_hostname = v.clone();
        }
        if let Some(v) = cli.preferred_endpoint_type {
            config.preferred_endpoint_type = v;
        }
        if let Some(v) = cli.max_request_bytes {
            config.max_request_bytes = v;
        }
        if let Some(v) = cli.shutdown_timeout {
            config.shutdown_timeout = v;
        }
        config.apply_tls_flags(cli);
        if let Some(v) = &cli.cluster_secret_file {
            config.cluster_secret_file = v.clone();
        }
        if let Some(v) = &cli.requirepass {
            config.requirepass = v.clone();
        }
        if let Some(v) = cli.protected_mode {
            config.protected_mode = v;
        }
        if let Some(v) = cli.timeout {
            config.timeout = v;
        }
        if let Some(v) = &cli.aclfile {
            config.aclfile = v.clone();
        }
        if let Some(v) = cli.unsafe_mode {
            config.unsafe_mode = Some(v);
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks every setting; the first bad one is the error.
    pub fn validate(&self) -> Result<(), Error> {
        if self.bind.trim().is_empty() {
            return Err(Error::Config("bind must not be empty".into()));
        }
        if self.grpc_bind.trim().is_empty() {
            return Err(Error::Config("grpc-bind must not be empty".into()));
        }
        if self.maxclients == 0 {
            return Err(Error::Config("maxclients must be at least 1".into()));
        }
        if !(1..=500).contains(&self.hz) {
            return Err(Error::Config(format!(
                "hz must be between 1 and 500, got {}",
                self.hz
            )));
        }
        if self.node_id == 0 {
            return Err(Error::Config("node-id must be a positive integer".into()));
        }
        if !self.advertise.is_empty() {
            parse_host_port(&self.advertise)
                .map_err(|e| Error::Config(format!("advertise: {e}")))?;
        }
        let members = self.members()?;
        if !members.is_empty() && !members.contains_key(&self.node_id) {
            return Err(Error::Config(format!(
                "initial-cluster does not name this node (node-id {})",
                self.node_id
            )));
        }
        if !self.join.is_empty() {
            parse_host_port(&self.join).map_err(|e| Error::Config(format!("join: {e}")))?;
        }
        self.check_grpc_bind()?;
        if self.snapshot_logs == 0 {
            return Err(Error::Config("snapshot-logs must be at least 1".into()));
        }
        if !(10..=10_000).contains(&self.heartbeat_ms) {
            return Err(Error::Config(format!(
                "heartbeat-ms must be between 10 and 10000, got {}",
                self.heartbeat_ms
            )));
        }
        cluster::check_raft_groups(self.raft_groups, self.heartbeat_ms).map_err(Error::Config)?;
        types::check_hostname(&self.announce_hostname)
            .map_err(|e| Error::Config(format!("announce-hostname: {e}")))?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(Error::Config("data-dir must not be empty".into()));
        }
        if !(1024..=MAX_REQUEST_BYTES_LIMIT).contains(&self.max_request_bytes) {
            return Err(Error::Config(format!(
                "max-request-bytes must be between 1024 and {MAX_REQUEST_BYTES_LIMIT}, got {}",
                self.max_request_bytes
            )));
        }
        if !(1..=3600).contains(&self.shutdown_timeout) {
            return Err(Error::Config(format!(
                "shutdown-timeout must be between 1 and 3600 seconds, got {}",
                self.shutdown_timeout
            )));
        }
        if self.timeout > MAX_TIMEOUT {
            return Err(Error::Config(format!(
                "timeout must be between 0 and {MAX_TIMEOUT} seconds, got {}",
                self.timeout
            )));
        }
        self.peer_secret()?;
        self.acl_seed()?;
        self.check_tls()?;
        Ok(())
    }

    /// The ACL file, if one is named.
    pub fn aclfile(&self) -> Option<&std::path::Path> {
        (!self.aclfile.as_os_str().is_empty()).then_some(self.aclfile.as_path())
    }

    /// The users of the ACL file, if one is named: a file that cannot be read or holds
    /// an error stops the node at start, as it stops Redis.
    pub fn acl_seed(
        &self,
    ) -> Result<Option<std::collections::BTreeMap<String, meta::acl::User>>, Error> {
        let Some(path) = self.aclfile() else {
            return Ok(None);
        };
        crate::commands::read_aclfile(path)
            .map(Some)
            .map_err(|e| Error::Config(format!("aclfile: {e}")))
    }

    /// The cluster secret from `cluster-secret-file`, if one is named.
    pub fn peer_secret(&self) -> Result<Option<cluster::PeerSecret>, Error> {
        if self.cluster_secret_file.as_os_str().is_empty() {
            return Ok(None);
        }
        cluster::PeerSecret::read(&self.cluster_secret_file)
            .map(Some)
            .map_err(|e| Error::Config(format!("cluster-secret-file: {e}")))
    }

    /// The founding members from `initial-cluster`: id → `host:port`. Empty for a
    /// one-member cluster.
    pub fn members(&self) -> Result<std::collections::BTreeMap<u64, String>, Error> {
        let mut out = std::collections::BTreeMap::new();
        for part in self
            .initial_cluster
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (id, addr) = part.split_once('=').ok_or_else(|| {
                Error::Config(format!("initial-cluster: '{part}' is not id=host:port"))
            })?;
            let id: u64 = id.trim().parse().ok().filter(|&id| id > 0).ok_or_else(|| {
                Error::Config(format!("initial-cluster: bad node id in '{part}'"))
            })?;
            parse_host_port(addr.trim())
                .map_err(|e| Error::Config(format!("initial-cluster: {e}")))?;
            if out.insert(id, addr.trim().to_string()).is_some() {
                return Err(Error::Config(format!(
                    "initial-cluster: node {id} named twice"
                )));
            }
        }
        Ok(out)
    }

    /// The gRPC address this node advertises.
    pub fn advertise_addr(&self) -> String {
        self.named_advertise()
            .map(|(addr, _)| addr)
            .unwrap_or_else(|| join_host_port(&self.grpc_bind, self.grpc_port))
    }

    /// The gRPC address peers are told to reach this node at, and the setting that says
    /// so (`--advertise`, else this node's entry in `--initial-cluster`), if either does.
    fn named_advertise(&self) -> Option<(String, &'static str)> {
        if !self.advertise.is_empty() {
            return Some((self.advertise.clone(), "--advertise"));
        }
        let members = self.members().ok()?;
        let addr = members.get(&self.node_id)?;
        Some((addr.clone(), "--initial-cluster"))
    }

    /// Refuses a gRPC port that listens where the node's peers are not told to reach it:
    /// since gRPC has a bind address of its own, loopback unless set, a node named at
    /// another IP by `--advertise` or `--initial-cluster` would be unreachable.
    fn check_grpc_bind(&self) -> Result<(), Error> {
        let Some((named, source)) = self.named_advertise() else {
            return Ok(());
        };
        let Ok(bind) = self
            .grpc_bind
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
        else {
            return Ok(());
        };
        let Ok((host, _)) = parse_host_port(&named) else {
            return Ok(());
        };
        match host.parse::<std::net::IpAddr>() {
            Ok(ip) if !bind.is_unspecified() && ip != bind => Err(Error::Config(format!(
                "peers reach this node's gRPC port at {named} ({source}), but it listens on                  {bind} (--grpc-bind, 127.0.0.1 unless set): start it with --grpc-bind {ip}                  (or 0.0.0.0)"
            ))),
            _ => Ok(()),
        }
    }

    /// The cluster layer's view of this configuration.
    pub fn cluster(&self) -> Result<cluster::ClusterConfig, Error> {
        let advertise = self.advertise_addr();
        // Clients are named the host peers reach the node at, with the RESP port; a node
        // that names none is reached where its RESP port listens.
        let host = match self.named_advertise() {
            Some(_) => advertise
                .rsplit_once(':')
                .map_or(self.bind.as_str(), |(h, _)| h),
            None => self.bind.as_str(),
        };
        Ok(cluster::ClusterConfig {
            node_id: self.node_id,
            grpc_listen: self.grpc_listen_addr(),
            resp_addr: format!("{host}:{}", self.port),
            hostname: self.announce_hostname.clone(),
            advertise,
            members: self.members()?,
            join: (!self.join.is_empty()).then(|| self.join.clone()),
            data_dir: self.data_dir.clone(),
            read_mode: self.read_consistency,
            snapshot_logs: self.snapshot_logs,
            heartbeat_ms: self.heartbeat_ms,
            unsafe_local_reads: self.unsafe_mode == Some(UnsafeMode::LocalReads),
            unsafe_skip_log_checks: self.unsafe_mode == Some(UnsafeMode::SkipLogChecks),
            unsafe_local_clock: self.unsafe_mode == Some(UnsafeMode::LocalClock),
            unsafe_move_without_freeze: self.unsafe_mode == Some(UnsafeMode::MoveWithoutFreeze),
            max_request_bytes: self.max_request_bytes,
            raft_groups: self.raft_groups,
            slot_move_wait: std::time::Duration::from_millis(self.slot_move_wait_ms),
            peer_secret: self.peer_secret()?,
            peer_tls: self.peer_tls()?,
            links: None,
        })
    }

    /// `grpc-bind:grpc-port`.
    pub fn grpc_listen_addr(&self) -> String {
        join_host_port(&self.grpc_bind, self.grpc_port)
    }

    /// `bind:port`.
    pub fn listen_addr(&self) -> String {
        if self.bind.contains(':') {
            format!("[{}]:{}", self.bind, self.port)
        } else {
            format!("{}:{}", self.bind, self.port)
        }
    }
}

/// Checks `host:port` (host may be a DNS name or an IP; the port a number).
/// `host:port`, an IPv6 host in brackets.
fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

pub fn parse_host_port(s: &str) -> Result<(&str, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("'{s}' is not host:port"))?;
    let port: u16 = port.parse().map_err(|_| format!("'{s}' has a bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("'{s}' has no host"));
    }
    if host.contains(',') {
        return Err(format!("'{s}' has a comma in its host"));
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file() {
        let dir = std::env::temp_dir().join(format!("redraft-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("redraft.toml");
        std::fs::write(&file, "port = 7000\nbind = \"127.0.0.2\"\nhz = 20\n").unwrap();
        let cli = Cli {
            config: Some(file.clone()),
            port: Some(7001),
            ..Cli::default()
        };
        let c = Config::load(&cli).unwrap();
        assert_eq!(c.port, 7001);
        assert_eq!(c.bind, "127.0.0.2");
        assert_eq!(c.hz, 20);
        std::fs::write(&file, "porty = 1\n").unwrap();
        assert!(Config::load(&cli).is_err(), "unknown keys are refused");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn initial_cluster() {
        let c = Config {
            node_id: 2,
            initial_cluster: "1=127.0.0.11:7379, 2=redraft-1.redraft:7379,3=127.0.0.13:7379".into(),
            ..Config::default()
        };
        let m = c.members().unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(c.advertise_addr(), "redraft-1.redraft:7379");
        assert!(c.validate().is_ok());
        for bad in ["1=a", "x=a:1", "0=a:1", "1=a:1,1=b:2", "1=:5"] {
            let c = Config {
                node_id: 1,
                initial_cluster: bad.into(),
                ..Config::default()
            };
            assert!(c.validate().is_err(), "{bad} accepted");
        }
        let c = Config {
            node_id: 4,
            initial_cluster: "1=a:1".into(),
            ..Config::default()
        };
        assert!(
            c.validate().is_err(),
            "a node missing from its own initial cluster"
        );
    }

    #[test]
    fn the_grpc_port_listens_where_peers_reach_it() {
        let node = |grpc_bind: &str, initial_cluster: &str, advertise: &str| Config {
            node_id: 1,
            grpc_bind: grpc_bind.into(),
            initial_cluster: initial_cluster.into(),
            advertise: advertise.into(),
            ..Config::default()
        };
        let lan = "1=10.0.0.5:7379,2=10.0.0.6:7379,3=10.0.0.7:7379";
        let refused = node("127.0.0.1", lan, "")
            .validate()
            .unwrap_err()
            .to_string();
        assert!(refused.contains("--grpc-bind 10.0.0.5"), "{refused}");
        assert!(node("10.0.0.5", lan, "").validate().is_ok());
        assert!(node("0.0.0.0", lan, "").validate().is_ok());
        let refused = node("127.0.0.1", "", "10.0.0.5:7379")
            .validate()
            .unwrap_err();
        assert!(refused.to_string().contains("--advertise"), "{refused}");
        // Loopback clusters, DNS names and single nodes need nothing more.
        assert!(node("127.0.0.1", "1=127.0.0.1:7379,2=127.0.0.1:7380", "")
            .validate()
            .is_ok());
        assert!(node("127.0.0.1", "1=redraft-0.redraft:7379", "")
            .validate()
            .is_ok());
        assert!(Config::default().validate().is_ok());
        // Unnamed, a node advertises where its gRPC port listens, and clients reach it
        // where its RESP port does.
        let alone = Config {
            bind: "10.0.0.5".into(),
            grpc_bind: "127.0.0.5".into(),
            ..Config::default()
        };
        assert_eq!(alone.advertise_addr(), "127.0.0.5:7379");
        assert_eq!(alone.grpc_listen_addr(), "127.0.0.5:7379");
        assert_eq!(alone.cluster().unwrap().resp_addr, "10.0.0.5:6379");
    }

    #[test]
    fn the_unsafe_mode_is_off_unless_named() {
        assert_eq!(Config::default().unsafe_mode, None);
        assert!(!Config::default().cluster().unwrap().unsafe_local_reads);
        let c: Config = toml::from_str("unsafe = \"local-reads\"\n").unwrap();
        assert_eq!(c.unsafe_mode, Some(UnsafeMode::LocalReads));
        assert!(c.cluster().unwrap().unsafe_local_reads);
        assert!(toml::from_str::<Config>("unsafe = \"fast\"\n").is_err());
        let c: Config = toml::from_str("unsafe = \"skip-log-checks\"\n").unwrap();
        assert!(c.cluster().unwrap().unsafe_skip_log_checks);
        assert!(!c.cluster().unwrap().unsafe_local_reads);
        assert!(!Config::default().cluster().unwrap().unsafe_skip_log_checks);
        assert!(!Config::default().cluster().unwrap().unsafe_local_clock);
        let c: Config = toml::from_str("unsafe = \"local-clock\"\n").unwrap();
        let cluster = c.cluster().unwrap();
        assert!(cluster.unsafe_local_clock && !cluster.unsafe_local_reads);
        let cli = Cli::try_parse_from(["redraft", "--unsafe", "local-reads"]).unwrap();
        assert_eq!(cli.unsafe_mode, Some(UnsafeMode::LocalReads));
        assert!(Cli::try_parse_from(["redraft", "--unsafe", "nope"]).is_err());
    }

    #[test]
    fn validation() {
        let c = Config {
            hz: 0,
            ..Config::default()
        };
        assert!(c.validate().is_err());
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn an_announced_hostname_follows_redis_rules() {
        let named = |hostname: &str| Config {
            announce_hostname: hostname.into(),
            ..Config::default()
        };
        assert!(named("redraft-0.redraft.default.svc").validate().is_ok());
        let e = named("redraft_0").validate().unwrap_err().to_string();
        assert!(
            e.contains(
                "announce-hostname: Hostnames may only contain alphanumeric characters, \
                 hyphens or dots"
            ),
            "{e}"
        );
        let file: Config = toml::from_str(
            "announce-hostname = \"redraft-1.redraft\"\npreferred-endpoint-type = \"unknown-endpoint\"",
        )
        .expect("a file");
        assert_eq!(file.announce_hostname, "redraft-1.redraft");
        assert_eq!(file.preferred_endpoint_type, EndpointType::UnknownEndpoint);
    }
}

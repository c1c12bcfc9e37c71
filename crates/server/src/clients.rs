//! The registry of connected clients, for `CLIENT LIST`, `CLIENT INFO` and `INFO clients`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What the server knows about one connection.
pub struct ClientInfo {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub created: Instant,
    pub name: Mutex<Option<String>>,
    /// Milliseconds since `created` of the last command.
    pub last_ms: AtomicU64,
    pub last_cmd: Mutex<String>,
    pub resp: AtomicU8,
    /// Commands queued in `MULTI`, or -1.
    pub multi: AtomicI64,
    /// The connection sent `READONLY`.
    pub readonly: AtomicBool,
    /// The user it is signed in as.
    pub user: Mutex<String>,
}

impl ClientInfo {
    /// The `CLIENT LIST` line (without the newline), in Redis's field order.
    pub fn line(&self) -> String {
        let age = self.created.elapsed().as_secs();
        let idle = age.saturating_sub(self.last_ms.load(Ordering::Relaxed) / 1000);
        let name = self
            .name
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default();
        let cmd = self
            .last_cmd
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let multi = self.multi.load(Ordering::Relaxed);
        // Redis's flag letters, in its order: `x` in MULTI, `r` READONLY; `N` for none.
        let mut flags = String::new();
        if multi >= 0 {
            flags.push('x');
        }
        if self.readonly.load(Ordering::Relaxed) {
            flags.push('r');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        format!(
            "id={} addr={} laddr={} fd=0 name={} age={} idle={} flags={} db=0 sub=0 psub=0 ssub=0 multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user={} redir=-1 resp={}",
            self.id,
            self.addr,
            self.laddr,
            name,
            age,
            idle,
            flags,
            multi,
            if cmd.is_empty() { "NULL".to_string() } else { cmd },
            self.user.lock().unwrap_or_else(|p| p.into_inner()),
            self.resp.load(Ordering::Relaxed),
        )
    }
}

/// Every connected client, by id.
#[derive(Default)]
pub struct Clients {
    next_id: AtomicU64,
    map: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
}

impl Clients {
    /// Registers a new connection and returns its record.
    pub fn register(&self, addr: SocketAddr, laddr: SocketAddr) -> Arc<ClientInfo> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let info = Arc::new(ClientInfo {
            id,
            addr,
            laddr,
            created: Instant::now(),
            name: Mutex::new(None),
            last_ms: AtomicU64::new(0),
            last_cmd: Mutex::new(String::new()),
            readonly: AtomicBool::new(false),
            user: Mutex::new(meta::acl::DEFAULT_USER.to_string()),
            resp: AtomicU8::new(2),
            multi: AtomicI64::new(-1),
        });
        self.lock().insert(id, info.clone());
        info
    }

    pub fn unregister(&self, id: u64) {
        self.lock().remove(&id);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn all(&self) -> Vec<Arc<ClientInfo>> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<ClientInfo>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

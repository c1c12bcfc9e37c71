//! The history recorder: every client event becomes one line of `history.jsonl` at once.
//!
//! Invariants:
//! - An event's `index` and `time` are taken under the same lock as its write, so the
//!   file's order, the indexes and the times all agree (times never go backwards).
//! - Lines are written as they happen (buffered, flushed on [`Recorder::flush`] and on
//!   drop), so an interrupted run keeps what it recorded.
//! - A process runs one operation at a time; [`Processes`] hands a worker a new process
//!   number after an `info` (the Jepsen convention `lincheck::history` describes).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use lincheck::history::{Event, Type};
use serde_json::Value;

/// What to record about one event (the recorder adds the index and the time).
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub process: u64,
    pub kind: Type,
    pub f: String,
    pub key: Option<String>,
    pub value: Value,
    pub error: Option<String>,
    pub node: Option<String>,
}

struct State<W: Write> {
    next: u64,
    out: W,
    /// The first write error, reported by [`Recorder::flush`].
    failed: Option<io::Error>,
}

/// Appends events to a JSON-lines sink, numbering and timing them.
pub struct Recorder<W: Write = BufWriter<File>> {
    start: Instant,
    state: Mutex<State<W>>,
}

impl Recorder<BufWriter<File>> {
    /// A recorder writing to a new file at `path`; times count from `start`.
    pub fn create(path: &Path, start: Instant) -> io::Result<Self> {
        let file = File::create(path)?;
        Ok(Recorder::new(BufWriter::new(file), start))
    }
}

impl<W: Write> Recorder<W> {
    pub fn new(out: W, start: Instant) -> Self {
        Recorder {
            start,
            state: Mutex::new(State {
                next: 0,
                out,
                failed: None,
            }),
        }
    }

    /// Nanoseconds since the start of the run.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Records one event; returns it as written.
    pub fn record(&self, entry: Entry) -> Event {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let event = Event {
            index: state.next,
            process: entry.process,
            kind: entry.kind,
            f: entry.f,
            key: entry.key,
            value: entry.value,
            time: self.now(),
            error: entry.error,
            node: entry.node,
        };
        state.next += 1;
        let written = serde_json::to_writer(&mut state.out, &event)
            .map_err(io::Error::from)
            .and_then(|()| state.out.write_all(b"\n"));
        if let Err(e) = written {
            state.failed.get_or_insert(e);
        }
        event
    }

    /// How many events were recorded.
    pub fn len(&self) -> u64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).next
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Flushes the sink; the first error met while writing, if any.
    pub fn flush(&self) -> io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = state.failed.take() {
            return Err(e);
        }
        state.out.flush()
    }

    /// The sink (tests read what was written).
    pub fn into_inner(self) -> W {
        self.state
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .out
    }
}

/// Hands out process numbers: each worker starts with its own, and takes a fresh one
/// after an operation whose outcome is unknown.
#[derive(Debug, Default)]
pub struct Processes(AtomicU64);

impl Processes {
    /// Numbers start above the `reserved` ones (the workers' first numbers, 0..reserved).
    pub fn new(reserved: u64) -> Self {
        Processes(AtomicU64::new(reserved))
    }

    pub fn fresh(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lincheck::history::History;
    use std::sync::Arc;

    fn entry(process: u64, kind: Type, value: i64) -> Entry {
        Entry {
            process,
            kind,
            f: "write".into(),
            key: Some("r0".into()),
            value: Value::from(value),
            error: None,
            node: Some("n1".into()),
        }
    }

    #[test]
    fn events_are_numbered_and_timed_in_file_order_across_threads() {
        let rec = Arc::new(Recorder::new(Vec::new(), Instant::now()));
        let threads: Vec<_> = (0..4)
            .map(|p| {
                let rec = rec.clone();
                std::thread::spawn(move || {
                    for i in 0..250 {
                        rec.record(entry(p, Type::Invoke, i));
                        rec.record(entry(p, Type::Ok, i));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(rec.len(), 2000);
        rec.flush().unwrap();
        let bytes = Arc::try_unwrap(rec).ok().unwrap().into_inner();
        let history = History::read_jsonl(&bytes[..]).unwrap();
        assert_eq!(history.events.len(), 2000);
        let mut last_time = 0;
        for (i, e) in history.events.iter().enumerate() {
            assert_eq!(e.index, i as u64);
            assert!(e.time >= last_time, "time went backwards at {i}");
            last_time = e.time;
        }
        // Per process, invocations and completions alternate.
        for p in 0..4 {
            let kinds: Vec<Type> = history
                .events
                .iter()
                .filter(|e| e.process == p)
                .map(|e| e.kind)
                .collect();
            assert!(
                kinds.chunks(2).all(|c| c == [Type::Invoke, Type::Ok]),
                "process {p}"
            );
        }
    }

    #[test]
    fn a_failed_write_is_reported_by_flush() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let rec = Recorder::new(Broken, Instant::now());
        rec.record(entry(0, Type::Invoke, 1));
        assert_eq!(rec.flush().unwrap_err().to_string(), "disk full");
    }

    #[test]
    fn fresh_processes_never_repeat_a_worker_number() {
        let p = Processes::new(8);
        assert_eq!((p.fresh(), p.fresh()), (8, 9));
    }
}

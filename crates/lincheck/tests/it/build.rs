//! A small builder for hand-made histories: events get consecutive indices and times, and
//! completions repeat their invocation's `f` and key.

use std::collections::HashMap;

use lincheck::history::{Event, History, Type};
use serde_json::{json, Value};

#[derive(Debug, Clone, Default)]
pub struct Builder {
    pub history: History,
    open: HashMap<u64, (String, Option<String>, Value)>,
}

impl Builder {
    pub fn new() -> Builder {
        Builder::default()
    }

    fn push(&mut self, process: u64, kind: Type, f: &str, key: Option<&str>, value: Value) {
        let index = self.history.events.len() as u64;
        self.history.events.push(Event {
            index,
            process,
            kind,
            f: f.to_string(),
            key: key.map(str::to_string),
            value,
            time: index * 10,
            error: None,
            node: None,
        });
    }

    /// Process `p` invokes `f` on `key` with `value`.
    pub fn invoke(&mut self, p: u64, f: &str, key: Option<&str>, value: Value) -> &mut Self {
        self.push(p, Type::Invoke, f, key, value.clone());
        self.open
            .insert(p, (f.to_string(), key.map(str::to_string), value));
        self
    }

    /// Process `p`'s operation completes with `kind` and `value`.
    pub fn complete(&mut self, p: u64, kind: Type, value: Value) -> &mut Self {
        let (f, key, _) = self.open.remove(&p).expect("completion without invocation");
        self.push(p, kind, &f, key.as_deref(), value);
        self
    }

    // Register shorthands on key "x".

    pub fn w(&mut self, p: u64, v: i64) -> &mut Self {
        self.invoke(p, "write", Some("x"), json!(v))
    }

    pub fn r(&mut self, p: u64) -> &mut Self {
        self.invoke(p, "read", Some("x"), Value::Null)
    }

    /// Completes `p`'s operation ok: a write repeats its value, a read returns `read`.
    pub fn ok(&mut self, p: u64) -> &mut Self {
        let value = self.open[&p].2.clone();
        self.complete(p, Type::Ok, value)
    }

    pub fn ret(&mut self, p: u64, read: Option<i64>) -> &mut Self {
        self.complete(p, Type::Ok, json!(read))
    }

    pub fn info(&mut self, p: u64) -> &mut Self {
        let value = self.open[&p].2.clone();
        self.complete(p, Type::Info, value)
    }

    pub fn fail(&mut self, p: u64) -> &mut Self {
        let value = self.open[&p].2.clone();
        self.complete(p, Type::Fail, value)
    }

    pub fn done(&mut self) -> History {
        std::mem::take(&mut self.history)
    }
}

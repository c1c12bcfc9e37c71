//! keys commands (to be written).

use resp::Frame;

use crate::command::Spec;
use crate::db::Db;
use crate::error::Result;

pub const SPECS: &[Spec] = &[];

#[derive(Clone, Debug)]
pub enum Read {}

#[derive(Clone, Debug)]
pub enum Write {}

impl Read {
    pub fn run(&self, _db: &Db, _now_ms: i64) -> Result<Frame> {
        match *self {}
    }
}

impl Write {
    pub fn apply(&self, _db: &mut Db, _now_ms: i64) -> Result<Frame> {
        match *self {}
    }
}

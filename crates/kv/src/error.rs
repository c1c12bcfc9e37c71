//! Command errors. Each variant's `Display` is the exact text Redis replies with,
//! prefix included; [`Error::to_frame`] is the one place an error becomes a reply.

use resp::Frame;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR wrong number of arguments for '{0}' command")]
    Arity(String),
    #[error("ERR unknown command '{name}', with args beginning with: {args}")]
    UnknownCommand { name: String, args: String },
    /// A container command (`OBJECT`, `CLIENT`, `CLUSTER`, ...) with a subcommand it does not
    /// have; `sub` as sent, `command` upper case.
    #[error("ERR unknown subcommand '{sub}'. Try {command} HELP.")]
    UnknownSubcommand { sub: String, command: String },
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("ERR index out of range")]
    IndexOutOfRange,
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpire(String),
    #[error("ERR value is out of range, must be positive")]
    OutOfRangePositive,
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    StringTooLong,
    #[error("ERR min or max is not a float")]
    MinMaxNotFloat,
    #[error("ERR min or max not valid string range item")]
    MinMaxNotStringRange,
    /// Any other error; the text carries its own prefix (`ERR ...`, `EXECABORT ...`).
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// An `ERR`-prefixed error with a custom message.
    pub fn err(msg: impl std::fmt::Display) -> Error {
        Error::Other(format!("ERR {msg}"))
    }

    /// The reply a client sees for this error.
    pub fn to_frame(&self) -> Frame {
        Frame::Error(self.to_string())
    }
}

impl From<Error> for Frame {
    fn from(e: Error) -> Frame {
        e.to_frame()
    }
}

pub type Result<T> = std::result::Result<T, Error>;

//! Errors of this crate and how they become gRPC statuses.
//!
//! Invariants: every failure to understand a peer's bytes maps to `INVALID_ARGUMENT`;
//! nothing here panics.

use crate::codec::CodecError;

/// A proto message that does not make a valid domain message.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// An embedded openraft payload does not decode (or encode).
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A field has a value the protocol does not allow.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why it is refused.
        reason: String,
    },
}

impl ConvertError {
    /// A refused field value.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        ConvertError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

impl From<ConvertError> for tonic::Status {
    fn from(e: ConvertError) -> Self {
        match e {
            ConvertError::Codec(CodecError::Encode { .. }) => {
                tonic::Status::internal(e.to_string())
            }
            _ => tonic::Status::invalid_argument(e.to_string()),
        }
    }
}

/// A peer address the pool cannot use.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Not a `host:port` that makes a valid URI.
    #[error("bad peer address {addr:?}: {reason}")]
    BadAddress {
        /// The address as given.
        addr: String,
        /// Why.
        reason: String,
    },
}

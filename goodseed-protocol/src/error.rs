//! What can be wrong with a body.

/// A body that cannot be taken, and why. The message names what was wrong (the field,
/// the point's index) so that the answer a client gets is enough to fix its request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The body is larger than a limit ([`crate::limits`]): a 413.
    #[error("{what} is larger than the limit of {limit}")]
    TooLarge {
        /// What is too large ("the request body", "the ingest request's points").
        what: &'static str,
        /// The limit, as people read it ("16 MiB", "2,000,000 points").
        limit: String,
    },
    /// The body is not what the call takes: a 400.
    #[error("{0}")]
    Malformed(String),
}

/// A size in bytes as people read it: `16 MiB`, `1500 bytes`.
pub(crate) fn bytes_text(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

impl WireError {
    pub(crate) fn malformed(message: impl Into<String>) -> WireError {
        WireError::Malformed(message.into())
    }
}

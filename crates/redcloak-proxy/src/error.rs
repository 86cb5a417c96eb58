//! The data path's one error type: every error a client can get from redcloak itself, tagged
//! with where it comes from (pingora-error's `ErrorSource`), and rendered to RESP here and
//! nowhere else.
//!
//! # Security
//! Texts never contain values, arguments or secrets. A key name appears only in the reply to
//! the client that named it (sanitised and truncated by the transform layer).

use bytes::BytesMut;
use redcloak_commands::resp::{self, ProtocolError};

/// Where an error comes from (a bounded metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The client sent something redcloak refuses or cannot parse.
    Client,
    /// Redis is unreachable, slow, or answered something redcloak cannot use.
    Upstream,
    /// redcloak lost track of its own bookkeeping (a bug): the connection is closed.
    Internal,
}

impl Source {
    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Source::Client => "client",
            Source::Upstream => "upstream",
            Source::Internal => "internal",
        }
    }
}

/// An error answered to a client in place of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DataError {
    /// The command table refuses the request (unknown command, arity, a command that cannot
    /// work on ciphertext, an option redcloak cannot read exactly); the text is the table's
    /// or Redis's own wording.
    Refused(String),
    /// A request that is not RESP; the connection is closed after it.
    Protocol(ProtocolError),
    /// A request grew past `REDCLOAK_MAX_REQUEST_BYTES` without completing.
    RequestTooLarge { limit: usize },
    /// The process-wide buffer budget cannot hold this client's request right now.
    Budget { max: usize },
    /// The connection to Redis broke; the command had been sent (`sent`: its outcome is
    /// unknown) or not (it did not run).
    Lost {
        command: &'static str,
        sent: bool,
        why: &'static str,
    },
    /// Redis answered with something that is not one valid RESP frame.
    Malformed { command: &'static str },
    /// A stored value could not be decrypted (the text names the key and the reason).
    Undecryptable(String),
    /// Redis is unreachable and the command cannot be answered from the local cache.
    TryAgain { command: String },
    /// Redis is unreachable and the outage journal is full.
    JournalFull { entries: usize },
    /// Redis is unreachable and writes are not journaled (`REDCLOAK_JOURNAL_MAX_ENTRIES=0`).
    JournalDisabled,
    /// Redis came back while a write was being journaled: the client should retry.
    Recovered,
    /// `EXEC` of a transaction whose connection to Redis was lost.
    ExecAbortLost,
    /// redcloak cannot account for a reply: the connection is closed rather than hand a reply
    /// to the wrong command.
    Desync(&'static str),
}

impl DataError {
    /// Where the error comes from.
    pub(crate) fn source(&self) -> Source {
        match self {
            DataError::Refused(_)
            | DataError::Protocol(_)
            | DataError::RequestTooLarge { .. }
            | DataError::Budget { .. } => Source::Client,
            DataError::Desync(_) => Source::Internal,
            _ => Source::Upstream,
        }
    }

    /// The RESP error text (without the leading `-`).
    pub(crate) fn text(&self) -> String {
        match self {
            DataError::Refused(text) | DataError::Undecryptable(text) => text.clone(),
            DataError::Protocol(e) => format!("ERR {e}"),
            DataError::RequestTooLarge { limit } => format!(
                "ERR Protocol error: request larger than {limit} bytes (redcloak: REDCLOAK_MAX_REQUEST_BYTES)"
            ),
            DataError::Budget { max } => format!(
                "ERR redcloak: this request does not fit in the memory budget for buffered requests \
                 and replies (REDCLOAK_MAX_BUFFERED_BYTES = {max} bytes) right now; the connection is \
                 closed. Send smaller values, or raise REDCLOAK_MAX_BUFFERED_BYTES"
            ),
            DataError::Lost {
                command,
                sent: true,
                why,
            } => format!("ERR redcloak: {why}; the outcome of this {command} is unknown"),
            DataError::Lost {
                command,
                sent: false,
                why,
            } => format!("ERR redcloak: {why} before this {command} was sent; it did not run"),
            DataError::Malformed { command } => {
                format!("ERR redcloak: {command} got a malformed reply from Redis")
            }
            DataError::TryAgain { command } => format!(
                "TRYAGAIN redcloak: Redis is unreachable, {command} cannot be served from the local cache"
            ),
            DataError::JournalFull { entries } => format!(
                "TRYAGAIN redcloak: Redis is unreachable and the outage journal is full ({entries} writes); \
                 this write was not accepted"
            ),
            DataError::JournalDisabled => "TRYAGAIN redcloak: Redis is unreachable and writes are not \
                 journaled (REDCLOAK_JOURNAL_MAX_ENTRIES=0); this write was not accepted"
                .to_owned(),
            DataError::Recovered => "TRYAGAIN redcloak: Redis is back; try again".to_owned(),
            DataError::ExecAbortLost => {
                "EXECABORT Transaction discarded: the connection to Redis was lost".to_owned()
            }
            DataError::Desync(why) => {
                format!("ERR redcloak: {why}; closing the connection to keep replies in order")
            }
        }
    }

    /// Appends the error reply and counts it (`redcloak_errors_total{source}`).
    pub(crate) fn answer(&self, out: &mut BytesMut, metrics: &crate::metrics::Metrics) {
        metrics.error(self.source().as_str());
        self.write(out);
    }

    /// Appends the error reply.
    pub(crate) fn write(&self, out: &mut BytesMut) {
        resp::write_error(out, &self.text());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_is_one_line_and_says_who() {
        let all = [
            DataError::Refused("ERR redcloak: x".into()),
            DataError::Protocol(ProtocolError::InvalidBulkLength),
            DataError::RequestTooLarge { limit: 10 },
            DataError::Budget { max: 10 },
            DataError::Lost {
                command: "GET",
                sent: true,
                why: "the connection to Redis was lost",
            },
            DataError::Lost {
                command: "GET",
                sent: false,
                why: "the connection to Redis was lost",
            },
            DataError::Malformed { command: "GET" },
            DataError::TryAgain {
                command: "LPUSH".into(),
            },
            DataError::JournalFull { entries: 3 },
            DataError::JournalDisabled,
            DataError::Recovered,
            DataError::ExecAbortLost,
            DataError::Desync("Redis sent a reply to a command nobody sent"),
        ];
        for e in all {
            let mut out = BytesMut::new();
            e.write(&mut out);
            assert!(out.starts_with(b"-") && out.ends_with(b"\r\n"), "{e:?}");
            assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1, "{e:?}");
            let text = e.text();
            assert!(
                text.contains("redcloak")
                    || text.starts_with("ERR Protocol")
                    || text.starts_with("EXECABORT"),
                "{text}"
            );
        }
        assert_eq!(DataError::Desync("x").source(), Source::Internal);
        assert_eq!(DataError::Budget { max: 1 }.source(), Source::Client);
        assert_eq!(DataError::Recovered.source(), Source::Upstream);
    }
}

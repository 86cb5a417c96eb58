//! RESP framing: a bounded, resumable parser of our own.
//!
//! # Layout
//! - [`RequestParser`]: client → proxy. Arrays of bulk strings and inline commands. Resumable:
//!   a large multibulk arriving in many reads is scanned once, not from byte 0 on every read.
//! - [`ReplyScanner`]: Redis → proxy. Finds where the next reply ends (all RESP2 and RESP3
//!   types) without allocating, resumably, so pass-through replies are forwarded as bytes.
//! - [`Frame`]: a parsed reply, built only for replies whose values must be decrypted;
//!   [`Frame::parse`] and [`Frame::encode`].
//!
//! # Security
//! Clients are untrusted (any local process can connect). Every length is checked against
//! [`Limits`] *before* anything is allocated or buffered for it, nesting depth is capped
//! (a nesting bomb cannot overflow the stack), and no declared size causes a reservation.

mod frame;
mod reply;
mod request;

pub use frame::{
    write_array_len, write_bulk, write_bulk_len, write_error, write_integer, write_simple, Frame,
};
pub use reply::ReplyScanner;
pub use request::{Request, RequestParser};

/// Limits applied while parsing. The defaults follow Redis's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk string, in bytes (Redis `proto-max-bulk-len`: 512 MiB).
    pub max_bulk_len: usize,
    /// Largest number of elements in one array (request arguments, reply aggregates).
    pub max_array_len: usize,
    /// Deepest nesting of aggregates in a reply (requests are flat). An attribute (`|`) counts
    /// as one level. Whatever is configured, at most [`MAX_DEPTH_CEILING`] levels are accepted,
    /// because [`Frame::encode`], `Clone`, `PartialEq` and dropping a [`Frame`] recurse once
    /// per level.
    pub max_depth: usize,
    /// Longest inline command line, in bytes (Redis: 64 KiB).
    pub max_inline_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_array_len: 1024 * 1024,
            max_depth: 64,
            max_inline_len: 64 * 1024,
        }
    }
}

/// Hard ceiling on [`Limits::max_depth`]: a frame this deep is encoded, cloned, compared and
/// dropped well within a 2 MiB thread stack even in a debug build (tested), whatever the
/// configuration says. Parsing itself never recurses.
pub const MAX_DEPTH_CEILING: usize = 512;

impl Limits {
    /// The nesting depth actually enforced: `max_depth`, capped at [`MAX_DEPTH_CEILING`].
    pub(crate) fn depth(&self) -> usize {
        self.max_depth.min(MAX_DEPTH_CEILING)
    }
}

/// Why a byte stream is not valid RESP. The `Display` text is what the client receives after
/// `-ERR ` (Redis's wording where Redis has one), so it never includes the offending bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// `*<n>` with n not a number, or larger than [`Limits::max_array_len`].
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// `$<n>` with n not a number or negative where a value is required.
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// A declared bulk length above [`Limits::max_bulk_len`].
    #[error("Protocol error: invalid bulk length (redcloak: {declared} bytes is above the limit of {limit} bytes)")]
    BulkTooLarge {
        /// What the peer declared.
        declared: u64,
        /// The configured limit.
        limit: usize,
    },
    /// An array declared with more elements than [`Limits::max_array_len`].
    #[error("Protocol error: invalid multibulk length (redcloak: {declared} elements is above the limit of {limit})")]
    ArrayTooLong {
        /// What the peer declared.
        declared: u64,
        /// The configured limit.
        limit: usize,
    },
    /// In a request array, an element that is not a bulk string (`$`). The byte is shown only
    /// if it is printable ASCII, `?` otherwise (Redis's wording, without raw control bytes).
    #[error("Protocol error: expected '$', got '{0}'")]
    ExpectedBulk(char),
    /// An inline command line longer than [`Limits::max_inline_len`] without a newline.
    #[error("Protocol error: too big inline request")]
    TooBigInline,
    /// An inline command with an unterminated quote.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// Aggregates nested deeper than [`Limits::max_depth`].
    #[error("Protocol error: nesting deeper than {0} levels")]
    TooDeep(usize),
    /// A reply type byte that RESP does not define (printable ASCII, `?` otherwise).
    #[error("Protocol error: unknown reply type '{0}'")]
    UnknownType(char),
    /// A malformed line: missing CRLF after a bulk, a bad integer, a bad double or boolean,
    /// a line too long to be a header, a bare CR or LF in a line, a streamed RESP3 reply
    /// (`$?`, `*?`: not supported), a NUL byte in an inline command.
    #[error("Protocol error: {0}")]
    Malformed(&'static str),
}

// === helpers shared by the request parser, the reply scanner and the frame builder ===

/// Longest content of a header line (`*<n>`, `$<n>`, `:<n>`, `#t`, `_`), between the type byte
/// and CRLF. A 64-bit number needs at most 20 bytes; anything longer is an attack or garbage,
/// and is refused rather than buffered.
pub(crate) const MAX_HEADER_LEN: usize = 64;

/// Where the search for a line's CRLF stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineEnd {
    /// The line's content ends at this index (the `\r` of its CRLF).
    Found(usize),
    /// No CRLF yet: resume the search at this index once more bytes have arrived.
    Partial(usize),
}

/// Why a line is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineError {
    /// More than the allowed content without a CRLF.
    TooLong,
    /// A CR not followed by LF, or a LF not preceded by CR.
    Bare,
}

/// Looks for the CRLF ending the line whose content starts at `start`, resuming at `from`
/// (bytes between `start` and `from` were already searched). The content may be at most `max`
/// bytes and may contain neither CR nor LF. `examined` counts the bytes looked at.
pub(crate) fn find_crlf(
    buf: &[u8],
    start: usize,
    from: usize,
    max: usize,
    examined: &mut u64,
) -> Result<LineEnd, LineError> {
    let from = from.max(start);
    // The CR may sit at index start + max at the latest.
    let limit = start.saturating_add(max).saturating_add(1);
    let end = buf.len().min(limit);
    let window = buf.get(from..end).unwrap_or(&[]);
    let found = window.iter().position(|&b| b == b'\r' || b == b'\n');
    *examined += found.map_or(window.len(), |offset| offset + 1) as u64;
    match found {
        Some(offset) => {
            let at = from + offset;
            if buf.get(at) != Some(&b'\r') {
                return Err(LineError::Bare);
            }
            match buf.get(at + 1) {
                Some(b'\n') => Ok(LineEnd::Found(at)),
                Some(_) => Err(LineError::Bare),
                None => Ok(LineEnd::Partial(at)),
            }
        }
        None if buf.len() >= limit => Err(LineError::TooLong),
        None => Ok(LineEnd::Partial(end.max(from))),
    }
}

/// Parses a decimal integer the way Redis's `string2ll` does: an optional `-`, digits, no `+`,
/// no leading zeros, no `-0`, no overflow. Being this strict makes every accepted number
/// canonical, so parsed replies re-encode byte for byte.
pub(crate) fn parse_i64(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'0', ..] => return None,
        _ if digits.len() > 19 => return None,
        _ => {}
    }
    let mut value: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        // At most 19 digits: 10^19 - 1 < u64::MAX, so this cannot overflow.
        value = value * 10 + u64::from(d - b'0');
    }
    let value = i128::from(value);
    i64::try_from(if negative { -value } else { value }).ok()
}

/// The byte as a `char` for an error message: printable ASCII as is, anything else as `?`,
/// so that error replies never carry raw control bytes from the peer.
pub(crate) fn printable(b: u8) -> char {
    if b.is_ascii_graphic() {
        char::from(b)
    } else {
        '?'
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_i64_is_as_strict_as_redis() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"7"), Some(7));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b"01",
            b"-0",
            b"00",
            b" 1",
            b"1 ",
            b"1a",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"99999999999999999999",
        ] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn find_crlf_cases() {
        let mut n = 0;
        assert_eq!(
            find_crlf(b"*12\r\n", 1, 0, 64, &mut n),
            Ok(LineEnd::Found(3))
        );
        assert_eq!(find_crlf(b"*12", 1, 0, 64, &mut n), Ok(LineEnd::Partial(3)));
        assert_eq!(
            find_crlf(b"*12\r", 1, 0, 64, &mut n),
            Ok(LineEnd::Partial(3))
        );
        assert_eq!(
            find_crlf(b"*12\r", 1, 3, 64, &mut n),
            Ok(LineEnd::Partial(3))
        );
        assert_eq!(find_crlf(b"*1\n", 1, 0, 64, &mut n), Err(LineError::Bare));
        assert_eq!(
            find_crlf(b"*1\rx\r\n", 1, 0, 64, &mut n),
            Err(LineError::Bare)
        );
        // Exactly `max` bytes of content is fine, one more is not.
        assert_eq!(
            find_crlf(b"+abcd\r\n", 1, 0, 4, &mut n),
            Ok(LineEnd::Found(5))
        );
        assert_eq!(
            find_crlf(b"+abcd", 1, 0, 4, &mut n),
            Ok(LineEnd::Partial(5))
        );
        assert_eq!(
            find_crlf(b"+abcde", 1, 0, 4, &mut n),
            Err(LineError::TooLong)
        );
        assert_eq!(
            find_crlf(b"+abcde\r\n", 1, 0, 4, &mut n),
            Err(LineError::TooLong)
        );
        // A resume point beyond the buffer (caller bug) does not panic.
        assert_eq!(find_crlf(b"+a", 1, 10, 4, &mut n), Ok(LineEnd::Partial(10)));
    }

    #[test]
    fn printable_hides_control_bytes() {
        assert_eq!(printable(b'x'), 'x');
        assert_eq!(printable(b'\n'), '?');
        assert_eq!(printable(b' '), '?');
        assert_eq!(printable(0xff), '?');
    }
}

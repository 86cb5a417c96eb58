//! Parsed replies and the RESP encoders.
//!
//! [`Frame::parse`] is built in two phases, like mini-redis's `check`/`parse`: a
//! [`ReplyScanner`] first validates the whole reply against the [`Limits`] without allocating,
//! and only a complete, valid reply is turned into a [`Frame`].

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::reply::{aggregate_len, blob_len};
use super::{parse_i64, Limits, ProtocolError, ReplyScanner};

/// A parsed reply (RESP2 and RESP3). Byte payloads are zero-copy slices of the parsed buffer.
///
/// Every reply accepted by [`Frame::parse`] re-encodes byte for byte with [`Frame::encode`]
/// (numbers and lengths are parsed strictly, so there is no other spelling of them).
///
/// # Security
/// `Debug` prints the structure and the lengths of byte payloads, never their contents:
/// replies carry stored values and secrets (`CONFIG GET requirepass`).
#[derive(Clone, PartialEq, Eq)]
pub enum Frame {
    /// `+<text>`: a status reply.
    Simple(Bytes),
    /// `-<text>`: an error reply.
    Error(Bytes),
    /// `:<n>`: an integer.
    Integer(i64),
    /// `$<len>`: a bulk (blob) string.
    Bulk(Bytes),
    /// `$-1`: the RESP2 null bulk string.
    NullBulk,
    /// `*-1`: the RESP2 null array.
    NullArray,
    /// `*<n>`: an array.
    Array(Vec<Frame>),
    /// `_`: the RESP3 null.
    Null,
    /// `#t` / `#f`: a RESP3 boolean.
    Boolean(bool),
    /// `,<double>`: a RESP3 double, in the textual form it was sent in (`1.5`, `inf`, `nan`).
    Double(Bytes),
    /// `(<digits>`: a RESP3 big number, as sent.
    BigNumber(Bytes),
    /// `!<len>`: a RESP3 blob error.
    BulkError(Bytes),
    /// `=<len>`: a RESP3 verbatim string: a 3-byte format (`txt`, `mkd`) and the data.
    Verbatim {
        /// The format, such as `txt`.
        format: [u8; 3],
        /// The text after `<format>:`.
        data: Bytes,
    },
    /// `%<n>`: a RESP3 map, pairs in the order sent.
    Map(Vec<(Frame, Frame)>),
    /// `~<n>`: a RESP3 set, in the order sent.
    Set(Vec<Frame>),
    /// `><n>`: a RESP3 push (out-of-band data such as pub/sub messages).
    Push(Vec<Frame>),
    /// `|<n>`: RESP3 attributes and the reply they annotate.
    Attribute {
        /// The attribute pairs.
        attributes: Vec<(Frame, Frame)>,
        /// The annotated reply.
        frame: Box<Frame>,
    },
}

/// Prints `<n bytes>` in place of a payload.
pub(crate) struct Redacted(pub(crate) usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs = |f: &mut fmt::Formatter<'_>, name: &str, pairs: &[(Frame, Frame)]| {
            f.debug_tuple(name).field(&PairsDebug(pairs)).finish()
        };
        match self {
            Frame::Simple(b) => f.debug_tuple("Simple").field(&Redacted(b.len())).finish(),
            Frame::Error(b) => f.debug_tuple("Error").field(&Redacted(b.len())).finish(),
            Frame::Integer(n) => f.debug_tuple("Integer").field(n).finish(),
            Frame::Bulk(b) => f.debug_tuple("Bulk").field(&Redacted(b.len())).finish(),
            Frame::NullBulk => f.write_str("NullBulk"),
            Frame::NullArray => f.write_str("NullArray"),
            Frame::Array(v) => f.debug_tuple("Array").field(v).finish(),
            Frame::Null => f.write_str("Null"),
            Frame::Boolean(b) => f.debug_tuple("Boolean").field(b).finish(),
            Frame::Double(b) => f.debug_tuple("Double").field(&Redacted(b.len())).finish(),
            Frame::BigNumber(b) => f
                .debug_tuple("BigNumber")
                .field(&Redacted(b.len()))
                .finish(),
            Frame::BulkError(b) => f
                .debug_tuple("BulkError")
                .field(&Redacted(b.len()))
                .finish(),
            Frame::Verbatim { format, data } => f
                .debug_struct("Verbatim")
                .field("format", &String::from_utf8_lossy(format))
                .field("data", &Redacted(data.len()))
                .finish(),
            Frame::Map(p) => pairs(f, "Map", p),
            Frame::Set(v) => f.debug_tuple("Set").field(v).finish(),
            Frame::Push(v) => f.debug_tuple("Push").field(v).finish(),
            Frame::Attribute { attributes, frame } => f
                .debug_struct("Attribute")
                .field("attributes", &PairsDebug(attributes))
                .field("frame", frame)
                .finish(),
        }
    }
}

struct PairsDebug<'a>(&'a [(Frame, Frame)]);

impl fmt::Debug for PairsDebug<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl Frame {
    /// Parses one complete reply at the start of `src`; the payloads are zero-copy slices of
    /// it. `Ok(None)` if the reply is incomplete. Returns the frame and how many bytes it used.
    ///
    /// The reply is first validated by a [`ReplyScanner`] (same limits, same length), so
    /// nothing is allocated for a reply that is incomplete, too large or too deep. Neither
    /// pass recurses; the depth bound protects the recursive `encode`, `Clone`, `PartialEq`
    /// and `Drop` of the frame.
    pub fn parse(src: &Bytes, limits: &Limits) -> Result<Option<(Frame, usize)>, ProtocolError> {
        let Some(len) = ReplyScanner::new(*limits).scan(src)? else {
            return Ok(None);
        };
        let mut pos = 0;
        let frame = build(src, &mut pos, limits)?;
        if pos != len {
            return Err(internal());
        }
        Ok(Some((frame, len)))
    }

    /// Appends the exact RESP encoding of the frame to `out`.
    ///
    /// Parsed frames round-trip byte for byte. In hand-made frames, CR and LF inside
    /// `Simple`, `Error`, `Double` and `BigNumber` are written as spaces, so a frame can never
    /// inject a second reply.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Frame::Simple(b) => write_line(out, b'+', b),
            Frame::Error(b) => write_line(out, b'-', b),
            Frame::Integer(n) => write_integer(out, *n),
            Frame::Bulk(b) => write_blob(out, b'$', b),
            Frame::NullBulk => out.put_slice(b"$-1\r\n"),
            Frame::NullArray => out.put_slice(b"*-1\r\n"),
            Frame::Array(v) => write_aggregate(out, b'*', v),
            Frame::Null => out.put_slice(b"_\r\n"),
            Frame::Boolean(true) => out.put_slice(b"#t\r\n"),
            Frame::Boolean(false) => out.put_slice(b"#f\r\n"),
            Frame::Double(b) => write_line(out, b',', b),
            Frame::BigNumber(b) => write_line(out, b'(', b),
            Frame::BulkError(b) => write_blob(out, b'!', b),
            Frame::Verbatim { format, data } => {
                write_header(out, b'=', data.len() as u64 + 4);
                out.put_slice(format);
                out.put_u8(b':');
                out.put_slice(data);
                out.put_slice(b"\r\n");
            }
            Frame::Map(pairs) => write_pairs(out, b'%', pairs),
            Frame::Set(v) => write_aggregate(out, b'~', v),
            Frame::Push(v) => write_aggregate(out, b'>', v),
            Frame::Attribute { attributes, frame } => {
                write_pairs(out, b'|', attributes);
                frame.encode(out);
            }
        }
    }
}

fn internal() -> ProtocolError {
    ProtocolError::Malformed("internal framing error")
}

/// `src[start..end]` as a zero-copy slice, or an error instead of a panic.
fn slice(src: &Bytes, start: usize, end: usize) -> Result<Bytes, ProtocolError> {
    if start <= end && end <= src.len() {
        Ok(src.slice(start..end))
    } else {
        Err(internal())
    }
}

/// What one header or leaf element turned out to be.
enum Element {
    /// A complete frame.
    Leaf(Frame),
    /// The header of an aggregate followed by `count` elements (maps and attributes: keys and
    /// values one after the other; attributes: then the annotated reply).
    Open { kind: u8, count: usize },
}

/// An aggregate being built.
struct Open {
    kind: u8,
    items: Vec<Frame>,
    remaining: usize,
}

/// Builds the frame at `*pos` of a reply already validated by the scanner, advancing `*pos`.
/// Like the scanner, it keeps open aggregates on an explicit stack: no recursion.
fn build(src: &Bytes, pos: &mut usize, limits: &Limits) -> Result<Frame, ProtocolError> {
    let mut stack: Vec<Open> = Vec::new();
    loop {
        let mut frame = match element(src, pos, limits)? {
            Element::Leaf(frame) => frame,
            Element::Open { kind, count: 0 } => close(kind, Vec::new())?,
            Element::Open { kind, count } => {
                stack.push(Open {
                    kind,
                    items: Vec::with_capacity(count.min(1024)),
                    remaining: count,
                });
                continue;
            }
        };
        // Hand the frame to its parent, closing every aggregate it completes.
        loop {
            let Some(top) = stack.last_mut() else {
                return Ok(frame);
            };
            top.items.push(frame);
            top.remaining = top.remaining.saturating_sub(1);
            if top.remaining > 0 {
                break;
            }
            let Some(done) = stack.pop() else {
                return Err(internal());
            };
            frame = close(done.kind, done.items)?;
        }
    }
}

/// Turns the elements of a complete aggregate into its frame.
fn close(kind: u8, mut items: Vec<Frame>) -> Result<Frame, ProtocolError> {
    fn pairs(items: Vec<Frame>) -> Vec<(Frame, Frame)> {
        let mut out = Vec::with_capacity(items.len() / 2);
        let mut items = items.into_iter();
        while let (Some(key), Some(value)) = (items.next(), items.next()) {
            out.push((key, value));
        }
        out
    }
    Ok(match kind {
        b'*' => Frame::Array(items),
        b'~' => Frame::Set(items),
        b'>' => Frame::Push(items),
        b'%' if items.len() % 2 == 0 => Frame::Map(pairs(items)),
        b'|' if items.len() % 2 == 1 => {
            let frame = items.pop().ok_or_else(internal)?;
            Frame::Attribute {
                attributes: pairs(items),
                frame: Box::new(frame),
            }
        }
        _ => return Err(internal()),
    })
}

/// Reads the element (leaf or aggregate header) at `*pos`, advancing `*pos` past it.
fn element(src: &Bytes, pos: &mut usize, limits: &Limits) -> Result<Element, ProtocolError> {
    let kind = *src.get(*pos).ok_or_else(internal)?;
    let start = *pos + 1;
    let cr = start
        + src
            .get(start..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\r'))
            .ok_or_else(internal)?;
    // Headers are read in place; only payloads become (reference-counted) slices.
    let line = src.get(start..cr).ok_or_else(internal)?;
    *pos = cr + 2;
    let frame = match kind {
        b'+' => Frame::Simple(slice(src, start, cr)?),
        b'-' => Frame::Error(slice(src, start, cr)?),
        b':' => Frame::Integer(parse_i64(line).ok_or_else(internal)?),
        b'_' => Frame::Null,
        b'#' => Frame::Boolean(line == b"t"),
        b',' => Frame::Double(slice(src, start, cr)?),
        b'(' => Frame::BigNumber(slice(src, start, cr)?),
        b'$' | b'!' | b'=' => match blob_len(kind, line, limits)? {
            None => Frame::NullBulk,
            Some(len) => {
                let data_start = *pos;
                let data_end = data_start.checked_add(len).ok_or_else(internal)?;
                *pos = data_end + 2;
                match kind {
                    b'$' => Frame::Bulk(slice(src, data_start, data_end)?),
                    b'!' => Frame::BulkError(slice(src, data_start, data_end)?),
                    _ => {
                        let format = src
                            .get(data_start..)
                            .and_then(|rest| rest.get(..3))
                            .and_then(|f| <[u8; 3]>::try_from(f).ok())
                            .ok_or_else(internal)?;
                        Frame::Verbatim {
                            format,
                            data: slice(src, data_start + 4, data_end)?,
                        }
                    }
                }
            }
        },
        b'*' | b'~' | b'>' | b'%' | b'|' => match aggregate_len(kind, line, limits)? {
            None => Frame::NullArray,
            Some(count) => return Ok(Element::Open { kind, count }),
        },
        _ => return Err(internal()),
    };
    Ok(Element::Leaf(frame))
}

// === encoders ===

/// Formats `n` in decimal into the end of `buf`, returning the digits (no allocation).
fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        // u64::MAX has 20 digits, so `i` never goes below 0.
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// `<prefix><n>\r\n`.
fn write_header(out: &mut BytesMut, prefix: u8, n: u64) {
    let mut digits = [0u8; 20];
    let digits = format_u64(n, &mut digits);
    out.reserve(digits.len() + 3);
    out.put_u8(prefix);
    out.put_slice(digits);
    out.put_slice(b"\r\n");
}

/// `<prefix><line>\r\n`, CR and LF in `line` written as spaces.
fn write_line(out: &mut BytesMut, prefix: u8, line: &[u8]) {
    out.reserve(line.len() + 3);
    out.put_u8(prefix);
    if line.iter().any(|&b| b == b'\r' || b == b'\n') {
        out.extend(
            line.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    } else {
        out.put_slice(line);
    }
    out.put_slice(b"\r\n");
}

/// `<prefix><len>\r\n<data>\r\n`.
fn write_blob(out: &mut BytesMut, prefix: u8, data: &[u8]) {
    write_header(out, prefix, data.len() as u64);
    out.reserve(data.len() + 2);
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

fn write_aggregate(out: &mut BytesMut, prefix: u8, items: &[Frame]) {
    write_header(out, prefix, items.len() as u64);
    for item in items {
        item.encode(out);
    }
}

fn write_pairs(out: &mut BytesMut, prefix: u8, pairs: &[(Frame, Frame)]) {
    write_header(out, prefix, pairs.len() as u64);
    for (key, value) in pairs {
        key.encode(out);
        value.encode(out);
    }
}

/// Appends `*<n>\r\n`, the header of an array of `n` elements.
pub fn write_array_len(out: &mut BytesMut, n: usize) {
    write_header(out, b'*', n as u64);
}

/// Appends `$<len>\r\n<data>\r\n`, a bulk string.
pub fn write_bulk(out: &mut BytesMut, data: &[u8]) {
    write_blob(out, b'$', data);
}

/// Appends `$<len>\r\n`, the header of a bulk string whose `len` bytes and `\r\n` the
/// caller writes next (encrypting in place).
pub fn write_bulk_len(out: &mut BytesMut, len: usize) {
    write_header(out, b'$', len as u64);
}

/// Appends `-<msg>\r\n`, an error reply. CR and LF in `msg` are written as spaces, so a
/// message can never inject a second reply.
pub fn write_error(out: &mut BytesMut, msg: &str) {
    write_line(out, b'-', msg.as_bytes());
}

/// Appends `+<msg>\r\n`, a status reply. CR and LF in `msg` are written as spaces.
pub fn write_simple(out: &mut BytesMut, msg: &str) {
    write_line(out, b'+', msg.as_bytes());
}

/// Appends `:<n>\r\n`, an integer reply (formatted on the stack, no allocation).
pub fn write_integer(out: &mut BytesMut, n: i64) {
    let mut digits = [0u8; 20];
    let digits = format_u64(n.unsigned_abs(), &mut digits);
    out.reserve(digits.len() + 4);
    out.put_u8(b':');
    if n < 0 {
        out.put_u8(b'-');
    }
    out.put_slice(digits);
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Result<Option<(Frame, usize)>, ProtocolError> {
        Frame::parse(&Bytes::copy_from_slice(input), &Limits::default())
    }

    fn encoded(frame: &Frame) -> Vec<u8> {
        let mut out = BytesMut::new();
        frame.encode(&mut out);
        out.to_vec()
    }

    fn b(s: &[u8]) -> Bytes {
        Bytes::copy_from_slice(s)
    }

    /// Every type, with its canonical encoding.
    fn samples() -> Vec<(Frame, &'static [u8])> {
        vec![
            (Frame::Simple(b(b"OK")), b"+OK\r\n"),
            (Frame::Simple(b(b"")), b"+\r\n"),
            (Frame::Error(b(b"ERR wrong")), b"-ERR wrong\r\n"),
            (Frame::Integer(0), b":0\r\n"),
            (Frame::Integer(-42), b":-42\r\n"),
            (Frame::Integer(i64::MAX), b":9223372036854775807\r\n"),
            (Frame::Integer(i64::MIN), b":-9223372036854775808\r\n"),
            (Frame::Bulk(b(b"hello")), b"$5\r\nhello\r\n"),
            (Frame::Bulk(b(b"a\r\nb\0")), b"$5\r\na\r\nb\0\r\n"),
            (Frame::Bulk(b(b"")), b"$0\r\n\r\n"),
            (Frame::NullBulk, b"$-1\r\n"),
            (Frame::NullArray, b"*-1\r\n"),
            (Frame::Array(vec![]), b"*0\r\n"),
            (
                Frame::Array(vec![
                    Frame::Bulk(b(b"a")),
                    Frame::Array(vec![Frame::Integer(1), Frame::NullBulk]),
                ]),
                b"*2\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n",
            ),
            (Frame::Null, b"_\r\n"),
            (Frame::Boolean(true), b"#t\r\n"),
            (Frame::Boolean(false), b"#f\r\n"),
            (Frame::Double(b(b"3.14")), b",3.14\r\n"),
            (Frame::Double(b(b"-inf")), b",-inf\r\n"),
            (Frame::Double(b(b"1e-7")), b",1e-7\r\n"),
            (
                Frame::BigNumber(b(b"-3492890328409238509324850943850943825024385")),
                b"(-3492890328409238509324850943850943825024385\r\n",
            ),
            (Frame::BulkError(b(b"SYNTAX bad")), b"!10\r\nSYNTAX bad\r\n"),
            (
                Frame::Verbatim {
                    format: *b"txt",
                    data: b(b"Some string"),
                },
                b"=15\r\ntxt:Some string\r\n",
            ),
            (
                Frame::Verbatim {
                    format: *b"mkd",
                    data: b(b""),
                },
                b"=4\r\nmkd:\r\n",
            ),
            (
                Frame::Map(vec![
                    (Frame::Simple(b(b"a")), Frame::Integer(1)),
                    (Frame::Bulk(b(b"b")), Frame::Null),
                ]),
                b"%2\r\n+a\r\n:1\r\n$1\r\nb\r\n_\r\n",
            ),
            (Frame::Map(vec![]), b"%0\r\n"),
            (
                Frame::Set(vec![Frame::Boolean(true), Frame::Simple(b(b"x"))]),
                b"~2\r\n#t\r\n+x\r\n",
            ),
            (
                Frame::Push(vec![
                    Frame::Bulk(b(b"message")),
                    Frame::Bulk(b(b"ch")),
                    Frame::Bulk(b(b"hi")),
                ]),
                b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
            ),
            (
                Frame::Attribute {
                    attributes: vec![(Frame::Simple(b(b"ttl")), Frame::Integer(10))],
                    frame: Box::new(Frame::Array(vec![Frame::Integer(1)])),
                },
                b"|1\r\n+ttl\r\n:10\r\n*1\r\n:1\r\n",
            ),
            (
                Frame::Array(vec![
                    Frame::Attribute {
                        attributes: vec![],
                        frame: Box::new(Frame::Simple(b(b"OK"))),
                    },
                    Frame::Integer(2),
                ]),
                b"*2\r\n|0\r\n+OK\r\n:2\r\n",
            ),
        ]
    }

    #[test]
    fn every_type_round_trips() {
        for (frame, wire) in samples() {
            assert_eq!(encoded(&frame), wire, "encode {frame:?}");
            let mut with_next = wire.to_vec();
            with_next.extend_from_slice(b":1\r\n");
            assert_eq!(
                parse(&with_next),
                Ok(Some((frame.clone(), wire.len()))),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
            for end in 0..wire.len() {
                assert_eq!(
                    parse(&wire[..end]),
                    Ok(None),
                    "prefix {end} of {:?}",
                    String::from_utf8_lossy(wire)
                );
            }
        }
    }

    #[test]
    fn payloads_are_slices_of_the_source() {
        let src = Bytes::from_static(b"*2\r\n$5\r\nhello\r\n=7\r\ntxt:abc\r\n");
        let (frame, _) = Frame::parse(&src, &Limits::default()).unwrap().unwrap();
        let Frame::Array(items) = frame else {
            panic!("not an array")
        };
        let (Frame::Bulk(hello), Frame::Verbatim { data, .. }) = (&items[0], &items[1]) else {
            panic!("unexpected items")
        };
        assert_eq!(hello.as_ptr(), src[8..].as_ptr());
        assert_eq!(data.as_ptr(), src[23..].as_ptr());
    }

    #[test]
    fn parse_agrees_with_the_scanner_on_errors() {
        let cases: &[&[u8]] = &[
            b"$9999999999\r\n",
            b"*2000000000\r\n",
            b"?x\r\n",
            b":abc\r\n",
            b"$3\r\nabcd\r\n",
            b"*1\r\n*1\r\n;\r\n",
        ];
        for input in cases {
            let scanned = ReplyScanner::new(Limits::default()).scan(input).map(|_| ());
            assert!(scanned.is_err());
            assert_eq!(parse(input).map(|_| ()), scanned);
        }
    }

    #[test]
    fn nesting_bomb_is_refused() {
        let bomb = b"*1\r\n".repeat(100_000);
        assert_eq!(parse(&bomb), Err(ProtocolError::TooDeep(64)));
    }

    #[test]
    fn deepest_allowed_frame_fits_the_stack() {
        // At the ceiling, encoding, cloning, comparing, printing and dropping recurse once per
        // level; run them on a thread with a 2 MiB stack, like a tokio worker, in a debug
        // build (whose stack frames are the largest). Measured: debug Clone/PartialEq
        // overflow 2 MiB between 1024 and 2048 levels, so the ceiling of 512 leaves a margin
        // of two to four.
        let depth = crate::resp::MAX_DEPTH_CEILING;
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                let limits = Limits {
                    max_depth: usize::MAX,
                    ..Limits::default()
                };
                let mut wire = b"*1\r\n|1\r\n+k\r\n+v\r\n".repeat(depth / 2);
                wire.extend_from_slice(b":1\r\n");
                let src = Bytes::from(wire.clone());
                let (frame, n) = Frame::parse(&src, &limits).unwrap().unwrap();
                assert_eq!(n, wire.len());
                assert_eq!(encoded(&frame), wire);
                assert_eq!(frame.clone(), frame);
                assert!(format!("{frame:?}").len() > depth);
                let mut deeper = b"*1\r\n".repeat(depth + 1);
                deeper.extend_from_slice(b":1\r\n");
                let deeper = Bytes::from(deeper);
                assert_eq!(
                    Frame::parse(&deeper, &limits),
                    Err(ProtocolError::TooDeep(depth))
                );
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn no_preallocation_from_declared_counts() {
        // A declared count larger than what arrived never reaches Vec::with_capacity: the
        // scanner answers "incomplete" first.
        assert_eq!(parse(b"*1000000\r\n:1\r\n"), Ok(None));
    }

    #[test]
    fn encoders() {
        let mut out = BytesMut::new();
        write_array_len(&mut out, 3);
        write_bulk(&mut out, b"SET");
        write_bulk(&mut out, b"");
        write_error(&mut out, "ERR bad\r\n+OK");
        write_simple(&mut out, "OK\n");
        write_integer(&mut out, 0);
        write_integer(&mut out, -7);
        write_integer(&mut out, i64::MIN);
        write_integer(&mut out, i64::MAX);
        assert_eq!(
            &out[..],
            &b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n-ERR bad  +OK\r\n+OK \r\n:0\r\n:-7\r\n:-9223372036854775808\r\n:9223372036854775807\r\n"[..]
        );
        // Hand-made frames cannot inject a reply either.
        assert_eq!(encoded(&Frame::Simple(b(b"a\r\n+b"))), b"+a  +b\r\n");
        assert_eq!(encoded(&Frame::Error(b(b"\n"))), b"- \r\n");
    }

    #[test]
    fn debug_does_not_print_payloads() {
        let frame = Frame::Array(vec![
            Frame::Bulk(b(b"hunter2")),
            Frame::Map(vec![(Frame::Simple(b(b"secret")), Frame::Integer(3))]),
        ]);
        let shown = format!("{frame:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("secret"),
            "{shown}"
        );
        assert!(
            shown.contains("<7 bytes>") && shown.contains("Integer(3)"),
            "{shown}"
        );
    }

    #[test]
    fn accepted_garbage_round_trips() {
        // Whatever random input is accepted, it re-encodes byte for byte: the parser has no
        // lenient paths that would let two spellings of one reply through.
        // Random sequences of valid pieces and stray bytes.
        let pieces: &[&[u8]] = &[
            b"+OK\r\n",
            b"-ERR x\r\n",
            b":12\r\n",
            b":-1\r\n",
            b"$3\r\nabc\r\n",
            b"$0\r\n\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*1\r\n",
            b"*2\r\n",
            b"%1\r\n",
            b"~2\r\n",
            b">1\r\n",
            b"|1\r\n",
            b"_\r\n",
            b"#t\r\n",
            b",1.5\r\n",
            b",inf\r\n",
            b"(123\r\n",
            b"!1\r\nE\r\n",
            b"=5\r\ntxt:a\r\n",
            b"\r\n",
            b"0",
            b"1",
            b"-",
            b"x",
            b"\r",
            b"\n",
            b"*",
            b"$",
        ];
        let mut state: u64 = 0x853c_49e6_748f_ea9b;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as usize
        };
        let mut accepted = 0;
        for _ in 0..50_000 {
            let len = next() % 8;
            let input: Vec<u8> = (0..len)
                .flat_map(|_| pieces[next() % pieces.len()].iter().copied())
                .collect();
            if let Ok(Some((frame, n))) = parse(&input) {
                accepted += 1;
                assert_eq!(
                    encoded(&frame),
                    &input[..n],
                    "{:?}",
                    String::from_utf8_lossy(&input)
                );
            }
        }
        assert!(accepted > 5_000, "only {accepted} accepted");
    }
}

//! Raw RESP on the wire, for the differential harness: an independent reply parser (it does not
//! use redcloak's own scanner, so a framing bug there cannot hide itself), request encoders
//! (multibulk and inline) and a TCP connection read with deadlines.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// One reply, as sent. Numbers and doubles keep their text, so comparing two replies compares
/// their bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reply {
    /// `+text`
    Simple(Vec<u8>),
    /// `-text`
    Error(Vec<u8>),
    /// `:n` (as sent)
    Integer(Vec<u8>),
    /// `$n` data
    Bulk(Vec<u8>),
    /// `$-1`
    NullBulk,
    /// `*-1`
    NullArray,
    /// `_`
    Null,
    /// `*n`
    Array(Vec<Reply>),
    /// `%n`: keys and values one after the other.
    Map(Vec<Reply>),
    /// `~n`
    Set(Vec<Reply>),
    /// `>n`
    Push(Vec<Reply>),
    /// `,d` (as sent)
    Double(Vec<u8>),
    /// `#t` / `#f`
    Boolean(bool),
    /// `(n` (as sent)
    BigNumber(Vec<u8>),
    /// `!n` data
    BulkError(Vec<u8>),
    /// `=n` data (format included)
    Verbatim(Vec<u8>),
    /// `|n` attributes, then the reply they annotate.
    Attribute(Vec<Reply>, Box<Reply>),
    /// Placeholder left by a normalisation (never on the wire).
    Normalised(&'static str),
}

impl Reply {
    /// The RESP bytes of this reply.
    pub fn encode(&self, out: &mut Vec<u8>) {
        fn line(out: &mut Vec<u8>, t: u8, s: &[u8]) {
            out.push(t);
            out.extend_from_slice(s);
            out.extend_from_slice(b"\r\n");
        }
        fn blob(out: &mut Vec<u8>, t: u8, s: &[u8]) {
            line(out, t, s.len().to_string().as_bytes());
            out.extend_from_slice(s);
            out.extend_from_slice(b"\r\n");
        }
        fn agg(out: &mut Vec<u8>, t: u8, n: usize, items: &[Reply]) {
            line(out, t, n.to_string().as_bytes());
            for i in items {
                i.encode(out);
            }
        }
        match self {
            Reply::Simple(s) => line(out, b'+', s),
            Reply::Error(s) => line(out, b'-', s),
            Reply::Integer(s) => line(out, b':', s),
            Reply::Bulk(s) => blob(out, b'$', s),
            Reply::NullBulk => out.extend_from_slice(b"$-1\r\n"),
            Reply::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Reply::Null => out.extend_from_slice(b"_\r\n"),
            Reply::Array(v) => agg(out, b'*', v.len(), v),
            Reply::Map(v) => agg(out, b'%', v.len() / 2, v),
            Reply::Set(v) => agg(out, b'~', v.len(), v),
            Reply::Push(v) => agg(out, b'>', v.len(), v),
            Reply::Double(s) => line(out, b',', s),
            Reply::Boolean(b) => line(out, b'#', if *b { b"t" } else { b"f" }),
            Reply::BigNumber(s) => line(out, b'(', s),
            Reply::BulkError(s) => blob(out, b'!', s),
            Reply::Verbatim(s) => blob(out, b'=', s),
            Reply::Attribute(a, r) => {
                agg(out, b'|', a.len() / 2, a);
                r.encode(out);
            }
            Reply::Normalised(what) => line(out, b'?', what.as_bytes()),
        }
    }

    /// The error text of an error reply.
    pub fn error_text(&self) -> Option<&[u8]> {
        match self {
            Reply::Error(s) | Reply::BulkError(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this is a RESP3 push.
    pub fn is_push(&self) -> bool {
        matches!(self, Reply::Push(_))
    }

    /// The elements of an array, set or push (or of a map, flattened).
    pub fn items(&self) -> Option<&[Reply]> {
        match self {
            Reply::Array(v) | Reply::Set(v) | Reply::Push(v) | Reply::Map(v) => Some(v),
            _ => None,
        }
    }

    /// The bytes of a bulk, simple or verbatim string.
    pub fn text(&self) -> Option<&[u8]> {
        match self {
            Reply::Bulk(s) | Reply::Simple(s) | Reply::Verbatim(s) => Some(s),
            _ => None,
        }
    }

    /// Visits every leaf byte payload (to look for markers or ciphertext).
    pub fn for_each_bytes(&self, f: &mut dyn FnMut(&[u8])) {
        match self {
            Reply::Simple(s)
            | Reply::Error(s)
            | Reply::Integer(s)
            | Reply::Bulk(s)
            | Reply::Double(s)
            | Reply::BigNumber(s)
            | Reply::BulkError(s)
            | Reply::Verbatim(s) => f(s),
            Reply::Array(v) | Reply::Map(v) | Reply::Set(v) | Reply::Push(v) => {
                v.iter().for_each(|r| r.for_each_bytes(f))
            }
            Reply::Attribute(a, r) => {
                a.iter().for_each(|x| x.for_each_bytes(f));
                r.for_each_bytes(f);
            }
            Reply::NullBulk
            | Reply::NullArray
            | Reply::Null
            | Reply::Boolean(_)
            | Reply::Normalised(_) => {}
        }
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = Vec::new();
        self.encode(&mut out);
        f.write_str(&escape(&out))
    }
}

/// Bytes as a Rust-like string literal body: printable ASCII as is, `\r\n` and the rest escaped.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(char::from(b)),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

/// Parses one reply at the start of `buf`. `Ok(None)`: incomplete.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    let mut pos = 0;
    match parse_at(buf, &mut pos, 0)? {
        Some(r) => Ok(Some((r, pos))),
        None => Ok(None),
    }
}

fn line_at<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, String> {
    let start = *pos;
    let Some(off) = buf[start..].windows(2).position(|w| w == b"\r\n") else {
        if buf.len() - start > 1 << 20 {
            return Err("line longer than 1 MiB".into());
        }
        return Ok(None);
    };
    *pos = start + off + 2;
    Ok(Some(&buf[start..start + off]))
}

fn number(s: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad length {:?}", escape(s)))
}

fn parse_at(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Option<Reply>, String> {
    if depth > 128 {
        return Err("reply nested deeper than 128".into());
    }
    let Some(&t) = buf.get(*pos) else {
        return Ok(None);
    };
    *pos += 1;
    let Some(l) = line_at(buf, pos)? else {
        return Ok(None);
    };
    let l = l.to_vec();
    let blob = |pos: &mut usize, n: i64| -> Result<Option<Vec<u8>>, String> {
        let n = usize::try_from(n).map_err(|_| "negative blob length".to_string())?;
        if buf.len() < *pos + n + 2 {
            return Ok(None);
        }
        if &buf[*pos + n..*pos + n + 2] != b"\r\n" {
            return Err("blob not followed by CRLF".into());
        }
        let data = buf[*pos..*pos + n].to_vec();
        *pos += n + 2;
        Ok(Some(data))
    };
    let agg = |pos: &mut usize, n: usize| -> Result<Option<Vec<Reply>>, String> {
        let mut items = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            match parse_at(buf, pos, depth + 1)? {
                Some(r) => items.push(r),
                None => return Ok(None),
            }
        }
        Ok(Some(items))
    };
    let count = |l: &[u8]| -> Result<usize, String> {
        usize::try_from(number(l)?).map_err(|_| "negative count".to_string())
    };
    Ok(match t {
        b'+' => Some(Reply::Simple(l)),
        b'-' => Some(Reply::Error(l)),
        b':' => Some(Reply::Integer(l)),
        b',' => Some(Reply::Double(l)),
        b'(' => Some(Reply::BigNumber(l)),
        b'_' => Some(Reply::Null),
        b'#' => Some(Reply::Boolean(l == b"t")),
        b'$' if l == b"-1" => Some(Reply::NullBulk),
        b'*' if l == b"-1" => Some(Reply::NullArray),
        b'$' => blob(pos, number(&l)?)?.map(Reply::Bulk),
        b'!' => blob(pos, number(&l)?)?.map(Reply::BulkError),
        b'=' => blob(pos, number(&l)?)?.map(Reply::Verbatim),
        b'*' => agg(pos, count(&l)?)?.map(Reply::Array),
        b'~' => agg(pos, count(&l)?)?.map(Reply::Set),
        b'>' => agg(pos, count(&l)?)?.map(Reply::Push),
        b'%' => agg(pos, 2 * count(&l)?)?.map(Reply::Map),
        b'|' => {
            let Some(attrs) = agg(pos, 2 * count(&l)?)? else {
                return Ok(None);
            };
            parse_at(buf, pos, depth + 1)?.map(|r| Reply::Attribute(attrs, Box::new(r)))
        }
        other => return Err(format!("unknown reply type byte 0x{other:02x}")),
    })
}

/// `args` as a RESP multibulk request.
pub fn multibulk(args: &[Vec<u8>], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// `args` as an inline command line (quoted with `"…"` and `\xHH` escapes where needed, which
/// Redis's `sdssplitargs` understands). `None` if the line would contain a NUL byte or be too
/// long for an inline request.
pub fn inline(args: &[Vec<u8>], out: &mut Vec<u8>) -> Option<()> {
    let mut line = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            line.push(b' ');
        }
        let plain = !a.is_empty()
            && a.iter()
                .all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\'' && b != b'\\');
        if plain {
            line.extend_from_slice(a);
        } else {
            line.push(b'"');
            for &b in a {
                match b {
                    b'"' => line.extend_from_slice(b"\\\""),
                    b'\\' => line.extend_from_slice(b"\\\\"),
                    0x20..=0x7e => line.push(b),
                    _ => line.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                }
            }
            line.push(b'"');
        }
    }
    if line.contains(&0) || line.len() > 60 * 1024 || args.is_empty() {
        return None;
    }
    out.extend_from_slice(&line);
    out.extend_from_slice(b"\r\n");
    Some(())
}

/// What reading the next reply produced.
#[derive(Clone, PartialEq, Eq)]
pub enum Event {
    /// A reply.
    Frame(Reply),
    /// The peer closed the connection.
    Closed,
    /// Nothing complete arrived before the deadline.
    Timeout,
    /// Bytes that are not RESP.
    Garbage(String),
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Frame(r) => write!(f, "{r:?}"),
            Event::Closed => f.write_str("<connection closed>"),
            Event::Timeout => f.write_str("<no reply (timeout)>"),
            Event::Garbage(e) => write!(f, "<not RESP: {e}>"),
        }
    }
}

/// A raw TCP RESP connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    closed: bool,
}

impl Conn {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
            closed: false,
        })
    }

    /// Writes `bytes` (a write to a closed connection is not an error here: the next read
    /// says what happened).
    pub fn write(&mut self, bytes: &[u8]) {
        if self.stream.write_all(bytes).is_err() {
            self.closed = true;
        }
    }

    /// Writes `bytes` in the given chunk sizes (one write each; the last chunk takes the rest).
    pub fn write_chunked(&mut self, bytes: &[u8], chunks: &[usize]) {
        let mut at = 0;
        for &c in chunks {
            if at >= bytes.len() {
                break;
            }
            let end = (at + c.max(1)).min(bytes.len());
            self.write(&bytes[at..end]);
            at = end;
        }
        if at < bytes.len() {
            self.write(&bytes[at..]);
        }
    }

    /// Whether reply bytes are waiting to be read (without blocking).
    pub fn has_data(&mut self) -> bool {
        if !self.buf.is_empty() {
            return true;
        }
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let mut b = [0u8; 1];
        let r = self.stream.peek(&mut b);
        let _ = self.stream.set_nonblocking(false);
        matches!(r, Ok(n) if n > 0) || matches!(r, Ok(0))
    }

    /// The next reply, waiting at most `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Event {
        let deadline = Instant::now() + timeout;
        loop {
            match parse(&self.buf) {
                Ok(Some((r, n))) => {
                    self.buf.drain(..n);
                    return Event::Frame(r);
                }
                Ok(None) => {}
                Err(e) => {
                    self.buf.clear();
                    self.closed = true;
                    return Event::Garbage(e);
                }
            }
            if self.closed {
                return Event::Closed;
            }
            let now = Instant::now();
            if now >= deadline {
                return Event::Timeout;
            }
            let _ = self.stream.set_read_timeout(Some(deadline - now));
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => self.closed = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.closed = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reencodes_every_type() {
        let cases: &[&[u8]] = &[
            b"+OK\r\n",
            b"-ERR x\r\n",
            b":-12\r\n",
            b"$3\r\na\r\n\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            b"_\r\n",
            b"*2\r\n$1\r\na\r\n:1\r\n",
            b"%1\r\n+k\r\n,1.5\r\n",
            b"~1\r\n#t\r\n",
            b">2\r\n+a\r\n(123\r\n",
            b"!3\r\nerr\r\n",
            b"=7\r\ntxt:abc\r\n",
            b"|1\r\n+a\r\n+b\r\n:1\r\n",
        ];
        for case in cases {
            let (r, n) = parse(case).unwrap().unwrap();
            assert_eq!(n, case.len());
            let mut out = Vec::new();
            r.encode(&mut out);
            assert_eq!(&out[..], *case);
            for cut in 0..case.len() {
                assert!(parse(&case[..cut]).unwrap().is_none(), "{case:?} cut {cut}");
            }
        }
    }

    #[test]
    fn inline_quotes_what_needs_quoting() {
        let mut out = Vec::new();
        inline(
            &[b"SET".to_vec(), b"k".to_vec(), b"a b\"\x01".to_vec()],
            &mut out,
        )
        .unwrap();
        assert_eq!(&out[..], b"SET k \"a b\\\"\\x01\"\r\n");
    }
}

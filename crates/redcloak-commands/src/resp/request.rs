//! Client requests: arrays of bulk strings (`*<n>\r\n$<len>\r\n...`) and inline commands.
//!
//! [`RequestParser`] follows Redis's `processMultibulkBuffer` and `processInlineBuffer`,
//! including their error wording, with one difference that makes it stricter: every limit is
//! checked as soon as the header carrying it is read. Like Redis 7.0, the two bytes after each
//! bulk's data are skipped whatever they are (`*1\r\n$4\r\nPINGxx` is `PING`): a client that
//! works against Redis works against redcloak, and the arguments redcloak forwards are its own
//! re-encoding, so the skipped bytes never reach Redis.

use std::fmt;

use bytes::{Bytes, BytesMut};

use super::{
    find_crlf, parse_i64, printable, Limits, LineEnd, LineError, ProtocolError, MAX_HEADER_LEN,
};

/// One client command: its arguments (name first), zero-copy slices of the read buffer
/// (arguments of inline commands that use quotes or escapes are copied).
///
/// # Security
/// `Debug` prints only the argument lengths: arguments hold values and secrets
/// (`AUTH <password>`), which must never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// The arguments, command name first. Never empty.
    pub args: Vec<Bytes>,
    /// Whether the command came as an inline line (`PING\r\n`) rather than a RESP array.
    pub inline: bool,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Lengths<'a>(&'a [Bytes]);
        impl fmt::Debug for Lengths<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|a| super::frame::Redacted(a.len())))
                    .finish()
            }
        }
        f.debug_struct("Request")
            .field("args", &Lengths(&self.args))
            .field("inline", &self.inline)
            .finish()
    }
}

/// Where the parser stopped when the buffer ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Between requests.
    Start,
    /// Inside an inline line; the search for `\n` resumes at `scanned`.
    Inline { scanned: usize },
    /// Inside a multibulk whose header has been read.
    Multibulk {
        /// Bulks still to read.
        remaining: usize,
        /// Start of the next bulk header (or of the data of `bulk`).
        pos: usize,
        /// The bulk whose header has been read: (data start, data length).
        bulk: Option<(usize, usize)>,
    },
}

/// Splits client requests off the front of a read buffer, resumably.
///
/// # Security
/// Every declared length is checked against [`Limits`] as soon as its header has arrived,
/// before any of the data it announces is awaited; header lines and inline lines are bounded;
/// nothing is reserved from a declared count beyond 1024 elements. A request that is still
/// arriving is scanned once in total, not once per read, so a slow large request costs linear
/// time. After an error the connection should be closed (as Redis does): the stream can no
/// longer be framed.
#[derive(Debug, Clone)]
pub struct RequestParser {
    limits: Limits,
    state: State,
    /// Ranges of the arguments of the multibulk being read (reused across requests).
    ranges: Vec<(usize, usize)>,
    /// Bytes examined so far (for tests of linear-time resumption).
    examined: u64,
}

impl RequestParser {
    /// A parser enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        RequestParser {
            limits,
            state: State::Start,
            ranges: Vec::new(),
            examined: 0,
        }
    }

    /// Takes the next complete request off the front of `buf` (`split_to` + `freeze`; the
    /// arguments are slices of that).
    ///
    /// `Ok(None)` means more bytes are needed: the parser keeps its place, and the next call
    /// (with more bytes appended to the same `buf`) resumes where this one stopped. Empty
    /// inline lines and `*0`/`*-1` are consumed and skipped, as Redis does, never returned.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, ProtocolError> {
        self.check_resume(buf);
        let result = self.run(buf);
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn reset(&mut self) {
        self.state = State::Start;
        self.ranges.clear();
    }

    /// If `buf` cannot be the buffer seen by the previous call (caller bug), start over
    /// rather than misframe.
    fn check_resume(&mut self, buf: &BytesMut) {
        let consistent = match self.state {
            State::Start => true,
            State::Inline { scanned } => scanned <= buf.len() && buf.first() != Some(&b'*'),
            State::Multibulk { pos, .. } => pos <= buf.len() && buf.first() == Some(&b'*'),
        };
        if !consistent {
            self.reset();
        }
    }

    fn run(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, ProtocolError> {
        loop {
            match self.state {
                State::Start => match buf.first() {
                    None => return Ok(None),
                    Some(b'*') => {
                        if !self.start_multibulk(buf)? {
                            return Ok(None);
                        }
                    }
                    Some(_) => self.state = State::Inline { scanned: 0 },
                },
                State::Inline { scanned } => match self.inline(buf, scanned)? {
                    InlineStep::Incomplete(scanned) => {
                        self.state = State::Inline { scanned };
                        return Ok(None);
                    }
                    InlineStep::Skipped => self.state = State::Start,
                    InlineStep::Done(request) => {
                        self.state = State::Start;
                        return Ok(Some(request));
                    }
                },
                State::Multibulk { .. } => return self.multibulk(buf),
            }
        }
    }

    /// Reads a `*<n>` header. `Ok(false)`: incomplete. A count of zero or less is what Redis
    /// ignores (`*0`, `*-1`, `*-10`…): the header is consumed, nothing is produced, and the
    /// state stays `Start`.
    fn start_multibulk(&mut self, buf: &mut BytesMut) -> Result<bool, ProtocolError> {
        let cr = match find_crlf(buf, 1, 1, MAX_HEADER_LEN, &mut self.examined) {
            Ok(LineEnd::Found(cr)) => cr,
            Ok(LineEnd::Partial(_)) => return Ok(false),
            Err(LineError::TooLong) => {
                return Err(ProtocolError::Malformed("too big mbulk count string"))
            }
            Err(LineError::Bare) => return Err(ProtocolError::InvalidMultibulkLength),
        };
        let content = buf.get(1..cr).unwrap_or_default();
        let n = parse_i64(content).ok_or(ProtocolError::InvalidMultibulkLength)?;
        if n <= 0 {
            let _ = buf.split_to(cr + 2);
            return Ok(true);
        }
        let declared = u64::try_from(n).map_err(|_| ProtocolError::InvalidMultibulkLength)?;
        let remaining = usize::try_from(declared)
            .ok()
            .filter(|&n| n <= self.limits.max_array_len)
            .ok_or(ProtocolError::ArrayTooLong {
                declared,
                limit: self.limits.max_array_len,
            })?;
        self.ranges.clear();
        self.ranges.reserve(remaining.min(1024));
        self.state = State::Multibulk {
            remaining,
            pos: cr + 2,
            bulk: None,
        };
        Ok(true)
    }

    /// Reads bulks until the multibulk is complete or the buffer runs out.
    fn multibulk(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, ProtocolError> {
        let State::Multibulk {
            mut remaining,
            mut pos,
            mut bulk,
        } = self.state
        else {
            return Ok(None);
        };
        let result = self.read_bulks(buf, &mut remaining, &mut pos, &mut bulk);
        self.state = State::Multibulk {
            remaining,
            pos,
            bulk,
        };
        if !result? {
            return Ok(None);
        }
        let frozen = buf.split_to(pos).freeze();
        let args = self
            .ranges
            .drain(..)
            .map(|(start, end)| slice(&frozen, start, end))
            .collect::<Result<Vec<_>, _>>()?;
        self.state = State::Start;
        Ok(Some(Request {
            args,
            inline: false,
        }))
    }

    /// `Ok(true)` once all bulks have been read.
    fn read_bulks(
        &mut self,
        buf: &[u8],
        remaining: &mut usize,
        pos: &mut usize,
        bulk: &mut Option<(usize, usize)>,
    ) -> Result<bool, ProtocolError> {
        while *remaining > 0 {
            let (data, len) = match *bulk {
                Some(b) => b,
                None => {
                    let Some(&first) = buf.get(*pos) else {
                        return Ok(false);
                    };
                    if first != b'$' {
                        return Err(ProtocolError::ExpectedBulk(printable(first)));
                    }
                    let start = *pos + 1;
                    let cr = match find_crlf(buf, start, start, MAX_HEADER_LEN, &mut self.examined)
                    {
                        Ok(LineEnd::Found(cr)) => cr,
                        Ok(LineEnd::Partial(_)) => return Ok(false),
                        Err(LineError::TooLong) => {
                            return Err(ProtocolError::Malformed("too big bulk count string"))
                        }
                        Err(LineError::Bare) => return Err(ProtocolError::InvalidBulkLength),
                    };
                    let content = buf.get(start..cr).unwrap_or_default();
                    let n = parse_i64(content).ok_or(ProtocolError::InvalidBulkLength)?;
                    let declared =
                        u64::try_from(n).map_err(|_| ProtocolError::InvalidBulkLength)?;
                    let len = usize::try_from(declared)
                        .ok()
                        .filter(|&len| len <= self.limits.max_bulk_len)
                        .ok_or(ProtocolError::BulkTooLarge {
                            declared,
                            limit: self.limits.max_bulk_len,
                        })?;
                    *bulk = Some((cr + 2, len));
                    (cr + 2, len)
                }
            };
            let too_large = || ProtocolError::BulkTooLarge {
                declared: len as u64,
                limit: self.limits.max_bulk_len,
            };
            let data_end = data.checked_add(len).ok_or_else(too_large)?;
            let end = data_end.checked_add(2).ok_or_else(too_large)?;
            if buf.len() < end {
                return Ok(false);
            }
            // Redis's processMultibulkBuffer skips `bulklen + 2` bytes without looking at the
            // last two; so does redcloak (they are not examined).
            self.ranges.push((data, data_end));
            *pos = end;
            *bulk = None;
            *remaining -= 1;
        }
        Ok(true)
    }

    /// One step of an inline line whose `\n` search resumes at `scanned`.
    fn inline(&mut self, buf: &mut BytesMut, scanned: usize) -> Result<InlineStep, ProtocolError> {
        // The line, `\r` included, may be max_inline_len bytes; its `\n` comes next at the latest.
        let limit = self.limits.max_inline_len.saturating_add(1);
        let end = buf.len().min(limit);
        let window = buf.get(scanned..end).unwrap_or_default();
        self.examined += window.len() as u64;
        let Some(offset) = window.iter().position(|&b| b == b'\n') else {
            if buf.len() >= limit {
                return Err(ProtocolError::TooBigInline);
            }
            return Ok(InlineStep::Incomplete(end));
        };
        let newline = scanned + offset;
        let line_end = if newline > 0 && buf.get(newline - 1) == Some(&b'\r') {
            newline - 1
        } else {
            newline
        };
        let frozen = buf.split_to(newline + 1).freeze();
        let line = slice(&frozen, 0, line_end)?;
        self.examined += line.len() as u64;
        if line.contains(&0) {
            // Redis looks for the newline with strchr(), which stops at a NUL: such a line
            // would never be executed there. Refuse it rather than guess.
            return Err(ProtocolError::Malformed("null byte in inline request"));
        }
        let args = split_args(&line)?;
        if args.is_empty() {
            return Ok(InlineStep::Skipped);
        }
        Ok(InlineStep::Done(Request { args, inline: true }))
    }

    /// Bytes examined since the parser was created (tests check this grows linearly).
    #[cfg(test)]
    pub(crate) fn examined(&self) -> u64 {
        self.examined
    }
}

/// Outcome of one inline step.
enum InlineStep {
    /// No `\n` yet; resume the search here.
    Incomplete(usize),
    /// An empty or blank line, consumed.
    Skipped,
    /// A command.
    Done(Request),
}

/// `src[start..end]` as a zero-copy slice, or an error instead of a panic.
fn slice(src: &Bytes, start: usize, end: usize) -> Result<Bytes, ProtocolError> {
    if start <= end && end <= src.len() {
        Ok(src.slice(start..end))
    } else {
        Err(ProtocolError::Malformed("internal framing error"))
    }
}

/// `isspace()` in the C locale, as used by Redis between arguments.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The bytes that end an unquoted argument in `sdssplitargs` (NUL is refused earlier).
fn ends_token(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Splits an inline line into arguments exactly like Redis's `sdssplitargs`: blanks separate;
/// `"..."` with escapes `\n \r \t \b \a \xHH` (any other escaped byte stands for itself);
/// `'...'` with only `\'`; a quote may start mid-argument (`a"b c"` is `ab c`); a closing
/// quote must be followed by a blank or the end of the line.
///
/// Arguments without quotes are zero-copy slices of `line`.
fn split_args(line: &Bytes) -> Result<Vec<Bytes>, ProtocolError> {
    let s = &line[..];
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while s.get(i).is_some_and(|&b| is_space(b)) {
            i += 1;
        }
        if i >= s.len() {
            return Ok(args);
        }
        let start = i;
        while s
            .get(i)
            .is_some_and(|&b| !ends_token(b) && b != b'"' && b != b'\'')
        {
            i += 1;
        }
        match s.get(i) {
            Some(b'"' | b'\'') => {
                let (arg, next) = quoted_arg(s, start, i)?;
                args.push(Bytes::from(arg));
                i = next;
            }
            _ => args.push(slice(line, start, i)?),
        }
    }
}

/// The slow path of [`split_args`]: an argument starting at `start` whose first quote is at
/// `quote`. After the quote closes the argument ends, so the argument is the unquoted prefix
/// plus the quoted part. Returns the argument and the index after it.
fn quoted_arg(s: &[u8], start: usize, quote: usize) -> Result<(Vec<u8>, usize), ProtocolError> {
    let mut arg = s.get(start..quote).unwrap_or_default().to_vec();
    let double = s.get(quote) == Some(&b'"');
    let closing = if double { b'"' } else { b'\'' };
    let mut i = quote + 1;
    loop {
        match s.get(i).copied() {
            None => return Err(ProtocolError::UnbalancedQuotes),
            Some(b'\\') if double => match (s.get(i + 1).copied(), s.get(i + 2), s.get(i + 3)) {
                (Some(b'x'), Some(&hi), Some(&lo)) => match (hex_value(hi), hex_value(lo)) {
                    (Some(hi), Some(lo)) => {
                        arg.push(hi * 16 + lo);
                        i += 4;
                    }
                    _ => {
                        arg.push(b'x');
                        i += 2;
                    }
                },
                (Some(escaped), _, _) => {
                    arg.push(match escaped {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                    i += 2;
                }
                // A backslash ending the line: the quote is never closed.
                (None, _, _) => return Err(ProtocolError::UnbalancedQuotes),
            },
            Some(b'\\') if s.get(i + 1) == Some(&b'\'') => {
                arg.push(b'\'');
                i += 2;
            }
            Some(b) if b == closing => {
                // The closing quote must be followed by a blank or the end of the line.
                if s.get(i + 1).is_some_and(|&next| !is_space(next)) {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
                return Ok((arg, i + 1));
            }
            Some(b) => {
                arg.push(b);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::{write_array_len, write_bulk};

    fn args(list: &[&[u8]]) -> Vec<Bytes> {
        list.iter().map(|a| Bytes::copy_from_slice(a)).collect()
    }

    fn encode(list: &[&[u8]]) -> Vec<u8> {
        let mut out = BytesMut::new();
        write_array_len(&mut out, list.len());
        for a in list {
            write_bulk(&mut out, a);
        }
        out.to_vec()
    }

    /// Parses every request in `input` given in one piece; stops at the first error.
    fn parse_all(input: &[u8]) -> (Vec<Request>, Option<ProtocolError>, usize) {
        parse_all_with(input, Limits::default())
    }

    fn parse_all_with(
        input: &[u8],
        limits: Limits,
    ) -> (Vec<Request>, Option<ProtocolError>, usize) {
        let mut p = RequestParser::new(limits);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match p.parse(&mut buf) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => return (out, None, buf.len()),
                // Where the error is found depends on how much was fed: not compared.
                Err(e) => return (out, Some(e), usize::MAX),
            }
        }
    }

    /// Feeds `input` in pieces ending at `cuts`, collecting requests as they complete.
    fn parse_chunked(
        input: &[u8],
        cuts: impl IntoIterator<Item = usize>,
    ) -> (Vec<Request>, Option<ProtocolError>, usize) {
        let mut p = RequestParser::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut fed = 0;
        for cut in cuts.into_iter().chain([input.len()]) {
            let cut = cut.clamp(fed, input.len());
            buf.extend_from_slice(&input[fed..cut]);
            fed = cut;
            loop {
                match p.parse(&mut buf) {
                    Ok(Some(r)) => out.push(r),
                    Ok(None) => break,
                    Err(e) => return (out, Some(e), usize::MAX),
                }
            }
        }
        (out, None, buf.len())
    }

    fn inline(line: &[u8]) -> Result<Vec<Bytes>, ProtocolError> {
        let (mut reqs, err, _) = parse_all(line);
        match err {
            Some(e) => Err(e),
            None => Ok(reqs.pop().map(|r| r.args).unwrap_or_default()),
        }
    }

    #[test]
    fn multibulk_request() {
        let input = encode(&[b"SET", b"key", b"va\r\nlue"]);
        let (reqs, err, left) = parse_all(&input);
        assert_eq!(err, None);
        assert_eq!(left, 0);
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].args, args(&[b"SET", b"key", b"va\r\nlue"]));
        assert!(!reqs[0].inline);
    }

    /// Redis 7.0 skips the two bytes after a bulk's data whatever they are, so does redcloak:
    /// in every argument position, whether or not the bytes could start a frame, and however
    /// the input is split.
    #[test]
    fn two_bytes_after_a_bulk_are_skipped_like_redis() {
        let input: &[u8] = b"*2\r\n$3\r\nGETxy$1\r\nk*\n*1\r\n$4\r\nPING\0\0*1\r\n$0\r\n$\r";
        let (reqs, err, left) = parse_all(input);
        assert_eq!(err, None);
        assert_eq!(left, 0);
        let got: Vec<_> = reqs.iter().map(|r| r.args.clone()).collect();
        assert_eq!(
            got,
            vec![args(&[b"GET", b"k"]), args(&[b"PING"]), args(&[b""])]
        );
        for cut in 0..=input.len() {
            assert_eq!(
                parse_chunked(input, [cut]),
                parse_all(input),
                "cut at {cut}"
            );
        }
        // Until both bytes have arrived the request is not complete.
        assert_eq!(parse_all(b"*1\r\n$4\r\nPINGx").0.len(), 0);
    }

    #[test]
    fn arguments_are_slices_of_the_read_buffer() {
        let input = encode(&[b"GET", b"key"]);
        let mut buf = BytesMut::from(&input[..]);
        let base = buf.as_ptr() as usize;
        let req = RequestParser::new(Limits::default())
            .parse(&mut buf)
            .unwrap()
            .unwrap();
        assert_eq!(req.args[1].as_ptr() as usize, base + input.len() - 5);
    }

    #[test]
    fn pipelined_requests_one_by_one() {
        let mut input = encode(&[b"PING"]);
        input.extend_from_slice(b"*0\r\n*-1\r\n\r\n  \t \r\nECHO hi\r\n\n");
        input.extend(encode(&[b"GET", b"k"]));
        input.extend_from_slice(b"PING\n");
        let mut p = RequestParser::new(Limits::default());
        let mut buf = BytesMut::from(&input[..]);
        let r1 = p.parse(&mut buf).unwrap().unwrap();
        assert_eq!(r1.args, args(&[b"PING"]));
        let r2 = p.parse(&mut buf).unwrap().unwrap();
        assert_eq!((r2.args, r2.inline), (args(&[b"ECHO", b"hi"]), true));
        let r3 = p.parse(&mut buf).unwrap().unwrap();
        assert_eq!((r3.args, r3.inline), (args(&[b"GET", b"k"]), false));
        let r4 = p.parse(&mut buf).unwrap().unwrap();
        assert_eq!(r4.args, args(&[b"PING"]));
        assert_eq!(p.parse(&mut buf), Ok(None));
        assert!(buf.is_empty());
    }

    #[test]
    fn empty_requests_are_skipped() {
        for input in [
            &b"*0\r\n"[..],
            b"*-1\r\n",
            b"*-10\r\n",
            b"*-9223372036854775808\r\n",
            b"\r\n",
            b"\n",
            b"   \r\n",
            b"\t\x0b\x0c\n",
        ] {
            let (reqs, err, left) = parse_all(input);
            assert_eq!((reqs.len(), err, left), (0, None, 0), "{input:?}");
        }
    }

    #[test]
    fn inline_splitting() {
        let ok: &[(&[u8], &[&[u8]])] = &[
            (b"PING\r\n", &[b"PING"]),
            (b"PING\n", &[b"PING"]),
            (b"  set  key\tvalue  \r\n", &[b"set", b"key", b"value"]),
            (b"set \"a b\" c\r\n", &[b"set", b"a b", b"c"]),
            (b"set \"\" ''\r\n", &[b"set", b"", b""]),
            (
                b"echo \"\\n\\r\\t\\b\\a\\\\\\\"\\q\"\r\n",
                &[b"echo", b"\n\r\t\x08\x07\\\"q"],
            ),
            (
                b"echo \"\\x41\\x7a\\xff\\x00\"\n",
                &[b"echo", b"Az\xff\x00"],
            ),
            (b"echo \"\\x4\" \"\\xZZ\"\n", &[b"echo", b"x4", b"xZZ"]),
            (
                b"echo 'it\\'s' 'a\\b\"c'\n",
                &[b"echo", b"it's", b"a\\b\"c"],
            ),
            (b"echo a\"b c\"\n", &[b"echo", b"ab c"]),
            (b"echo \"x\"\x0by\n", &[b"echo", b"x", b"y"]),
            (b"echo a\x0bb\n", &[b"echo", b"a\x0bb"]),
            (b"echo a\rb\r\n", &[b"echo", b"a", b"b"]),
            (b"echo \xff\xfe\n", &[b"echo", b"\xff\xfe"]),
        ];
        for (line, expected) in ok {
            assert_eq!(
                inline(line),
                Ok(args(expected)),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        let unbalanced: &[&[u8]] = &[
            b"set \"abc\r\n",
            b"set 'abc\r\n",
            b"set \"abc\"def\r\n",
            b"set 'abc'def\r\n",
            b"set \"abc\\\"\r\n",
            b"set \"abc\\\r\n",
            b"\"\n",
        ];
        for line in unbalanced {
            assert_eq!(
                inline(line),
                Err(ProtocolError::UnbalancedQuotes),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        assert_eq!(
            inline(b"GET a\0b\r\n"),
            Err(ProtocolError::Malformed("null byte in inline request"))
        );
    }

    #[test]
    fn inline_arguments_without_quotes_are_slices() {
        let mut buf = BytesMut::from(&b"GET key \"q\"\r\n"[..]);
        let base = buf.as_ptr() as usize;
        let req = RequestParser::new(Limits::default())
            .parse(&mut buf)
            .unwrap()
            .unwrap();
        assert_eq!(req.args[1].as_ptr() as usize, base + 4);
        assert_eq!(req.args[2], &b"q"[..]);
    }

    #[test]
    fn multibulk_errors() {
        let cases: &[(&[u8], ProtocolError)] = &[
            (b"*abc\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*01\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*1\n", ProtocolError::InvalidMultibulkLength),
            (
                b"*2000000000\r\n",
                ProtocolError::ArrayTooLong {
                    declared: 2_000_000_000,
                    limit: 1024 * 1024,
                },
            ),
            (b"*1\r\n$x\r\n", ProtocolError::InvalidBulkLength),
            (b"*1\r\n$-1\r\n", ProtocolError::InvalidBulkLength),
            (b"*1\r\n$\r\n", ProtocolError::InvalidBulkLength),
            (
                b"*1\r\n$9999999999\r\n",
                ProtocolError::BulkTooLarge {
                    declared: 9_999_999_999,
                    limit: 512 * 1024 * 1024,
                },
            ),
            (b"*1\r\n:1\r\n", ProtocolError::ExpectedBulk(':')),
            (b"*1\r\n\x01", ProtocolError::ExpectedBulk('?')),
        ];
        for (input, expected) in cases {
            let (reqs, err, _) = parse_all(input);
            assert!(reqs.is_empty());
            assert_eq!(
                err.as_ref(),
                Some(expected),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        // The error messages are Redis's.
        assert_eq!(
            ProtocolError::ExpectedBulk(':').to_string(),
            "Protocol error: expected '$', got ':'"
        );
        assert_eq!(
            ProtocolError::InvalidMultibulkLength.to_string(),
            "Protocol error: invalid multibulk length"
        );
    }

    #[test]
    fn bulk_too_large_is_refused_before_any_data() {
        let mut p = RequestParser::new(Limits::default());
        let mut buf = BytesMut::from(&b"*1\r\n$9999999999\r\n"[..]);
        assert!(matches!(
            p.parse(&mut buf),
            Err(ProtocolError::BulkTooLarge { .. })
        ));
        let small = Limits {
            max_bulk_len: 4,
            ..Limits::default()
        };
        let (_, err, _) = parse_all_with(b"*1\r\n$5\r\n", small);
        assert!(matches!(
            err,
            Some(ProtocolError::BulkTooLarge {
                declared: 5,
                limit: 4
            })
        ));
        let (reqs, err, _) = parse_all_with(b"*1\r\n$4\r\nabcd\r\n", small);
        assert_eq!((reqs.len(), err), (1, None));
    }

    #[test]
    fn nested_request_is_refused() {
        let bomb = b"*1\r\n".repeat(100_000);
        let mut p = RequestParser::new(Limits::default());
        let mut buf = BytesMut::from(&bomb[..]);
        assert_eq!(p.parse(&mut buf), Err(ProtocolError::ExpectedBulk('*')));
        assert!(p.examined() < 100);
    }

    #[test]
    fn endless_headers_and_lines_are_refused() {
        let mut header = b"*".to_vec();
        header.extend(std::iter::repeat_n(b'1', 100));
        assert_eq!(
            parse_all(&header).1,
            Some(ProtocolError::Malformed("too big mbulk count string"))
        );
        let mut bulk_header = b"*1\r\n$".to_vec();
        bulk_header.extend(std::iter::repeat_n(b'1', 100));
        assert_eq!(
            parse_all(&bulk_header).1,
            Some(ProtocolError::Malformed("too big bulk count string"))
        );

        // 1 MiB without a newline: refused as soon as the buffer passes 64 KiB.
        let blob = vec![b'a'; 1 << 20];
        let mut p = RequestParser::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut fed = 0;
        let err = loop {
            let next = (fed + 4096).min(blob.len());
            buf.extend_from_slice(&blob[fed..next]);
            fed = next;
            match p.parse(&mut buf) {
                Ok(None) => assert!(fed < blob.len()),
                Ok(Some(_)) => panic!("parsed a request out of garbage"),
                Err(e) => break e,
            }
        };
        assert_eq!(err, ProtocolError::TooBigInline);
        assert!(fed <= 64 * 1024 + 4096, "only decided after {fed} bytes");
        assert!(
            p.examined() <= fed as u64,
            "rescanned: {} for {fed}",
            p.examined()
        );
        assert_eq!(parse_all(&blob).1, Some(ProtocolError::TooBigInline));

        // The limit is on the line, whatever the buffering: max_inline_len bytes fit.
        let small = Limits {
            max_inline_len: 8,
            ..Limits::default()
        };
        assert_eq!(parse_all_with(b"PING 123\n", small).0.len(), 1);
        assert_eq!(parse_all_with(b"PING 12\r\n", small).0.len(), 1);
        assert_eq!(
            parse_all_with(b"PING 123\r\n", small).1,
            Some(ProtocolError::TooBigInline)
        );
        assert_eq!(
            parse_all_with(b"PING 1234", small).1,
            Some(ProtocolError::TooBigInline)
        );
        assert_eq!(parse_all_with(b"PING 123", small).1, None);
    }

    #[test]
    fn resumes_at_every_split_point() {
        let mut pipeline = encode(&[b"SET", b"key", b"value\r\n"]);
        pipeline.extend_from_slice(b"*0\r\nPING\r\n\r\necho \"a b\" 'c'\n");
        pipeline.extend(encode(&[b"", b"x"]));
        let samples: Vec<Vec<u8>> = vec![
            pipeline,
            encode(&[b"GET", b"k"]),
            b"*1\r\n$3\r\nfooXY".to_vec(),
            b"*2\r\n$1\r\na\r\n:".to_vec(),
            b"echo \"unterminated\r\n".to_vec(),
        ];
        for input in &samples {
            let whole = parse_all(input);
            for cut in 0..=input.len() {
                assert_eq!(
                    parse_chunked(input, [cut]),
                    whole,
                    "cut at {cut} of {:?}",
                    String::from_utf8_lossy(input)
                );
            }
            assert_eq!(parse_chunked(input, 0..input.len()), whole, "byte by byte");
        }
    }

    #[test]
    fn large_mset_in_16k_reads_is_scanned_once() {
        // MSET with 2,600 pairs of 1000-byte values: about 2.6 MB.
        let value = vec![b'v'; 1000];
        let mut list: Vec<Vec<u8>> = vec![b"MSET".to_vec()];
        for i in 0..2_600 {
            list.push(format!("key:{i:06}").into_bytes());
            list.push(value.clone());
        }
        let refs: Vec<&[u8]> = list.iter().map(|v| &v[..]).collect();
        let input = encode(&refs);
        assert!(input.len() > 2_600_000);

        let started = std::time::Instant::now();
        let mut p = RequestParser::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut reads = 0;
        let mut request = None;
        for chunk in input.chunks(16 * 1024) {
            buf.extend_from_slice(chunk);
            reads += 1;
            if let Some(r) = p.parse(&mut buf).unwrap() {
                request = Some(r);
            }
        }
        let request = request.expect("the MSET completes with the last read");
        assert_eq!(request.args.len(), list.len());
        assert_eq!(request.args[5200], &value[..]);
        // Only headers and CRLFs are examined, once: about 12 bytes per argument, plus at most
        // one header re-read per read. A parser restarting from byte 0 on each of the 160
        // reads would examine about 80 times more.
        let bound = 12 * list.len() as u64 + reads * (MAX_HEADER_LEN as u64 + 2);
        assert!(p.examined() <= bound, "examined {} > {bound}", p.examined());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn debug_does_not_print_arguments() {
        let req = Request {
            args: args(&[b"AUTH", b"hunter2"]),
            inline: false,
        };
        let shown = format!("{req:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("AUTH"),
            "{shown}"
        );
        assert!(shown.contains("7 bytes"), "{shown}");
    }

    #[test]
    fn garbage_never_panics() {
        let alphabet = b"*$:+-\"'\\x0123456789 \t\r\n\0abcAF";
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as usize
        };
        for _ in 0..20_000 {
            let len = next() % 48;
            let input: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if r % 7 == 0 {
                        (r >> 8) as u8
                    } else {
                        alphabet[(r >> 8) % alphabet.len()]
                    }
                })
                .collect();
            let whole = parse_all(&input);
            assert_eq!(parse_chunked(&input, (0..input.len()).step_by(3)), whole);
        }
    }
}

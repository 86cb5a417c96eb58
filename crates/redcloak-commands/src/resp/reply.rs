//! Finding where a reply ends, without building it.
//!
//! Most replies pass through the proxy untouched; for them the proxy only needs to know how
//! many bytes to forward. [`ReplyScanner`] walks RESP2 and RESP3 replies with an explicit stack
//! of remaining element counts (no recursion, so a nesting bomb cannot overflow the stack),
//! validates every line it crosses, and keeps its place between reads.

use super::{
    find_crlf, parse_i64, printable, Limits, LineEnd, LineError, ProtocolError, MAX_HEADER_LEN,
};

/// Finds the length of the first complete reply in a buffer, resumably.
///
/// # Security
/// Upstream replies are bounded by the same [`Limits`] as requests: a declared bulk length is
/// checked before its data is awaited, an aggregate's count before it is awaited, and nesting
/// deeper than [`Limits::max_depth`] is refused. Memory use is one `usize` per open aggregate.
#[derive(Debug, Clone)]
pub struct ReplyScanner {
    limits: Limits,
    /// Start of the next element not yet consumed.
    pos: usize,
    /// Elements still expected by each open aggregate, innermost last. Never holds a zero.
    stack: Vec<usize>,
    /// Where to resume the CRLF search of the element at `pos` (0: from its start).
    line_from: usize,
    /// Bytes examined so far (for tests of linear-time resumption).
    examined: u64,
}

impl ReplyScanner {
    /// A scanner enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        ReplyScanner {
            limits,
            pos: 0,
            stack: Vec::new(),
            line_from: 0,
            examined: 0,
        }
    }

    /// Length in bytes of the first complete reply at the start of `buf`.
    ///
    /// `Ok(None)` means the reply is incomplete: the scanner keeps its place, and the next call
    /// must get the same buffer with more bytes appended. After `Ok(Some(n))` the caller removes
    /// `n` bytes and the scanner starts afresh on the next reply. A RESP3 attribute (`|`) and
    /// the reply it annotates count as one unit. On `Err` the scanner is reset too; the
    /// connection should be closed, as the stream can no longer be framed.
    ///
    /// Validates what it crosses (numbers, booleans, doubles, CRLFs), so a buffer accepted
    /// here is accepted by [`Frame::parse`](super::Frame::parse) with the same length.
    /// Allocates nothing per element (the stack keeps its capacity across replies).
    pub fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        if self.pos > buf.len() {
            // Not the buffer we saw last time (caller bug): start over rather than misframe.
            self.reset();
        }
        match self.run(buf) {
            Ok(Some(n)) => {
                self.reset();
                Ok(Some(n))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.reset();
                Err(e)
            }
        }
    }

    fn reset(&mut self) {
        self.pos = 0;
        self.stack.clear();
        self.line_from = 0;
    }

    /// Finds the CRLF of the element at `self.pos`, whose content starts at `start`.
    /// `Ok(None)`: incomplete (the resume point is saved).
    fn line(
        &mut self,
        buf: &[u8],
        start: usize,
        max: usize,
        too_long: ProtocolError,
    ) -> Result<Option<usize>, ProtocolError> {
        match find_crlf(buf, start, self.line_from, max, &mut self.examined) {
            Ok(LineEnd::Found(cr)) => Ok(Some(cr)),
            Ok(LineEnd::Partial(at)) => {
                self.line_from = at;
                Ok(None)
            }
            Err(LineError::TooLong) => Err(too_long),
            Err(LineError::Bare) => Err(ProtocolError::Malformed("bare CR or LF in a reply line")),
        }
    }

    fn run(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        loop {
            let Some(&kind) = buf.get(self.pos) else {
                return Ok(None);
            };
            let start = self.pos + 1;
            let header_too_long = ProtocolError::Malformed("too big reply header");
            // Index just past the element that completes, or `continue` after opening an
            // aggregate.
            let end = match kind {
                b'+' | b'-' | b'(' | b',' => {
                    let too_long = ProtocolError::Malformed("too long reply line");
                    let max = self.limits.max_bulk_len;
                    let Some(cr) = self.line(buf, start, max, too_long)? else {
                        return Ok(None);
                    };
                    let content = buf.get(start..cr).unwrap_or_default();
                    if kind == b'(' || kind == b',' {
                        self.examined += content.len() as u64;
                    }
                    match kind {
                        b'(' if !is_big_number(content) => {
                            return Err(ProtocolError::Malformed("invalid big number reply"))
                        }
                        b',' if !is_double(content) => {
                            return Err(ProtocolError::Malformed("invalid double reply"))
                        }
                        _ => {}
                    }
                    cr + 2
                }
                b':' | b'#' | b'_' => {
                    let Some(cr) = self.line(buf, start, MAX_HEADER_LEN, header_too_long)? else {
                        return Ok(None);
                    };
                    let content = buf.get(start..cr).unwrap_or_default();
                    match kind {
                        b':' if parse_i64(content).is_none() => {
                            return Err(ProtocolError::Malformed("invalid integer reply"))
                        }
                        b'#' if content != b"t" && content != b"f" => {
                            return Err(ProtocolError::Malformed("invalid boolean reply"))
                        }
                        b'_' if !content.is_empty() => {
                            return Err(ProtocolError::Malformed("invalid null reply"))
                        }
                        _ => {}
                    }
                    cr + 2
                }
                b'$' | b'!' | b'=' => {
                    let Some(cr) = self.line(buf, start, MAX_HEADER_LEN, header_too_long)? else {
                        return Ok(None);
                    };
                    let content = buf.get(start..cr).unwrap_or_default();
                    match blob_len(kind, content, &self.limits)? {
                        // `$-1`: RESP2 null bulk string.
                        None => cr + 2,
                        Some(len) => match self.blob_end(buf, cr, kind, len)? {
                            Some(end) => end,
                            None => return Ok(None),
                        },
                    }
                }
                b'*' | b'%' | b'~' | b'>' | b'|' => {
                    let Some(cr) = self.line(buf, start, MAX_HEADER_LEN, header_too_long)? else {
                        return Ok(None);
                    };
                    let content = buf.get(start..cr).unwrap_or_default();
                    match aggregate_len(kind, content, &self.limits)? {
                        // `*-1`: RESP2 null array, a leaf.
                        None => cr + 2,
                        Some(count) => {
                            if self.stack.len() >= self.limits.depth() {
                                return Err(ProtocolError::TooDeep(self.limits.depth()));
                            }
                            if count == 0 {
                                cr + 2
                            } else {
                                self.stack.push(count);
                                self.pos = cr + 2;
                                self.line_from = 0;
                                continue;
                            }
                        }
                    }
                }
                b';' | b'.' => {
                    return Err(ProtocolError::Malformed(
                        "streamed replies are not supported",
                    ))
                }
                other => return Err(ProtocolError::UnknownType(printable(other))),
            };
            self.complete(end);
            if self.stack.is_empty() {
                return Ok(Some(end));
            }
        }
    }

    /// The end of a `$`/`!`/`=` element whose header's CR is at `cr`, once its data is there.
    fn blob_end(
        &mut self,
        buf: &[u8],
        cr: usize,
        kind: u8,
        len: usize,
    ) -> Result<Option<usize>, ProtocolError> {
        let data = cr + 2;
        let too_large = || ProtocolError::BulkTooLarge {
            declared: len as u64,
            limit: self.limits.max_bulk_len,
        };
        let data_end = data.checked_add(len).ok_or_else(too_large)?;
        let end = data_end.checked_add(2).ok_or_else(too_large)?;
        if buf.len() < end {
            // Resume right at the header's CR: the header is not searched again.
            self.line_from = cr;
            return Ok(None);
        }
        self.examined += 2;
        if buf.get(data_end..end) != Some(b"\r\n") {
            return Err(ProtocolError::Malformed("expected CRLF after bulk data"));
        }
        if kind == b'=' && buf.get(data + 3) != Some(&b':') {
            return Err(ProtocolError::Malformed("invalid verbatim string format"));
        }
        Ok(Some(end))
    }

    /// Records that the element ending at `end` is complete, closing every aggregate it
    /// completes.
    fn complete(&mut self, end: usize) {
        self.pos = end;
        self.line_from = 0;
        while let Some(remaining) = self.stack.last_mut() {
            *remaining = remaining.saturating_sub(1);
            if *remaining > 0 {
                break;
            }
            self.stack.pop();
        }
    }

    /// Bytes examined since the scanner was created (tests check this grows linearly).
    #[cfg(test)]
    pub(crate) fn examined(&self) -> u64 {
        self.examined
    }
}

/// The data length of a `$`, `!` or `=` header, checked against the limits.
/// `Ok(None)` for the RESP2 null bulk string `$-1`.
pub(crate) fn blob_len(
    kind: u8,
    content: &[u8],
    limits: &Limits,
) -> Result<Option<usize>, ProtocolError> {
    if content == b"?" {
        return Err(ProtocolError::Malformed(
            "streamed replies are not supported",
        ));
    }
    let n = parse_i64(content).ok_or(ProtocolError::InvalidBulkLength)?;
    if n == -1 && kind == b'$' {
        return Ok(None);
    }
    let declared = u64::try_from(n).map_err(|_| ProtocolError::InvalidBulkLength)?;
    let len = usize::try_from(declared)
        .ok()
        .filter(|&len| len <= limits.max_bulk_len)
        .ok_or(ProtocolError::BulkTooLarge {
            declared,
            limit: limits.max_bulk_len,
        })?;
    if kind == b'=' && len < 4 {
        return Err(ProtocolError::Malformed("invalid verbatim string format"));
    }
    Ok(Some(len))
}

/// The number of elements that follow an aggregate header (maps: twice the pairs; attributes:
/// twice the pairs plus the annotated reply), checked against the limits.
/// `Ok(None)` for the RESP2 null array `*-1`.
pub(crate) fn aggregate_len(
    kind: u8,
    content: &[u8],
    limits: &Limits,
) -> Result<Option<usize>, ProtocolError> {
    if content == b"?" {
        return Err(ProtocolError::Malformed(
            "streamed replies are not supported",
        ));
    }
    let n = parse_i64(content).ok_or(ProtocolError::InvalidMultibulkLength)?;
    if n == -1 && kind == b'*' {
        return Ok(None);
    }
    let declared = u64::try_from(n).map_err(|_| ProtocolError::InvalidMultibulkLength)?;
    let too_long = ProtocolError::ArrayTooLong {
        declared,
        limit: limits.max_array_len,
    };
    let n = usize::try_from(declared)
        .ok()
        .filter(|&n| n <= limits.max_array_len)
        .ok_or_else(|| too_long.clone())?;
    let count = match kind {
        b'%' => n.checked_mul(2),
        b'|' => n.checked_mul(2).and_then(|c| c.checked_add(1)),
        _ => Some(n),
    };
    count.map(Some).ok_or(too_long)
}

/// `[+|-]digits`, as RESP3 big numbers are.
pub(crate) fn is_big_number(s: &[u8]) -> bool {
    let digits = match s {
        [b'+' | b'-', rest @ ..] => rest,
        _ => s,
    };
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// Anything Rust reads as an `f64`: RESP3 doubles (`1.5`, `-2e10`, `inf`, `-inf`, `nan`).
pub(crate) fn is_double(s: &[u8]) -> bool {
    std::str::from_utf8(s).is_ok_and(|s| s.parse::<f64>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_whole(input: &[u8]) -> Result<Option<usize>, ProtocolError> {
        ReplyScanner::new(Limits::default()).scan(input)
    }

    /// Feeds `input` split at `cut` (two calls), then byte by byte, and checks both agree with
    /// the one-piece result.
    fn assert_resumable(input: &[u8]) {
        let whole = scan_whole(input);
        for cut in 0..=input.len() {
            let mut s = ReplyScanner::new(Limits::default());
            let first = s.scan(&input[..cut]);
            let result = match first {
                Ok(None) => s.scan(input),
                done => done,
            };
            assert_eq!(
                result,
                whole,
                "cut at {cut} of {:?}",
                String::from_utf8_lossy(input)
            );
        }
        let mut s = ReplyScanner::new(Limits::default());
        let mut result = Ok(None);
        for end in 0..=input.len() {
            result = s.scan(&input[..end]);
            if !matches!(result, Ok(None)) {
                break;
            }
        }
        assert_eq!(
            result,
            whole,
            "byte by byte: {:?}",
            String::from_utf8_lossy(input)
        );
    }

    const REPLIES: &[&[u8]] = &[
        b"+OK\r\n",
        b"-ERR unknown command\r\n",
        b":0\r\n",
        b":-9223372036854775808\r\n",
        b"$5\r\nhello\r\n",
        b"$0\r\n\r\n",
        b"$-1\r\n",
        b"*-1\r\n",
        b"*0\r\n",
        b"*2\r\n$3\r\nfoo\r\n*2\r\n:1\r\n$-1\r\n",
        b"_\r\n",
        b"#t\r\n",
        b"#f\r\n",
        b",3.14\r\n",
        b",-inf\r\n",
        b",nan\r\n",
        b"(3492890328409238509324850943850943825024385\r\n",
        b"!21\r\nSYNTAX invalid syntax\r\n",
        b"=15\r\ntxt:Some string\r\n",
        b"%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n",
        b"~3\r\n+a\r\n+b\r\n#t\r\n",
        b">3\r\n+message\r\n+channel\r\n$5\r\nhello\r\n",
        b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n",
        b"*3\r\n|1\r\n+ttl\r\n:10\r\n$1\r\nx\r\n%0\r\n~0\r\n",
        b"|0\r\n+OK\r\n",
    ];

    #[test]
    fn every_type_is_framed_exactly() {
        for reply in REPLIES {
            let mut with_next = reply.to_vec();
            with_next.extend_from_slice(b"+NEXT\r\n");
            assert_eq!(
                scan_whole(reply),
                Ok(Some(reply.len())),
                "{:?}",
                String::from_utf8_lossy(reply)
            );
            assert_eq!(scan_whole(&with_next), Ok(Some(reply.len())));
            // Every strict prefix is incomplete, never an error.
            for end in 0..reply.len() {
                assert_eq!(
                    scan_whole(&reply[..end]),
                    Ok(None),
                    "prefix {end} of {:?}",
                    String::from_utf8_lossy(reply)
                );
            }
        }
    }

    #[test]
    fn resumes_at_every_split_point() {
        for reply in REPLIES {
            assert_resumable(reply);
        }
        assert_resumable(b"*2\r\n$3\r\nfoo\r\n:x\r\n"); // an error, found the same way
        assert_resumable(b"$3\r\nfooXY");
    }

    #[test]
    fn scanner_is_reusable_after_each_reply() {
        let mut s = ReplyScanner::new(Limits::default());
        let mut buf = b"*2\r\n:1\r\n:2\r\n$3\r\nabc\r\n+OK\r\n".to_vec();
        let mut lens = Vec::new();
        while let Some(n) = s.scan(&buf).unwrap() {
            lens.push(n);
            buf.drain(..n);
        }
        assert_eq!(lens, [12, 9, 5]);
        assert!(buf.is_empty());
    }

    #[test]
    fn nesting_bomb_is_refused_quickly() {
        let bomb = b"*1\r\n".repeat(100_000);
        let mut s = ReplyScanner::new(Limits::default());
        assert_eq!(s.scan(&bomb), Err(ProtocolError::TooDeep(64)));
        // It stopped at level 65, having looked at a few hundred bytes, not 400 KB.
        assert!(s.examined() < 1_000, "examined {}", s.examined());
        // Exactly max_depth levels are fine.
        let mut ok = b"*1\r\n".repeat(64);
        ok.extend_from_slice(b":1\r\n");
        assert_eq!(scan_whole(&ok), Ok(Some(ok.len())));
        let mut too_deep = b"*1\r\n".repeat(65);
        too_deep.extend_from_slice(b":1\r\n");
        assert_eq!(scan_whole(&too_deep), Err(ProtocolError::TooDeep(64)));
        // Attributes count as a level; an empty aggregate counts too.
        let mut attr = b"|1\r\n+a\r\n+b\r\n".repeat(64);
        attr.extend_from_slice(b"*0\r\n");
        assert_eq!(scan_whole(&attr), Err(ProtocolError::TooDeep(64)));
        // A configured depth above the ceiling is capped.
        let limits = Limits {
            max_depth: usize::MAX,
            ..Limits::default()
        };
        assert_eq!(
            ReplyScanner::new(limits).scan(&bomb),
            Err(ProtocolError::TooDeep(crate::resp::MAX_DEPTH_CEILING))
        );
    }

    #[test]
    fn limits_are_checked_before_data_arrives() {
        assert_eq!(
            scan_whole(b"$9999999999\r\n"),
            Err(ProtocolError::BulkTooLarge {
                declared: 9_999_999_999,
                limit: 512 * 1024 * 1024
            })
        );
        assert!(matches!(
            scan_whole(b"!9999999999\r\n"),
            Err(ProtocolError::BulkTooLarge { .. })
        ));
        assert!(matches!(
            scan_whole(b"=9999999999\r\n"),
            Err(ProtocolError::BulkTooLarge { .. })
        ));
        assert_eq!(
            scan_whole(b"*2000000000\r\n"),
            Err(ProtocolError::ArrayTooLong {
                declared: 2_000_000_000,
                limit: 1024 * 1024
            })
        );
        for kind in [b'%', b'~', b'>', b'|'] {
            let mut input = vec![kind];
            input.extend_from_slice(b"2000000000\r\n");
            assert!(matches!(
                scan_whole(&input),
                Err(ProtocolError::ArrayTooLong { .. })
            ));
        }
        // Maps count pairs against the limit.
        let small = Limits {
            max_array_len: 2,
            ..Limits::default()
        };
        let mut s = ReplyScanner::new(small);
        assert_eq!(s.scan(b"%2\r\n:1\r\n:2\r\n:3\r\n:4\r\n"), Ok(Some(20)));
        assert!(matches!(
            s.scan(b"%3\r\n"),
            Err(ProtocolError::ArrayTooLong { .. })
        ));
        // usize::MAX limits cannot overflow the element count.
        let huge = Limits {
            max_array_len: usize::MAX,
            max_bulk_len: usize::MAX,
            ..Limits::default()
        };
        let mut s = ReplyScanner::new(huge);
        assert_eq!(s.scan(b"|9223372036854775807\r\n"), Ok(None));
        let mut s = ReplyScanner::new(huge);
        assert_eq!(s.scan(b"$9223372036854775807\r\n"), Ok(None));
    }

    #[test]
    fn endless_lines_are_refused() {
        let mut header = b"*".to_vec();
        header.extend(std::iter::repeat_n(b'1', 100));
        assert_eq!(
            scan_whole(&header),
            Err(ProtocolError::Malformed("too big reply header"))
        );
        let small = Limits {
            max_bulk_len: 10,
            ..Limits::default()
        };
        assert_eq!(
            ReplyScanner::new(small).scan(b"+0123456789A"),
            Err(ProtocolError::Malformed("too long reply line"))
        );
        assert_eq!(
            ReplyScanner::new(small).scan(b"+0123456789\r\n"),
            Ok(Some(13))
        );
    }

    #[test]
    fn long_simple_line_is_searched_once() {
        let mut line = b"+".to_vec();
        line.extend(std::iter::repeat_n(b'a', 1 << 20));
        line.extend_from_slice(b"\r\n");
        let mut s = ReplyScanner::new(Limits::default());
        let mut result = Ok(None);
        for end in (0..=line.len()).step_by(1000).chain([line.len()]) {
            result = s.scan(&line[..end]);
            if result != Ok(None) {
                break;
            }
        }
        assert_eq!(result, Ok(Some(line.len())));
        // Searched once, then the content validated once: about two passes, not 1000.
        assert!(
            s.examined() < 3 * line.len() as u64,
            "examined {}",
            s.examined()
        );
    }

    #[test]
    fn invalid_replies_are_errors() {
        let cases: &[(&[u8], ProtocolError)] = &[
            (b"?\r\n", ProtocolError::UnknownType('?')),
            (b"\x00", ProtocolError::UnknownType('?')),
            (b"\r\n", ProtocolError::UnknownType('?')),
            (b"PONG\r\n", ProtocolError::UnknownType('P')),
            (b"$abc\r\n", ProtocolError::InvalidBulkLength),
            (b"$-2\r\n", ProtocolError::InvalidBulkLength),
            (b"!-1\r\n", ProtocolError::InvalidBulkLength),
            (b"$05\r\nhello\r\n", ProtocolError::InvalidBulkLength),
            (b"*abc\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*-2\r\n", ProtocolError::InvalidMultibulkLength),
            (b"%-1\r\n", ProtocolError::InvalidMultibulkLength),
            (
                b"$?\r\n",
                ProtocolError::Malformed("streamed replies are not supported"),
            ),
            (
                b"*?\r\n",
                ProtocolError::Malformed("streamed replies are not supported"),
            ),
            (
                b";4\r\n",
                ProtocolError::Malformed("streamed replies are not supported"),
            ),
            (
                b"$3\r\nfooXY",
                ProtocolError::Malformed("expected CRLF after bulk data"),
            ),
            (
                b":1.5\r\n",
                ProtocolError::Malformed("invalid integer reply"),
            ),
            (b"#x\r\n", ProtocolError::Malformed("invalid boolean reply")),
            (b"_x\r\n", ProtocolError::Malformed("invalid null reply")),
            (
                b",abc\r\n",
                ProtocolError::Malformed("invalid double reply"),
            ),
            (
                b"(12a\r\n",
                ProtocolError::Malformed("invalid big number reply"),
            ),
            (
                b"=3\r\ntxt\r\n",
                ProtocolError::Malformed("invalid verbatim string format"),
            ),
            (
                b"=5\r\ntxt-x\r\n",
                ProtocolError::Malformed("invalid verbatim string format"),
            ),
            (
                b"+a\nb\r\n",
                ProtocolError::Malformed("bare CR or LF in a reply line"),
            ),
            (
                b"+a\rb\r\n",
                ProtocolError::Malformed("bare CR or LF in a reply line"),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                &scan_whole(input).unwrap_err(),
                expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn garbage_never_panics() {
        // A small deterministic generator (xorshift) over bytes biased towards RESP syntax.
        let alphabet = b"+-:$*_,#!=(%~>|;.?0123456789\r\nabct";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut input = Vec::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 40) as usize;
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let r = state as usize;
                input.push(if r % 5 == 0 {
                    (r >> 8) as u8
                } else {
                    alphabet[(r >> 8) % alphabet.len()]
                });
            }
            let whole = scan_whole(&input);
            if let Ok(Some(n)) = whole {
                assert!(n <= input.len());
            }
        }
    }
}

//! Reading arguments exactly the way Redis 7.0 reads them.
//!
//! Redis compares option words with C string functions: `strcasecmp(arg, "nomkstream")` stops
//! at the first NUL byte, so `NOMKSTREAM\0junk` *is* `NOMKSTREAM` to Redis, and `maxLEN` is
//! `MAXLEN`. Numbers go through `string2ll` (no sign but `-`, no spaces, no leading zeros,
//! length-aware) or `strtoull` (C rules). Whenever redcloak decides something from an argument
//! — which arguments are values to encrypt, where the keys are, whether a HELLO carries
//! credentials — it must read the argument the same way, or Redis and redcloak disagree about
//! what the command means.
//!
//! # Security
//! A disagreement is how a plaintext value reaches Redis: redcloak thinks an argument is an
//! option word (and leaves it alone) while Redis thinks it is a value (or the other way round).
//! Every option word in this crate is matched with [`is`]; every number with [`int`] or
//! [`uint`]. When the options of a command cannot be understood exactly, the caller refuses
//! the command instead of guessing.

/// The argument as C sees it: the bytes before the first NUL.
pub fn c_str(arg: &[u8]) -> &[u8] {
    match arg.iter().position(|&b| b == 0) {
        Some(end) => &arg[..end],
        None => arg,
    }
}

/// `!strcasecmp(arg, word)`: `arg` (up to its first NUL) equals `word`, ASCII
/// case-insensitively. `word` is a literal without NUL bytes.
pub fn is(arg: &[u8], word: &str) -> bool {
    c_str(arg).eq_ignore_ascii_case(word.as_bytes())
}

/// `!strcmp(arg, word)`: `arg` (up to its first NUL) equals `word` exactly (`~`, `=`, `*`).
pub fn is_exact(arg: &[u8], word: &str) -> bool {
    c_str(arg) == word.as_bytes()
}

/// Redis's `string2ll`: the whole argument (NULs included) is a canonical decimal `i64` —
/// an optional `-`, no `+`, no spaces, no leading zeros (`0` itself is fine, `-0` is not).
pub fn int(arg: &[u8]) -> Option<i64> {
    if arg.is_empty() || arg.len() > 20 {
        return None;
    }
    if arg == b"0" {
        return Some(0);
    }
    let (negative, digits) = match arg.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, arg),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut value: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        // i64::MIN has no positive counterpart.
        if value > i64::MAX as u64 + 1 {
            return None;
        }
        Some((value as i128).wrapping_neg() as i64)
    } else {
        i64::try_from(value).ok()
    }
}

/// Redis's `string2ull` (stream IDs): `string2ll` for non-negative values, else C's
/// `strtoull` over the C string — leading whitespace and one sign allowed, nothing after the
/// digits, no overflow. A leading `-` is accepted by `strtoull` (it negates modulo 2^64), as
/// in Redis.
pub fn uint(arg: &[u8]) -> Option<u64> {
    let s = c_str(arg);
    if let Some(v) = int(s) {
        return u64::try_from(v).ok();
    }
    let mut rest = s;
    while let Some((&c, tail)) = rest.split_first() {
        if matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
            rest = tail;
        } else {
            break;
        }
    }
    let negative = match rest.first() {
        Some(b'+') => {
            rest = &rest[1..];
            false
        }
        Some(b'-') => {
            rest = &rest[1..];
            true
        }
        _ => false,
    };
    if rest.is_empty() || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: u64 = 0;
    for &d in rest {
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

/// A stream ID as Redis's strict parser (`streamParseStrictIDOrReply`) accepts it in XADD's
/// ID position, MINID and similar: `<ms>`, `<ms>-<seq>` or (where `seq_star` is allowed)
/// `<ms>-*`; not `-` or `+`. Returns `(ms, seq)` (`seq` is `None` for `<ms>` and `<ms>-*`).
pub fn stream_id(arg: &[u8], seq_star: bool) -> Option<(u64, Option<u64>)> {
    if arg.len() > 127 {
        return None;
    }
    let s = c_str(arg);
    if s == b"-" || s == b"+" {
        return None;
    }
    match s.iter().position(|&b| b == b'-') {
        None => Some((uint(s)?, None)),
        Some(dash) => {
            let ms = uint(&s[..dash])?;
            let seq = &s[dash + 1..];
            if seq_star && seq == b"*" {
                Some((ms, None))
            } else {
                Some((ms, Some(uint(seq)?)))
            }
        }
    }
}

/// Redis's glob matcher (`stringmatchlen` in `util.c`, case-sensitive): `*`, `?`, `[…]` with
/// ranges and `^`, and `\` escapes, byte for byte as Redis 7.0 matches `SCAN … MATCH` — chars
/// are signed in ranges, an unterminated `[` matches what it has, and patterns nested more than
/// 1000 stars deep never match (Redis's guard against abusive patterns).
pub fn stringmatch(pattern: &[u8], string: &[u8]) -> bool {
    let mut skip_longer = false;
    glob(pattern, string, &mut skip_longer, 0)
}

/// `stringmatchlen_impl`: `p` and `s` index into NUL-terminated C strings; reading past the
/// end reads the terminator (0), exactly as the C code does.
fn glob(pattern: &[u8], string: &[u8], skip_longer: &mut bool, nesting: u32) -> bool {
    if nesting > 1000 {
        return false;
    }
    let at = |i: usize| pattern.get(i).copied().unwrap_or(0);
    // C `char` is signed on the platforms Redis is built for: ranges compare signed values.
    let signed = |b: u8| i32::from(b as i8);
    let (mut p, mut plen) = (0usize, pattern.len() as isize);
    let (mut s, mut slen) = (0usize, string.len());
    while plen > 0 && slen > 0 {
        match at(p) {
            b'*' => {
                while plen > 0 && at(p + 1) == b'*' {
                    p += 1;
                    plen -= 1;
                }
                if plen == 1 {
                    return true;
                }
                while slen > 0 {
                    let rest_len = (plen - 1) as usize;
                    let rest = &pattern[p + 1..(p + 1 + rest_len).min(pattern.len())];
                    if glob(rest, &string[s..], skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s += 1;
                    slen -= 1;
                }
                *skip_longer = true;
                return false;
            }
            b'?' => {
                s += 1;
                slen -= 1;
            }
            b'[' => {
                p += 1;
                plen -= 1;
                let not = at(p) == b'^';
                if not {
                    p += 1;
                    plen -= 1;
                }
                let mut matched = false;
                let c = string[s];
                loop {
                    if at(p) == b'\\' && plen >= 2 {
                        p += 1;
                        plen -= 1;
                        if at(p) == c {
                            matched = true;
                        }
                    } else if at(p) == b']' {
                        break;
                    } else if plen == 0 {
                        p -= 1;
                        plen += 1;
                        break;
                    } else if plen >= 3 && at(p + 1) == b'-' {
                        let (mut start, mut end) = (signed(at(p)), signed(at(p + 2)));
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        p += 2;
                        plen -= 2;
                        let c = signed(c);
                        if c >= start && c <= end {
                            matched = true;
                        }
                    } else if at(p) == c {
                        matched = true;
                    }
                    p += 1;
                    plen -= 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s += 1;
                slen -= 1;
            }
            other => {
                let mut want = other;
                if other == b'\\' && plen >= 2 {
                    p += 1;
                    plen -= 1;
                    want = at(p);
                }
                if want != string[s] {
                    return false;
                }
                s += 1;
                slen -= 1;
            }
        }
        p += 1;
        plen -= 1;
        if slen == 0 {
            while at(p) == b'*' {
                p += 1;
                plen -= 1;
            }
            break;
        }
    }
    plen == 0 && slen == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_match_like_strcasecmp() {
        assert!(is(b"NOMKSTREAM", "NOMKSTREAM"));
        assert!(is(b"nomkSTREAM", "NOMKSTREAM"));
        assert!(is(b"NOMKSTREAM\0", "NOMKSTREAM"));
        assert!(is(b"NOMKSTREAM\0junk", "NOMKSTREAM"));
        assert!(!is(b"NOMKSTREAMS", "NOMKSTREAM"));
        assert!(!is(b"\0NOMKSTREAM", "NOMKSTREAM"));
        assert!(!is(b"NOMK", "NOMKSTREAM"));
        assert!(is(b"\0", ""));
        assert!(is_exact(b"~\0x", "~"));
        assert!(!is_exact(b"~~", "~"));
        assert_eq!(c_str(b"ab\0cd"), b"ab");
    }

    #[test]
    fn integers_parse_like_string2ll() {
        for (s, v) in [
            ("0", Some(0)),
            ("1", Some(1)),
            ("-1", Some(-1)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("-9223372036854775809", None),
            ("-0", None),
            ("01", None),
            ("+1", None),
            (" 1", None),
            ("1 ", None),
            ("", None),
            ("-", None),
            ("1\0", None),
            ("1e3", None),
        ] {
            assert_eq!(int(s.as_bytes()), v, "{s:?}");
        }
    }

    #[test]
    fn unsigned_parse_like_string2ull() {
        for (s, v) in [
            ("0", Some(0)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("+5", Some(5)),
            (" 5", Some(5)),
            ("5 ", None),
            ("05", Some(5)),
            ("5\0junk", Some(5)),
            ("-1", None),
            ("-01", Some(u64::MAX)),
            ("x", None),
            ("", None),
        ] {
            assert_eq!(uint(s.as_bytes()), v, "{s:?}");
        }
    }

    #[test]
    fn stream_ids() {
        assert_eq!(stream_id(b"5", false), Some((5, None)));
        assert_eq!(stream_id(b"5-3", false), Some((5, Some(3))));
        assert_eq!(stream_id(b"5-*", true), Some((5, None)));
        assert_eq!(stream_id(b"5-*", false), None);
        assert_eq!(stream_id(b"-", false), None);
        assert_eq!(stream_id(b"+", false), None);
        assert_eq!(stream_id(b"*", false), None);
        assert_eq!(stream_id(b"f", false), None);
        assert_eq!(stream_id(b"1-2\0x", false), Some((1, Some(2))));
    }

    #[test]
    fn glob_matches_like_stringmatchlen() {
        for (pattern, string, expected) in [
            ("*", "", false), // the C loop never runs on an empty string
            ("*", "anything", true),
            ("a*", "abc", true),
            ("a*", "bac", false),
            ("*c", "abc", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("h[ae]llo", "hello", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[b-a]llo", "hallo", true),
            ("h\\*llo", "h*llo", true),
            ("h\\*llo", "hallo", false),
            ("[abc", "a", true),
            ("[", "a", false),
            ("**a", "ba", true),
            ("a*", "a", true),
            ("a**", "a", true),
            ("", "", true),
            ("", "a", false),
            ("a", "", false),
            ("job:*:done", "job:42:done", true),
            ("job:*:done", "job:42:failed", false),
            ("\\", "\\", true),
            ("[\\]]", "]", true),
        ] {
            assert_eq!(
                stringmatch(pattern.as_bytes(), string.as_bytes()),
                expected,
                "{pattern:?} vs {string:?}"
            );
        }
        // Signed chars in ranges: [\x01-\xff] is [-1, 1] in C, so it matches 0x00 but not 'a'.
        assert!(stringmatch(b"[\x01-\xff]", b"\x00"));
        assert!(!stringmatch(b"[\x01-\xff]", b"a"));
    }
}

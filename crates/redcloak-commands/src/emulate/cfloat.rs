//! C floating point as Redis 7.0 uses it: `strtold`/`strtod` parsing, x87 `long double`
//! addition, and `ld2string(.., LD_STR_HUMAN)` (`%.17Lf`, trailing zeros stripped).
//!
//! INCRBYFLOAT and HINCRBYFLOAT compute in the C `long double` of the Redis build: on x86_64
//! the x87 80-bit extended format (64-bit significand, explicit integer bit). An `f64`
//! computation differs in the last digits, so the arithmetic is done with
//! [`rustc_apfloat`]'s `X87DoubleExtended` (a port of LLVM's APFloat: correctly rounded
//! parsing and addition), and the decimal output is produced here, exactly, the way glibc's
//! `printf("%.17Lf")` does it (round half to even on the exact binary value).
//!
//! The textual grammar accepted is glibc's `strtold`/`strtod` in the C locale: optional sign,
//! then `inf`/`infinity`, `nan`/`nan(chars)` (case-insensitive), a hexadecimal float
//! (`0x1.8p3`, exponent optional) or a decimal float (`.5`, `5.`, `1e3`).

use rustc_apfloat::ieee::{Double, X87DoubleExtended as Ld};
use rustc_apfloat::{Float, Round, Status};

/// Longest string Redis parses as a long double (`MAX_LONG_DOUBLE_CHARS` = 5 KiB, minus the
/// NUL terminator).
const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;

/// A C `long double` (x87 extended precision).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LongDouble(Ld);

/// What the `strtod` grammar recognised at the start of a string.
enum Lexed {
    Inf {
        negative: bool,
    },
    NaN,
    Finite {
        negative: bool,
        /// The unsigned number in a form APFloat parses (`ddd.dddE±x` or `0xhhh.hhhp±x`).
        text: String,
        /// Whether any significand digit is non-zero.
        nonzero: bool,
    },
}

/// `isspace` in the C locale.
fn c_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn digits_at(s: &[u8], from: usize, hex: bool) -> usize {
    s[from.min(s.len())..]
        .iter()
        .take_while(|b| {
            if hex {
                b.is_ascii_hexdigit()
            } else {
                b.is_ascii_digit()
            }
        })
        .count()
}

/// An optional `[eEpP][+-]?digits` exponent at `at`: its length in bytes (0 if absent or
/// malformed: then strtod stops before the letter).
fn exponent_at(s: &[u8], at: usize, letter: u8) -> usize {
    if s.get(at).map(u8::to_ascii_lowercase) != Some(letter) {
        return 0;
    }
    let mut i = at + 1;
    if matches!(s.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let n = digits_at(s, i, false);
    if n == 0 {
        0
    } else {
        i + n - at
    }
}

/// Scans the longest prefix of `s` that `strtod` converts (without skipping white space).
/// Returns what it is and how many bytes it used, or `None` if no conversion is possible.
fn lex(s: &[u8]) -> Option<(Lexed, usize)> {
    let mut i = 0;
    let negative = match s.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let rest = &s[i..];
    let lower = |n: usize| -> Vec<u8> { rest.iter().take(n).map(u8::to_ascii_lowercase).collect() };
    if lower(3) == b"inf" {
        let used = if lower(8) == b"infinity" { 8 } else { 3 };
        return Some((Lexed::Inf { negative }, i + used));
    }
    if lower(3) == b"nan" {
        let mut used = 3;
        if rest.get(3) == Some(&b'(') {
            let inner = rest[4..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count();
            if rest.get(4 + inner) == Some(&b')') {
                used = 5 + inner;
            }
        }
        return Some((Lexed::NaN, i + used));
    }
    // Hexadecimal: "0x" then at least one hex digit around an optional point.
    if rest.len() >= 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x' {
        let start = i + 2;
        let int = digits_at(s, start, true);
        let mut end = start + int;
        let mut frac = 0;
        if s.get(end) == Some(&b'.') {
            frac = digits_at(s, end + 1, true);
            if int + frac > 0 {
                end += 1 + frac;
            }
        }
        if int + frac > 0 {
            let exp = exponent_at(s, end, b'p');
            let mantissa = &s[start..end];
            let nonzero = mantissa.iter().any(|&b| b != b'0' && b != b'.');
            let exponent = if exp > 0 {
                String::from_utf8_lossy(&s[end + 1..end + exp]).into_owned()
            } else {
                "0".to_owned()
            };
            let text = format!("0x{}p{}", String::from_utf8_lossy(mantissa), exponent);
            return Some((
                Lexed::Finite {
                    negative,
                    text,
                    nonzero,
                },
                end + exp,
            ));
        }
        // "0x" without digits: strtod converts the "0" alone.
    }
    let int = digits_at(s, i, false);
    let mut end = i + int;
    let mut frac = 0;
    if s.get(end) == Some(&b'.') {
        frac = digits_at(s, end + 1, false);
        if int + frac > 0 {
            end += 1 + frac;
        }
    }
    if int + frac == 0 {
        return None;
    }
    let exp = exponent_at(s, end, b'e');
    let text = String::from_utf8_lossy(&s[i..end + exp]).into_owned();
    let nonzero = s[i..end].iter().any(|&b| b.is_ascii_digit() && b != b'0');
    Some((
        Lexed::Finite {
            negative,
            text,
            nonzero,
        },
        end + exp,
    ))
}

impl LongDouble {
    /// Zero.
    pub(crate) const ZERO: LongDouble = LongDouble(Ld::ZERO);

    /// Redis's `string2ld`: the whole string must be one number for `strtold` (no leading
    /// white space, nothing after it, no NUL inside), not NaN, and not out of range (a
    /// result rounded to ±infinity or to zero from a non-zero input). A literal `inf` is
    /// accepted.
    pub(crate) fn parse(s: &[u8]) -> Option<LongDouble> {
        if s.is_empty() || s.len() >= MAX_LONG_DOUBLE_CHARS || c_isspace(s[0]) {
            return None;
        }
        let (lexed, used) = lex(s)?;
        if used != s.len() {
            return None;
        }
        match lexed {
            Lexed::NaN => None,
            Lexed::Inf { negative } => Some(LongDouble(negate_if(Ld::INFINITY, negative))),
            Lexed::Finite {
                negative,
                text,
                nonzero,
            } => {
                let value = Ld::from_str_r(&text, Round::NearestTiesToEven).ok()?.value;
                if value.is_infinite() || (nonzero && value.is_zero()) {
                    return None; // ERANGE
                }
                Some(LongDouble(negate_if(value, negative)))
            }
        }
    }

    /// `a + b`, rounded to nearest even like the x87 FPU at extended precision.
    pub(crate) fn add(self, other: LongDouble) -> LongDouble {
        LongDouble((self.0 + other.0).value)
    }

    /// Whether the value is NaN or ±infinity.
    pub(crate) fn is_nan_or_inf(self) -> bool {
        self.0.is_nan() || self.0.is_infinite()
    }

    /// Redis's `ld2string(.., LD_STR_HUMAN)` for a finite value: `%.17Lf`, then trailing
    /// zeros and a trailing point removed, and `-0` written `0`.
    pub(crate) fn to_human(self) -> Vec<u8> {
        let bits = self.0.to_bits();
        let negative = (bits >> 79) & 1 == 1;
        let biased = ((bits >> 64) & 0x7fff) as i32;
        let mantissa = bits as u64;
        // value = mantissa * 2^e2 (denormals use the minimum exponent).
        let e2 = if biased == 0 { 1 } else { biased } - 16383 - 63;
        let mut out = Vec::with_capacity(32);
        if negative {
            out.push(b'-');
        }
        if mantissa == 0 {
            out.push(b'0');
        } else if e2 >= 0 {
            out.extend_from_slice(&big_shifted_decimal(mantissa, e2 as u32));
        } else {
            let k = (-e2) as u32;
            let int_part: u128 = if k >= 64 {
                0
            } else {
                u128::from(mantissa >> k)
            };
            let frac: u128 = if k >= 64 {
                u128::from(mantissa)
            } else {
                u128::from(mantissa & ((1u64 << k) - 1))
            };
            const SCALE: u128 = 100_000_000_000_000_000; // 10^17
                                                         // frac < 2^64 and 10^17 < 2^57: the product fits in 121 bits.
            let scaled = frac * SCALE;
            let (mut q, rounding) = if k >= 128 {
                // scaled < 2^121 <= 2^(k-1): below one half of a unit.
                (0u128, std::cmp::Ordering::Less)
            } else {
                let q = scaled >> k;
                let rem = scaled - (q << k);
                let half = 1u128 << (k - 1);
                (q, rem.cmp(&half))
            };
            let mut int_part = int_part;
            if rounding == std::cmp::Ordering::Greater
                || (rounding == std::cmp::Ordering::Equal && q % 2 == 1)
            {
                q += 1;
                if q == SCALE {
                    q = 0;
                    int_part += 1;
                }
            }
            out.extend_from_slice(int_part.to_string().as_bytes());
            let mut frac_digits = format!("{q:017}").into_bytes();
            while frac_digits.last() == Some(&b'0') {
                frac_digits.pop();
            }
            if !frac_digits.is_empty() {
                out.push(b'.');
                out.extend_from_slice(&frac_digits);
            }
        }
        if out == b"-0" {
            out.remove(0);
        }
        out
    }
}

fn negate_if(x: Ld, negative: bool) -> Ld {
    if negative {
        -x
    } else {
        x
    }
}

/// The decimal digits of `m * 2^shift`.
fn big_shifted_decimal(m: u64, shift: u32) -> Vec<u8> {
    // Little-endian base-2^32 limbs.
    let words = (shift / 32) as usize;
    let bits = shift % 32;
    let mut limbs = vec![0u32; words];
    let wide = u128::from(m) << bits;
    limbs.push(wide as u32);
    limbs.push((wide >> 32) as u32);
    limbs.push((wide >> 64) as u32);
    while limbs.last() == Some(&0) {
        limbs.pop();
    }
    let mut chunks = Vec::new(); // base 10^9, least significant first
    while !limbs.is_empty() {
        let mut rem: u64 = 0;
        for limb in limbs.iter_mut().rev() {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = (cur / 1_000_000_000) as u32;
            rem = cur % 1_000_000_000;
        }
        chunks.push(rem as u32);
        while limbs.last() == Some(&0) {
            limbs.pop();
        }
    }
    let mut out = String::new();
    for (i, chunk) in chunks.iter().rev().enumerate() {
        if i == 0 {
            out.push_str(&chunk.to_string());
        } else {
            out.push_str(&format!("{chunk:09}"));
        }
    }
    out.into_bytes()
}

/// How `strtod` read a SORT score (`vector[j].u.score = strtod(byval->ptr, &eptr)` in
/// `sortCommandGeneric`): the value, or `None` where Redis reports "One or more scores can't
/// be converted into double" (characters left over, ERANGE, or NaN).
///
/// The string is a C string there: it ends at the first NUL byte. Leading white space is
/// skipped; an empty (or all-space) string converts to 0 without error.
pub(crate) fn sort_score(s: &[u8]) -> Option<f64> {
    let s = match s.iter().position(|&b| b == 0) {
        Some(nul) => &s[..nul],
        None => s,
    };
    let start = s.iter().take_while(|&&b| c_isspace(b)).count();
    let Some((lexed, used)) = lex(&s[start..]) else {
        // No conversion: eptr = the string itself; only an empty rest is accepted.
        return if s.is_empty() { Some(0.0) } else { None };
    };
    if start + used != s.len() {
        return None;
    }
    match lexed {
        Lexed::NaN => None,
        Lexed::Inf { negative } => Some(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        }),
        Lexed::Finite { negative, text, .. } => {
            let parsed = Double::from_str_r(&text, Round::NearestTiesToEven).ok()?;
            if parsed
                .status
                .intersects(Status::OVERFLOW | Status::UNDERFLOW)
            {
                return None; // ERANGE
            }
            let value = f64::from_bits(parsed.value.to_bits() as u64);
            Some(if negative { -value } else { value })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn human(s: &str) -> String {
        String::from_utf8(LongDouble::parse(s.as_bytes()).unwrap().to_human()).unwrap()
    }

    fn incr(a: &str, b: &str) -> String {
        let a = LongDouble::parse(a.as_bytes()).unwrap();
        let b = LongDouble::parse(b.as_bytes()).unwrap();
        String::from_utf8(a.add(b).to_human()).unwrap()
    }

    #[test]
    fn redis_examples() {
        // Values observed on Redis 7.0.15 (x86_64).
        assert_eq!(incr("10.5", "0.1"), "10.6");
        assert_eq!(incr("10.6", "1e3"), "1010.59999999999999998");
        assert_eq!(incr("-0", "0"), "0");
        assert_eq!(incr(".5", "5."), "5.5");
        assert_eq!(incr("0x10", "1"), "17");
        assert_eq!(incr("17", "0x1p-3"), "17.125");
        assert_eq!(incr("3", "0.000003814697265625"), "3.00000381469726562");
        assert_eq!(incr("0", "0.000003814697265625"), "0.00000381469726562");
        assert_eq!(
            incr("0.00000381469726562", "0.000011444091796875"),
            "0.0000152587890625"
        );
        assert_eq!(human("1e-4940"), "0");
        assert_eq!(human("-1e-20"), "0");
        assert!(human("1e4000").starts_with("99999999999999999999654638730996"));
        assert_eq!(human("1e4000").len(), 4000);
    }

    #[test]
    fn parse_rejections() {
        for bad in [
            "", " 1", "1 ", "nan", "NaN", "1e5000", "-1e5000", "1e-5000", "1\0abc", "\0abc", "0x",
            "1e", "1e+", ".", "-", "+", "abc", "infin", "--1",
        ] {
            assert!(LongDouble::parse(bad.as_bytes()).is_none(), "{bad:?}");
        }
        for good in [
            "inf",
            "-Infinity",
            "+5",
            "0e-99999",
            "1e-4940",
            "0x1P-3",
            "0X.8",
            "1E3",
            "5.",
            ".5",
        ] {
            assert!(LongDouble::parse(good.as_bytes()).is_some(), "{good:?}");
        }
    }

    #[test]
    fn sort_scores_follow_strtod() {
        assert_eq!(sort_score(b""), Some(0.0));
        assert_eq!(sort_score(b"  5"), Some(5.0));
        assert_eq!(sort_score(b"5\0junk"), Some(5.0));
        assert_eq!(sort_score(b"5 "), None);
        assert_eq!(sort_score(b"nan"), None);
        assert_eq!(sort_score(b"1e400"), None);
        assert_eq!(sort_score(b"1e-400"), None);
        assert_eq!(sort_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(sort_score(b"0x10"), Some(16.0));
    }
}

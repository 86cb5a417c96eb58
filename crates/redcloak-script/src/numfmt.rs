//! C's `%.<p>g` number formatting, which Redis and its Lua libraries use everywhere
//! (`%.14g` for Lua's `tostring`, `%.17g` for `redis.call` arguments and RESP doubles).

/// Formats `x` as C's `printf("%.<precision>g", x)` does with glibc: `nan`/`-nan`,
/// `inf`/`-inf`, trailing zeros removed, exponent with at least two digits.
pub(crate) fn format_g(x: f64, precision: usize) -> String {
    let mut out = String::new();
    push_g(&mut out, x, precision);
    out
}

/// Appends `%.<precision>g` of `x` to `out`.
pub(crate) fn push_g(out: &mut String, x: f64, precision: usize) {
    use std::fmt::Write;
    let p = precision.max(1);
    if x.is_nan() {
        out.push_str(if x.is_sign_negative() { "-nan" } else { "nan" });
        return;
    }
    if x.is_infinite() {
        out.push_str(if x < 0.0 { "-inf" } else { "inf" });
        return;
    }
    if x == 0.0 {
        out.push_str(if x.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    // The exponent after rounding to p significant digits decides the style.
    let sci = format!("{:.*e}", p - 1, x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        out.push_str(strip_zeros(mantissa));
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        let fixed = format!("{x:.decimals$}");
        out.push_str(strip_zeros(&fixed));
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// C's `(long long)x` on x86-64: truncation toward zero, and `i64::MIN` for NaN, infinities and
/// anything out of range (Redis converts Lua numbers to integer replies this way).
pub(crate) fn c_cast_i64(x: f64) -> i64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if x.is_nan() || !(-TWO_63..TWO_63).contains(&x) {
        i64::MIN
    } else {
        x as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_printf() {
        let cases: &[(f64, usize, &str)] = &[
            (0.1, 17, "0.10000000000000001"),
            (0.1, 14, "0.1"),
            (1e15, 14, "1e+15"),
            (1e14, 14, "1e+14"),
            (123456789012345.0, 14, "1.2345678901234e+14"),
            (12345678901234.0, 14, "12345678901234"),
            (2f64.powi(63), 14, "9.2233720368548e+18"),
            (1e300, 17, "1.0000000000000001e+300"),
            (0.0001, 14, "0.0001"),
            (0.00001, 14, "1e-05"),
            (-1.5, 14, "-1.5"),
            (3.0, 17, "3"),
            (100.0, 14, "100"),
            (-0.0, 14, "-0"),
            (f64::INFINITY, 14, "inf"),
            (f64::NEG_INFINITY, 17, "-inf"),
            (1.0 / 3.0, 14, "0.33333333333333"),
            (99_999_999_999_999.9, 14, "1e+14"),
        ];
        for &(x, p, want) in cases {
            assert_eq!(format_g(x, p), want, "{x} %.{p}g");
        }
    }

    #[test]
    fn cast_like_c() {
        assert_eq!(c_cast_i64(1.9), 1);
        assert_eq!(c_cast_i64(-1.9), -1);
        assert_eq!(c_cast_i64(3e20), i64::MIN);
        assert_eq!(c_cast_i64(f64::NAN), i64::MIN);
        assert_eq!(c_cast_i64(f64::INFINITY), i64::MIN);
        assert_eq!(c_cast_i64(f64::NEG_INFINITY), i64::MIN);
    }
}

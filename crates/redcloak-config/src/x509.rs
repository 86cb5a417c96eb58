//! The one thing redcloak reads from a certificate before the TLS handshake: its validity
//! period (RFC 5280 §4.1.2.5), so that an expired or soon-expiring client certificate is a
//! clear startup message instead of an alert from Redis.
//!
//! A small, bounded DER reader of our own (no X.509 library): it walks
//! `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
//! signature, issuer, validity SEQUENCE { notBefore, notAfter }, … }, … }` and decodes the two
//! times (`UTCTime` or `GeneralizedTime`, both in the `…Z` form DER requires).
//!
//! # Security
//! Certificates come from files an operator names, but the reader treats them as untrusted
//! input: no recursion, no allocation, every length checked against the bytes that are really
//! there, lengths above 4 GiB and the indefinite form refused, arithmetic checked. Malformed
//! input is an error, never a panic (tested with every truncation and every one-byte change
//! of a real certificate).

use std::fmt;

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0; // [0] EXPLICIT, constructed
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// When a certificate is valid, in seconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// `notBefore`.
    pub not_before: i64,
    /// `notAfter`.
    pub not_after: i64,
}

/// Why a certificate's validity could not be read. Carries no certificate bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DerError {
    /// The input ends inside an element.
    #[error("the certificate is truncated")]
    Truncated,
    /// An element has another type than X.509 puts there.
    #[error("the certificate is not an X.509 certificate (unexpected element {found:#04x} where {expected} belongs)")]
    UnexpectedTag {
        /// What X.509 puts there.
        expected: &'static str,
        /// The tag found.
        found: u8,
    },
    /// Indefinite, over-long or non-minimal length (not DER), or a multi-byte tag.
    #[error("the certificate is not valid DER")]
    NotDer,
    /// Bytes after the certificate or after the validity's two times.
    #[error("the certificate has trailing data")]
    TrailingData,
    /// A time that is not `YYMMDDHHMMSSZ` / `YYYYMMDDHHMMSSZ` or names no real instant.
    #[error("the certificate's validity holds an invalid time")]
    BadTime,
}

/// Reads the validity period of one DER-encoded certificate.
pub fn validity(der: &[u8]) -> Result<Validity, DerError> {
    let mut outer = Reader(der);
    let cert = outer.expect(SEQUENCE, "Certificate")?;
    outer.finish()?;
    let mut cert = Reader(cert);
    let tbs = cert.expect(SEQUENCE, "tbsCertificate")?;
    let mut tbs = Reader(tbs);
    if tbs.peek_tag() == Some(VERSION) {
        tbs.read()?;
    }
    tbs.expect(INTEGER, "serialNumber")?;
    tbs.expect(SEQUENCE, "signature")?;
    tbs.expect(SEQUENCE, "issuer")?;
    let mut period = Reader(tbs.expect(SEQUENCE, "validity")?);
    let not_before = time(&mut period)?;
    let not_after = time(&mut period)?;
    period.finish()?;
    Ok(Validity {
        not_before,
        not_after,
    })
}

/// A cursor over DER bytes; every read is bounded by what is left.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn peek_tag(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// One tag-length-value; returns the tag and the contents.
    fn read(&mut self) -> Result<(u8, &'a [u8]), DerError> {
        let (&tag, rest) = self.0.split_first().ok_or(DerError::Truncated)?;
        if tag & 0x1f == 0x1f {
            return Err(DerError::NotDer); // multi-byte tags never occur in these fields
        }
        let (&first, mut rest) = rest.split_first().ok_or(DerError::Truncated)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            // 0x80 is the indefinite form (BER only); more than 4 length bytes is > 4 GiB.
            if n == 0 || n > 4 {
                return Err(DerError::NotDer);
            }
            let bytes = rest.get(..n).ok_or(DerError::Truncated)?;
            rest = &rest[n..];
            if bytes[0] == 0 {
                return Err(DerError::NotDer); // non-minimal
            }
            let len = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            if len < 0x80 {
                return Err(DerError::NotDer); // should have used the short form
            }
            usize::try_from(len).map_err(|_| DerError::Truncated)?
        };
        if rest.len() < len {
            return Err(DerError::Truncated);
        }
        let (contents, after) = rest.split_at(len);
        self.0 = after;
        Ok((tag, contents))
    }

    fn expect(&mut self, tag: u8, name: &'static str) -> Result<&'a [u8], DerError> {
        match self.read()? {
            (found, contents) if found == tag => Ok(contents),
            (found, _) => Err(DerError::UnexpectedTag {
                expected: name,
                found,
            }),
        }
    }

    fn finish(&self) -> Result<(), DerError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DerError::TrailingData)
        }
    }
}

/// `UTCTime` (`YYMMDDHHMMSSZ`, years 1950–2049 as RFC 5280 says) or `GeneralizedTime`
/// (`YYYYMMDDHHMMSSZ`).
fn time(r: &mut Reader<'_>) -> Result<i64, DerError> {
    let (tag, text) = r.read()?;
    let (year, rest) = match tag {
        UTC_TIME if text.len() == 13 => {
            let yy = number(&text[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        GENERALIZED_TIME if text.len() == 15 => (number(&text[..4])?, &text[4..]),
        UTC_TIME | GENERALIZED_TIME => return Err(DerError::BadTime),
        found => {
            return Err(DerError::UnexpectedTag {
                expected: "a time",
                found,
            })
        }
    };
    // rest is MMDDHHMMSSZ (11 bytes, checked by the lengths above).
    if rest[10] != b'Z' {
        return Err(DerError::BadTime);
    }
    let field = |i: usize| number(&rest[i..i + 2]);
    let (month, day, hour, minute, second) =
        (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(DerError::BadTime);
    }
    let days = days_from_civil(i64::from(year), month, day);
    Ok(days * 86_400 + i64::from(hour * 3600 + minute * 60 + second))
}

/// ASCII digits only (no sign, no spaces) as a number.
fn number(digits: &[u8]) -> Result<u32, DerError> {
    digits.iter().try_fold(0u32, |acc, &d| {
        if d.is_ascii_digit() {
            Ok(acc * 10 + u32::from(d - b'0'))
        } else {
            Err(DerError::BadTime)
        }
    })
}

fn is_leap(year: u32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A Unix time shown as `2027-03-01 12:00:00 UTC`, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime(pub i64);

impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d) = civil_from_days(self.0.div_euclid(86_400));
        let secs = self.0.rem_euclid(86_400);
        write!(
            f,
            "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02} UTC",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use redcloak_certs::{Ca, Validity as Period};
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    use super::*;

    fn der_of(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    fn unix(t: SystemTime) -> i64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
    }

    fn cert(period: Period) -> Vec<u8> {
        let ca = Ca::new("x509 test CA", Period::days(1)).unwrap();
        der_of(&ca.issue_client("client", period).unwrap().cert_pem)
    }

    /// Wraps contents in a tag and a DER length.
    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = contents.len();
        if len < 0x80 {
            out.push(len as u8);
        } else if len < 0x100 {
            out.extend([0x81, len as u8]);
        } else {
            out.extend([0x82, (len >> 8) as u8, len as u8]);
        }
        out.extend_from_slice(contents);
        out
    }

    /// A minimal certificate-shaped structure with the given times.
    fn synthetic(not_before: &[u8], not_after: &[u8], version: bool) -> Vec<u8> {
        let mut tbs = Vec::new();
        if version {
            tbs.extend(tlv(VERSION, &tlv(INTEGER, &[2])));
        }
        tbs.extend(tlv(INTEGER, &[1]));
        tbs.extend(tlv(SEQUENCE, &tlv(0x06, &[1, 2, 3])));
        tbs.extend(tlv(SEQUENCE, &[]));
        let mut period = not_before.to_vec();
        period.extend_from_slice(not_after);
        tbs.extend(tlv(SEQUENCE, &period));
        tlv(SEQUENCE, &tlv(SEQUENCE, &tbs))
    }

    #[test]
    fn reads_the_period_of_a_real_certificate() {
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let end = UNIX_EPOCH + Duration::from_secs(1_800_000_123);
        let v = validity(&cert(Period::between(start, end))).unwrap();
        assert_eq!((v.not_before, v.not_after), (unix(start), unix(end)));
    }

    #[test]
    fn reads_generalized_time_after_2049() {
        // RFC 5280: dates from 2050 on are GeneralizedTime.
        let start = UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let end = UNIX_EPOCH + Duration::from_secs(2_600_000_000); // 2052
        let v = validity(&cert(Period::between(start, end))).unwrap();
        assert_eq!((v.not_before, v.not_after), (unix(start), unix(end)));
        assert_eq!(UtcTime(v.not_after).to_string(), "2052-05-22 14:13:20 UTC");
    }

    #[test]
    fn expired_certificates_read_as_expired() {
        let v = validity(&cert(Period::expired())).unwrap();
        assert!(v.not_after < unix(SystemTime::now()));
    }

    #[test]
    fn utc_time_years_pivot_at_1950() {
        let v = validity(&synthetic(
            &tlv(UTC_TIME, b"500101000000Z"),
            &tlv(UTC_TIME, b"491231235959Z"),
            true,
        ))
        .unwrap();
        assert_eq!(UtcTime(v.not_before).to_string(), "1950-01-01 00:00:00 UTC");
        assert_eq!(UtcTime(v.not_after).to_string(), "2049-12-31 23:59:59 UTC");
        // The version is optional (v1 certificates).
        let v1 = synthetic(
            &tlv(UTC_TIME, b"700101000000Z"),
            &tlv(GENERALIZED_TIME, b"20240229120000Z"),
            false,
        );
        let v = validity(&v1).unwrap();
        assert_eq!(v.not_before, 0);
        assert_eq!(UtcTime(v.not_after).to_string(), "2024-02-29 12:00:00 UTC");
    }

    #[test]
    fn dates_round_trip() {
        for days in [-719_468, -1, 0, 1, 10_957, 19_782, 47_482, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(UtcTime(0).to_string(), "1970-01-01 00:00:00 UTC");
        assert_eq!(UtcTime(951_782_400).to_string(), "2000-02-29 00:00:00 UTC");
        assert_eq!(UtcTime(-1).to_string(), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn invalid_times_are_errors() {
        let good = tlv(UTC_TIME, b"250101000000Z");
        for bad in [
            tlv(UTC_TIME, b"250230000000Z"),     // 30 February
            tlv(UTC_TIME, b"230229000000Z"),     // not a leap year
            tlv(UTC_TIME, b"251301000000Z"),     // month 13
            tlv(UTC_TIME, b"250100000000Z"),     // day 0
            tlv(UTC_TIME, b"250101240000Z"),     // hour 24
            tlv(UTC_TIME, b"250101006000Z"),     // minute 60
            tlv(UTC_TIME, b"250101000060Z"),     // second 60
            tlv(UTC_TIME, b"2501010000Z"),       // no seconds
            tlv(UTC_TIME, b"250101000000+0100"), // not Z
            tlv(UTC_TIME, b"2501010000-0Z"),     // not digits
            tlv(UTC_TIME, b" 50101000000Z"),     // space
            tlv(GENERALIZED_TIME, b"250101000000Z"),
            tlv(GENERALIZED_TIME, b"20250101000000.5Z"),
            tlv(0x04, b"250101000000Z"), // an OCTET STRING
        ] {
            assert!(validity(&synthetic(&good, &bad, true)).is_err(), "{bad:?}");
            assert!(validity(&synthetic(&bad, &good, true)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn non_der_lengths_and_shapes_are_errors() {
        let ok = synthetic(
            &tlv(UTC_TIME, b"250101000000Z"),
            &tlv(UTC_TIME, b"260101000000Z"),
            true,
        );
        assert!(validity(&ok).is_ok());
        let mut trailing = ok.clone();
        trailing.push(0);
        assert_eq!(validity(&trailing), Err(DerError::TrailingData));
        for bad in [
            &[][..],
            &[0x30][..],
            &[0x30, 0x80, 0, 0][..],                   // indefinite length
            &[0x30, 0x85, 1, 0, 0, 0, 0][..],          // 5 length bytes
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff][..], // 4 GiB, not there
            &[0x30, 0x81, 0x05, 0, 0, 0, 0, 0][..],    // long form for a short length
            &[0x30, 0x82, 0x00, 0x90][..],             // leading zero
            &[0x3f, 0x01, 0x00][..],                   // multi-byte tag
            &[0x31, 0x00][..],                         // a SET
            &[0x30, 0x02, 0x31, 0x00][..],             // tbs is a SET
            &[0x30, 0x04, 0x30, 0x02, 0x05, 0x00][..], // serial is NULL
            &[0x30, 0x06, 0x30, 0x04, 0x02, 0x01, 0x01][..], // truncated
        ] {
            assert!(validity(bad).is_err(), "{bad:02x?}");
        }
    }

    #[test]
    fn malformed_input_never_panics() {
        let good = cert(Period::days(3));
        assert!(validity(&good).is_ok());
        for len in 0..good.len() {
            assert!(validity(&good[..len]).is_err(), "truncated at {len}");
        }
        let mut mutated = good.clone();
        for i in 0..good.len() {
            for b in [0x00, 0x01, 0x7f, 0x80, 0x81, 0x84, 0xff, good[i] ^ 0x20] {
                mutated[i] = b;
                let _ = validity(&mutated);
            }
            mutated[i] = good[i];
        }
        // Pseudo-random garbage (a fixed LCG, so failures reproduce).
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let len = (state >> 56) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    // Bias towards bytes that look like the real thing.
                    match state >> 61 {
                        0 => SEQUENCE,
                        1 => UTC_TIME,
                        _ => (state >> 33) as u8,
                    }
                })
                .collect();
            let _ = validity(&bytes);
        }
    }
}

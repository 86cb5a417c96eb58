//! The one thing redcloak reads from a certificate before the TLS handshake: its validity
//! period (RFC 5280 §4.1.2.5), so that an expired or soon-expiring client certificate is a
//! clear startup message instead of an alert from Redis.
//!
//! The certificate is decoded by [`x509_cert`] (RustCrypto's X.509 types over its strict
//! `der` decoder); dates are shown through [`time`]. Only the two times are kept.
//!
//! # Security
//! Certificates come from files an operator names, but are treated as untrusted input: the
//! whole certificate must be strict DER (no indefinite or non-minimal lengths, no trailing
//! bytes, times in the `…Z` form with seconds and no fraction, as RFC 5280 requires), and
//! malformed input is an error, never a panic (tested with every truncation and every
//! one-byte change of a real certificate). The error carries no certificate bytes.
//!
//! Dates before 1970 are refused ([`DerError::BadTime`]): `der` counts time from the Unix
//! epoch, as rustls-webpki does when it checks Redis's certificate.

use std::fmt;

use x509_cert::der::{self, Decode, Tag};
use x509_cert::time::Time;
use x509_cert::Certificate;

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
    #[error("the certificate is not an X.509 certificate (unexpected element {found:#04x})")]
    UnexpectedTag {
        /// The tag found.
        found: u8,
    },
    /// Indefinite, over-long or non-minimal length (not DER), or a malformed tag.
    #[error("the certificate is not valid DER")]
    NotDer,
    /// Bytes after the certificate.
    #[error("the certificate has trailing data")]
    TrailingData,
    /// A time that is not `YYMMDDHHMMSSZ` / `YYYYMMDDHHMMSSZ`, names no real instant, or lies
    /// before 1970.
    #[error("the certificate's validity holds an invalid time")]
    BadTime,
    /// Well-formed DER, but a field holds a value X.509 does not allow (a bad version, an
    /// unusable object identifier, …).
    #[error("the certificate is not a well-formed X.509 certificate")]
    Invalid,
}

/// Reads the validity period of one DER-encoded certificate.
pub fn validity(der: &[u8]) -> Result<Validity, DerError> {
    let cert = Certificate::from_der(der).map_err(classify)?;
    let period = &cert.tbs_certificate.validity;
    Ok(Validity {
        not_before: unix_seconds(period.not_before),
        not_after: unix_seconds(period.not_after),
    })
}

/// `der` keeps times as an unsigned duration since 1970 that ends in 9999, so it always fits.
fn unix_seconds(t: Time) -> i64 {
    i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

/// Sorts `der`'s errors into the few kinds an operator can act on.
fn classify(e: der::Error) -> DerError {
    use der::ErrorKind as K;
    match e.kind() {
        K::Incomplete { .. } => DerError::Truncated,
        K::TrailingData { .. } => DerError::TrailingData,
        K::TagUnexpected { actual, .. } => DerError::UnexpectedTag {
            found: actual.into(),
        },
        K::DateTime
        | K::Value {
            tag: Tag::UtcTime | Tag::GeneralizedTime,
        } => DerError::BadTime,
        K::IndefiniteLength
        | K::Length { .. }
        | K::Noncanonical { .. }
        | K::Overflow
        | K::Overlength
        | K::TagModeUnknown
        | K::TagNumberInvalid
        | K::TagUnknown { .. } => DerError::NotDer,
        _ => DerError::Invalid,
    }
}

/// A Unix time shown as `2027-03-01 12:00:00 UTC`, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime(pub i64);

impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match time::OffsetDateTime::from_unix_timestamp(self.0) {
            Ok(t) => write!(
                f,
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            // Beyond the years ±9999 `time` covers; no certificate date is.
            Err(_) => write!(f, "{} s after 1970-01-01 00:00:00 UTC", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use redcloak_certs::{Ca, Validity as Period};
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    use x509_cert::der::asn1::Any;
    use x509_cert::der::Encode;

    use super::*;

    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const UTC_TIME: u8 = 0x17;
    const GENERALIZED_TIME: u8 = 0x18;

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

    /// Wraps short contents in a tag and a DER length.
    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag, u8::try_from(contents.len()).unwrap()];
        assert!(contents.len() < 0x80);
        out.extend_from_slice(contents);
        out
    }

    /// The top-level elements of a real certificate's `tbsCertificate` (version, serial,
    /// signature, issuer, validity, subject, key, extensions) and of the certificate.
    fn parts() -> (Vec<Any>, Vec<Any>) {
        let outer: Vec<Any> = Vec::from_der(&cert(Period::days(3))).unwrap();
        let tbs: Vec<Any> = outer[0].decode_as().unwrap();
        (outer, tbs)
    }

    /// Reassembles a certificate from `tbsCertificate` contents already encoded.
    fn assemble(mut outer: Vec<Any>, tbs: Vec<u8>) -> Vec<u8> {
        outer[0] = Any::new(Tag::Sequence, tbs).unwrap();
        outer.to_der().unwrap()
    }

    fn encoded(elements: &[Any]) -> Vec<u8> {
        elements.iter().flat_map(|e| e.to_der().unwrap()).collect()
    }

    /// A real certificate whose validity holds these two encoded elements.
    fn with_times(not_before: &[u8], not_after: &[u8]) -> Vec<u8> {
        let (outer, mut tbs) = parts();
        tbs[4] = Any::new(Tag::Sequence, [not_before, not_after].concat()).unwrap();
        assemble(outer, encoded(&tbs))
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
    fn utc_time_covers_1970_to_2049() {
        let v = validity(&with_times(
            &tlv(UTC_TIME, b"700101000000Z"),
            &tlv(UTC_TIME, b"491231235959Z"),
        ))
        .unwrap();
        assert_eq!(v.not_before, 0);
        assert_eq!(UtcTime(v.not_after).to_string(), "2049-12-31 23:59:59 UTC");
        let v = validity(&with_times(
            &tlv(UTC_TIME, b"700101000000Z"),
            &tlv(GENERALIZED_TIME, b"20240229120000Z"),
        ))
        .unwrap();
        assert_eq!(UtcTime(v.not_after).to_string(), "2024-02-29 12:00:00 UTC");
    }

    #[test]
    fn dates_before_1970_are_refused() {
        // RFC 5280 reads UTCTime 50–69 as 1950–1969; `der` (like rustls-webpki) starts at 1970.
        let good = tlv(UTC_TIME, b"260101000000Z");
        for early in [
            tlv(UTC_TIME, b"500101000000Z"),
            tlv(UTC_TIME, b"691231235959Z"),
            tlv(GENERALIZED_TIME, b"19691231235959Z"),
        ] {
            assert_eq!(validity(&with_times(&early, &good)), Err(DerError::BadTime));
        }
        let start = UNIX_EPOCH - Duration::from_secs(631_152_000); // 1950-01-01
        let end = UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        assert_eq!(
            validity(&cert(Period::between(start, end))),
            Err(DerError::BadTime)
        );
    }

    #[test]
    fn version_1_certificates_are_read() {
        // No [0] version and no [3] extensions.
        let (outer, mut tbs) = parts();
        tbs.remove(0);
        tbs.pop();
        tbs[3] = Any::new(
            Tag::Sequence,
            [
                tlv(UTC_TIME, b"700101000000Z"),
                tlv(UTC_TIME, b"700101000001Z"),
            ]
            .concat(),
        )
        .unwrap();
        let v = validity(&assemble(outer, encoded(&tbs))).unwrap();
        assert_eq!((v.not_before, v.not_after), (0, 1));
    }

    #[test]
    fn utc_time_shows_dates_through_time() {
        assert_eq!(UtcTime(0).to_string(), "1970-01-01 00:00:00 UTC");
        assert_eq!(UtcTime(951_782_400).to_string(), "2000-02-29 00:00:00 UTC");
        assert_eq!(UtcTime(-1).to_string(), "1969-12-31 23:59:59 UTC");
        assert_eq!(UtcTime(-631_152_000).to_string(), "1950-01-01 00:00:00 UTC");
        assert_eq!(
            UtcTime(253_402_300_799).to_string(),
            "9999-12-31 23:59:59 UTC"
        );
        assert_eq!(
            UtcTime(i64::MAX).to_string(),
            "9223372036854775807 s after 1970-01-01 00:00:00 UTC"
        );
    }

    #[test]
    fn invalid_times_are_errors() {
        let good = tlv(UTC_TIME, b"250101000000Z");
        assert!(validity(&with_times(&good, &good)).is_ok());
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
        ] {
            assert_eq!(
                validity(&with_times(&good, &bad)),
                Err(DerError::BadTime),
                "{bad:?}"
            );
            assert_eq!(
                validity(&with_times(&bad, &good)),
                Err(DerError::BadTime),
                "{bad:?}"
            );
        }
        let octet_string = tlv(0x04, b"250101000000Z");
        assert_eq!(
            validity(&with_times(&good, &octet_string)),
            Err(DerError::UnexpectedTag { found: 0x04 })
        );
    }

    #[test]
    fn non_der_lengths_and_shapes_are_errors() {
        let ok = cert(Period::days(3));
        assert!(validity(&ok).is_ok());
        let mut trailing = ok.clone();
        trailing.push(0);
        assert_eq!(validity(&trailing), Err(DerError::TrailingData));
        // The serial number's length in the long form: BER, not DER.
        let (outer, tbs) = parts();
        let serial = tbs[1].value();
        let mut long_form = vec![INTEGER, 0x81, u8::try_from(serial.len()).unwrap()];
        long_form.extend_from_slice(serial);
        let mut contents = encoded(&tbs[..1]);
        contents.extend(long_form);
        contents.extend(encoded(&tbs[2..]));
        assert_eq!(validity(&assemble(outer, contents)), Err(DerError::NotDer));
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

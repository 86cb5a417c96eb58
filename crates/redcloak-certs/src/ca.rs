//! [`Ca`]: a self-signed certificate authority that issues server and client
//! certificates.

use std::fmt;
use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use zeroize::Zeroizing;

use crate::{CertError, Validity};

/// X.520 upper bound for a common name.
const MAX_COMMON_NAME: usize = 64;

/// A certificate and its private key, both PEM (the key as PKCS#8,
/// `BEGIN PRIVATE KEY`).
///
/// # Security
///
/// `Debug` never shows the key, and the key text is zeroized on drop. Read it
/// only through [`CertifiedKey::key_pem`].
pub struct CertifiedKey {
    /// The certificate, PEM.
    pub cert_pem: String,
    key_pem: Zeroizing<String>,
}

impl CertifiedKey {
    /// The private key, PEM (PKCS#8).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
}

impl fmt::Debug for CertifiedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertifiedKey")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[secret key elided]")
            .finish()
    }
}

/// A self-signed certificate authority (ECDSA P-256) that issues server and
/// client certificates.
///
/// The CA may sign end-entity certificates only (path length 0), and carries
/// the key usages `keyCertSign` and `cRLSign`.
///
/// # Security
///
/// Meant for development and tests. `Debug` never shows the key, and the key
/// text is zeroized on drop.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    key_pem: Zeroizing<String>,
}

impl Ca {
    /// Makes a new self-signed CA with a fresh ECDSA P-256 key.
    pub fn new(common_name: &str, validity: Validity) -> Result<Ca, CertError> {
        let mut params = base_params(common_name, validity)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = params.self_signed(&key)?;
        let key_pem = Zeroizing::new(key.serialize_pem());
        Ok(Ca {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
            key_pem,
        })
    }

    /// The CA certificate, PEM: what Redis and clients trust
    /// (`tls-ca-cert-file`).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key, PEM (PKCS#8).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Issues a server certificate (EKU `serverAuth`). Each SAN that parses
    /// as an IP address (`127.0.0.1`, `::1`, `[::1]`) becomes an IP SAN, any
    /// other a DNS SAN (`localhost`, `redis`, `*.redis.internal`).
    pub fn issue_server(
        &self,
        common_name: &str,
        sans: &[&str],
        validity: Validity,
    ) -> Result<CertifiedKey, CertError> {
        let mut params = leaf_params(common_name, validity, ExtendedKeyUsagePurpose::ServerAuth)?;
        params.subject_alt_names = sans
            .iter()
            .map(|san| parse_san(san))
            .collect::<Result<_, _>>()?;
        self.sign(&params)
    }

    /// Issues a client certificate (EKU `clientAuth`), for mutual TLS.
    pub fn issue_client(
        &self,
        common_name: &str,
        validity: Validity,
    ) -> Result<CertifiedKey, CertError> {
        let params = leaf_params(common_name, validity, ExtendedKeyUsagePurpose::ClientAuth)?;
        self.sign(&params)
    }

    fn sign(&self, params: &CertificateParams) -> Result<CertifiedKey, CertError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(CertifiedKey {
            cert_pem: cert.pem(),
            key_pem: Zeroizing::new(key.serialize_pem()),
        })
    }
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[secret key elided]")
            .finish()
    }
}

fn base_params(common_name: &str, validity: Validity) -> Result<CertificateParams, CertError> {
    let invalid = |reason| CertError::InvalidName {
        name: common_name.to_owned(),
        reason,
    };
    if common_name.trim().is_empty() {
        return Err(invalid("it is empty"));
    }
    if common_name.chars().count() > MAX_COMMON_NAME {
        return Err(invalid("it is longer than 64 characters"));
    }
    if common_name.chars().any(char::is_control) {
        return Err(invalid("it contains control characters"));
    }
    let (not_before, not_after) = validity.to_rcgen()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.not_before = not_before;
    params.not_after = not_after;
    Ok(params)
}

/// End-entity parameters: not a CA, `digitalSignature` (all an ECDSA key
/// does in TLS; RFC 5480 does not allow `keyEncipherment` for EC keys), one
/// extended key usage, and an authority key identifier so that OpenSSL finds
/// the issuer by key.
fn leaf_params(
    common_name: &str,
    validity: Validity,
    usage: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams, CertError> {
    let mut params = base_params(common_name, validity)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// An IP SAN if `san` is an IP address (brackets around IPv6 allowed), else a
/// DNS SAN if it is a plausible host name (optionally with a leading `*.`).
fn parse_san(san: &str) -> Result<SanType, CertError> {
    let unbracketed = san
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(san);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let invalid = |reason| CertError::InvalidSan {
        san: san.to_owned(),
        reason,
    };
    check_dns_name(san).map_err(invalid)?;
    let name = san
        .to_owned()
        .try_into()
        .map_err(|_| invalid("it is not ASCII"))?;
    Ok(SanType::DnsName(name))
}

fn check_dns_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > 253 {
        return Err("it is longer than 253 characters");
    }
    let labels = name.strip_prefix("*.").unwrap_or(name);
    for label in labels.split('.') {
        if label.is_empty() {
            return Err("it has an empty label (leading, trailing or doubled dot)");
        }
        if label.len() > 63 {
            return Err("a label is longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("it may contain only letters, digits, '-', '_' and dots");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with '-'");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sans_split_into_ip_and_dns() {
        assert_eq!(
            parse_san("127.0.0.1").unwrap(),
            SanType::IpAddress("127.0.0.1".parse().unwrap())
        );
        assert_eq!(
            parse_san("[::1]").unwrap(),
            SanType::IpAddress("::1".parse().unwrap())
        );
        assert!(matches!(
            parse_san("localhost").unwrap(),
            SanType::DnsName(_)
        ));
        assert!(matches!(
            parse_san("*.redis.internal").unwrap(),
            SanType::DnsName(_)
        ));
        assert!(matches!(parse_san("redis_1").unwrap(), SanType::DnsName(_)));
    }

    #[test]
    fn bad_sans_are_rejected_with_a_reason() {
        for bad in [
            "",
            "redis.",
            ".redis",
            "re dis",
            "rédis",
            "-redis",
            "a..b",
            "*",
            "foo.*.bar",
            "http://redis",
            "redis:6379",
        ] {
            match parse_san(bad) {
                Err(CertError::InvalidSan { san, reason }) => {
                    assert_eq!(san, bad);
                    assert!(!reason.is_empty());
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let long_label = "a".repeat(64);
        assert!(parse_san(&long_label).is_err());
    }

    #[test]
    fn common_names_are_checked() {
        let v = Validity::days(1);
        for bad in ["", "  ", &"x".repeat(65), "a\nb"] {
            assert!(
                matches!(Ca::new(bad, v), Err(CertError::InvalidName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_hides_keys() {
        let ca = Ca::new("test CA", Validity::days(1)).unwrap();
        let leaf = ca.issue_client("client", Validity::days(1)).unwrap();
        for (shown, key) in [
            (format!("{ca:?}"), ca.key_pem()),
            (format!("{leaf:?}"), leaf.key_pem()),
        ] {
            assert!(key.starts_with(concat!("-----BEGIN ", "PRIVATE KEY-----")));
            assert!(!shown.contains("PRIVATE KEY"), "{shown}");
            let body: Vec<&str> = key.lines().filter(|l| !l.starts_with("-----")).collect();
            for line in body {
                assert!(!shown.contains(line), "{shown}");
            }
            assert!(shown.contains("[secret key elided]"));
            assert!(shown.contains("BEGIN CERTIFICATE"));
        }
    }
}

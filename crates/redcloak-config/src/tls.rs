//! TLS material for the upstream connection, read and checked before anything connects: the
//! CA roots, redcloak's client certificate chain (parsed, not expired, warned before it
//! expires) and private key (parsed, not readable by other users).
//!
//! The rustls configuration itself is built by `redcloak_proxy::tls` from this material; it
//! also checks that the key belongs to the certificate.

use std::fmt;
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::{Zeroize, Zeroizing};

use crate::x509::{self, UtcTime};
use crate::{Check, Environment, Problem, Rule};

/// A client certificate expiring within this many days is a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// Where the system's trusted roots are looked for when no CA is configured (Debian/Ubuntu,
/// Alpine, then Red Hat family). `SSL_CERT_FILE` comes first when set.
pub const SYSTEM_ROOTS: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/cert.pem",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

const SETUP: &str = "./scripts/setup-secure-redis.sh generates a working local set (certs/)";

/// The PEM files, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA that signed Redis's certificate; the system roots when `None`.
    pub ca_cert: Option<PathBuf>,
    /// redcloak's client certificate (chain).
    pub cert: PathBuf,
    /// redcloak's client private key.
    pub key: PathBuf,
}

/// Everything the TLS client configuration is built from, already read and checked.
#[derive(Clone)]
pub struct TlsMaterial {
    /// The configured paths.
    pub files: TlsFiles,
    /// Trusted roots for Redis's certificate.
    pub roots: Vec<CertificateDer<'static>>,
    /// The file the roots came from (`REDIS_TLS_CA_CERT` or the system bundle).
    pub roots_file: PathBuf,
    /// redcloak's certificate chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// redcloak's private key.
    pub key: ClientKey,
    /// When the leaf certificate is valid.
    pub client_validity: x509::Validity,
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("files", &self.files)
            .field("roots", &self.roots.len())
            .field("roots_file", &self.roots_file)
            .field("chain", &self.chain.len())
            .field("key", &self.key)
            .field("client_validity", &self.client_validity)
            .finish()
    }
}

/// A private key: `Debug` shows `[redacted]`, the DER is wiped on drop.
pub struct ClientKey(PrivateKeyDer<'static>);

impl ClientKey {
    /// A copy of the key for rustls (which owns and wipes its own copy).
    pub fn clone_der(&self) -> PrivateKeyDer<'static> {
        self.0.clone_key()
    }
}

impl Clone for ClientKey {
    fn clone(&self) -> Self {
        ClientKey(self.0.clone_key())
    }
}

impl Drop for ClientKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Reads and checks the CA, the client certificate and the key; records one or more
/// outcomes for [`Rule::ServerVerification`], [`Rule::ClientCertificate`] and
/// [`Rule::PrivateKeyFile`]. Returns the material when all three loaded (even if a rule
/// failed, so that the caller can still report a key/certificate mismatch in the same run).
pub(crate) fn check(
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    environment: Environment,
    env: &dyn Fn(&str) -> Option<String>,
    now: i64,
    checks: &mut Vec<Check>,
) -> Option<TlsMaterial> {
    let roots = check_roots(ca.as_deref(), env, checks);
    let chain = check_chain(cert.as_deref(), now, checks);
    let key_file = key.clone();
    let key = check_key(key.as_deref(), environment, checks);
    let ((roots, roots_file), (chain, client_validity), key) = (roots?, chain?, key?);
    Some(TlsMaterial {
        files: TlsFiles {
            ca_cert: ca,
            cert: cert?,
            key: key_file?,
        },
        roots,
        roots_file,
        chain,
        key,
        client_validity,
    })
}

fn check_roots(
    ca: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    checks: &mut Vec<Check>,
) -> Option<(Vec<CertificateDer<'static>>, PathBuf)> {
    let rule = Rule::ServerVerification;
    let (path, var) = match ca {
        Some(path) if !path.is_file() => {
            checks.push(Check::fail(
                rule,
                Problem::new(
                    format!("REDIS_TLS_CA_CERT={} does not exist or is not a file", path.display()),
                    "the CA certificate (PEM) that signed Redis's certificate",
                    format!("point REDIS_TLS_CA_CERT at that file (certs/ca.crt from the setup script); {SETUP}"),
                    "docs/security.md#ca-file-missing",
                ),
            ));
            return None;
        }
        Some(path) => (path.to_path_buf(), "REDIS_TLS_CA_CERT"),
        None => {
            let found = env("SSL_CERT_FILE")
                .map(PathBuf::from)
                .into_iter()
                .chain(SYSTEM_ROOTS.iter().map(PathBuf::from))
                .find(|p| p.is_file());
            match found {
                Some(p) => (p, "the system CA bundle"),
                None => {
                    checks.push(Check::fail(
                        rule,
                        Problem::new(
                            "REDIS_TLS_CA_CERT is not set and no system CA bundle was found",
                            "a CA to verify Redis's server certificate against (there is no way to skip verification)",
                            "set REDIS_TLS_CA_CERT=/path/to/ca.crt (the CA that signed Redis's certificate), or install ca-certificates",
                            "docs/security.md#ca-file-missing",
                        ),
                    ));
                    return None;
                }
            }
        }
    };
    match read_certs(&path) {
        Ok(certs) => {
            checks.push(Check::pass(
                rule,
                format!(
                    "Redis's certificate and its host name are verified against {var} ({}, {} certificate{})",
                    path.display(),
                    certs.len(),
                    if certs.len() == 1 { "" } else { "s" }
                ),
            ));
            Some((certs, path))
        }
        Err(why) => {
            checks.push(Check::fail(
                rule,
                Problem::new(
                    format!("{var} ({}) {why}", path.display()),
                    "at least one CA certificate in PEM form (-----BEGIN CERTIFICATE-----)",
                    format!("point REDIS_TLS_CA_CERT at the CA that signed Redis's certificate; {SETUP}"),
                    "docs/security.md#ca-file-invalid",
                ),
            ));
            None
        }
    }
}

fn check_chain(
    cert: Option<&Path>,
    now: i64,
    checks: &mut Vec<Check>,
) -> Option<(Vec<CertificateDer<'static>>, x509::Validity)> {
    let rule = Rule::ClientCertificate;
    let path = required_file(
        cert,
        "REDIS_TLS_CERT",
        "redcloak's client certificate",
        checks,
    )?;
    let invalid = |what: String| {
        Check::fail(
            rule,
            Problem::new(
                what,
                "redcloak's client certificate (and any intermediates) in PEM form",
                format!("point REDIS_TLS_CERT at the PEM certificate issued for redcloak; {SETUP}"),
                "docs/security.md#client-certificate-invalid",
            ),
        )
    };
    let chain = match read_certs(path) {
        Ok(chain) => chain,
        Err(why) => {
            checks.push(invalid(format!("REDIS_TLS_CERT={} {why}", path.display())));
            return None;
        }
    };
    let mut periods = Vec::with_capacity(chain.len());
    for (i, cert) in chain.iter().enumerate() {
        match x509::validity(cert) {
            Ok(v) => periods.push(v),
            Err(e) => {
                checks.push(invalid(format!(
                    "certificate #{} in REDIS_TLS_CERT={} cannot be read: {e}",
                    i + 1,
                    path.display()
                )));
                return None;
            }
        }
    }
    let leaf = periods[0];
    let renew = "issue a new client certificate from the CA Redis trusts (tls-ca-cert-file) and point \
         REDIS_TLS_CERT/REDIS_TLS_KEY at it; for the development PKI: `redcloak certs --dir certs --force`, then \
         `make stop && make run` (Redis reloads the new CA)"
        .to_owned();
    let mut failed = false;
    for (i, v) in periods.iter().enumerate() {
        let which = if i == 0 {
            format!("the client certificate REDIS_TLS_CERT={}", path.display())
        } else {
            format!(
                "certificate #{} in REDIS_TLS_CERT={}",
                i + 1,
                path.display()
            )
        };
        if v.not_after < now {
            checks.push(Check::fail(
                rule,
                Problem::new(
                    format!("{which} expired on {}", UtcTime(v.not_after)),
                    "a client certificate that is valid now (Redis refuses an expired one)",
                    renew.clone(),
                    "docs/security.md#client-certificate-expired",
                ),
            ));
            failed = true;
        } else if v.not_before > now {
            checks.push(Check::fail(
                rule,
                Problem::new(
                    format!(
                        "{which} is not valid before {} (is this machine's clock right?)",
                        UtcTime(v.not_before)
                    ),
                    "a client certificate that is valid now",
                    "check the system clock (NTP), or use a certificate whose validity has started",
                    "docs/security.md#client-certificate-not-yet-valid",
                ),
            ));
            failed = true;
        }
    }
    let left = leaf.not_after.saturating_sub(now);
    if !failed && left < EXPIRY_WARNING_DAYS * 86_400 {
        checks.push(Check::warn(
            rule,
            Problem::new(
                format!(
                    "the client certificate REDIS_TLS_CERT={} expires on {} (in {})",
                    path.display(),
                    UtcTime(leaf.not_after),
                    duration_text(left)
                ),
                format!(
                    "renew a client certificate at least {EXPIRY_WARNING_DAYS} days before it expires; once expired, redcloak will not start"
                ),
                renew,
                "docs/security.md#client-certificate-expiring",
            ),
        ));
    } else if !failed {
        checks.push(Check::pass(
            rule,
            format!(
                "{} is valid until {} ({} left)",
                path.display(),
                UtcTime(leaf.not_after),
                duration_text(left)
            ),
        ));
    }
    Some((chain, leaf))
}

fn check_key(
    key: Option<&Path>,
    environment: Environment,
    checks: &mut Vec<Check>,
) -> Option<ClientKey> {
    use std::os::unix::fs::PermissionsExt;
    let path = required_file(
        key,
        "REDIS_TLS_KEY",
        "the client certificate's private key",
        checks,
    )?;
    let rule = Rule::PrivateKeyFile;
    // metadata() follows symlinks: what counts is the file the key is read from (Kubernetes
    // mounts secrets as symlinks into a ..data directory).
    match std::fs::metadata(path).map(|m| m.permissions().mode() & 0o7777) {
        Ok(mode) if mode & 0o077 != 0 => {
            let problem = Problem::new(
                format!(
                    "the private key REDIS_TLS_KEY={} has mode {mode:04o}: other users on this machine can read it",
                    path.display()
                ),
                if environment.is_strict() {
                    format!("a private key readable only by its owner (mode 0600 or 0400) in {environment}")
                } else {
                    "a private key readable only by its owner (mode 0600 or 0400); development only warns".to_owned()
                },
                format!(
                    "chmod 600 {} (Kubernetes: set defaultMode: 0400 on the secret volume)",
                    path.display()
                ),
                "docs/security.md#private-key-permissions",
            );
            checks.push(if environment.is_strict() {
                Check::fail(rule, problem)
            } else {
                Check::warn(rule, problem)
            });
        }
        Ok(mode) => checks.push(Check::pass(
            rule,
            format!("{} has mode {mode:04o} (owner only)", path.display()),
        )),
        // Reported below when the key cannot be read.
        Err(_) => {}
    }
    let invalid = |what: String| {
        Check::fail(
            Rule::ClientCertificate,
            Problem::new(
                what,
                "the PEM private key (PKCS#8, PKCS#1 or SEC1) of the certificate in REDIS_TLS_CERT",
                "point REDIS_TLS_KEY at the key file that belongs to REDIS_TLS_CERT",
                "docs/security.md#client-key-invalid",
            ),
        )
    };
    // Read into a buffer that is wiped on drop, then parse from memory.
    let text = match std::fs::read(path) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(e) => {
            checks.push(invalid(format!(
                "REDIS_TLS_KEY={} cannot be read: {}",
                path.display(),
                e.kind()
            )));
            return None;
        }
    };
    match PrivateKeyDer::from_pem_slice(&text) {
        Ok(key) => Some(ClientKey(key)),
        Err(e) => {
            checks.push(invalid(format!(
                "REDIS_TLS_KEY={} holds no readable private key ({})",
                path.display(),
                pem_error(&e)
            )));
            None
        }
    }
}

fn required_file<'a>(
    path: Option<&'a Path>,
    var: &str,
    what: &str,
    checks: &mut Vec<Check>,
) -> Option<&'a Path> {
    let what_found = match path {
        None => format!("{var} is not set"),
        Some(p) if !p.is_file() => format!("{var}={} does not exist or is not a file", p.display()),
        Some(p) => return Some(p),
    };
    checks.push(Check::fail(
        Rule::ClientCertificate,
        Problem::new(
            what_found,
            format!("{what} (PEM) for mutual TLS with Redis: a client certificate and its key are always required"),
            format!("set {var}=/path/to/file.pem; {SETUP}"),
            "docs/security.md#client-certificate-missing",
        ),
    ));
    None
}

/// All certificates in a PEM file, or why there are none.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    match CertificateDer::pem_file_iter(path).and_then(|iter| iter.collect::<Result<Vec<_>, _>>()) {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        Ok(_) => Err("holds no certificate (-----BEGIN CERTIFICATE-----)".to_owned()),
        Err(e) => Err(format!("cannot be read ({})", pem_error(&e))),
    }
}

/// Describes a PEM error without echoing file contents.
fn pem_error(e: &pem::Error) -> String {
    match e {
        pem::Error::Io(io) => io.kind().to_string(),
        pem::Error::NoItemsFound => "no PEM section of the expected kind".to_owned(),
        _ => "not valid PEM".to_owned(),
    }
}

/// `3 days`, `5 hours`, `400 days`.
fn duration_text(secs: i64) -> String {
    let days = secs / 86_400;
    match days {
        0 => format!("{} hours", secs / 3600),
        1 => "1 day".to_owned(),
        n => format!("{n} days"),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, SystemTime};

    use redcloak_certs::{Ca, Validity};

    use super::*;
    use crate::Outcome;

    struct Files {
        _dir: tempfile::TempDir,
        ca: PathBuf,
        cert: PathBuf,
        key: PathBuf,
    }

    fn files(client: Validity) -> Files {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("test CA", Validity::days(30)).unwrap();
        let leaf = ca.issue_client("redcloak", client).unwrap();
        let write = |name: &str, text: &str, mode: u32| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        };
        Files {
            ca: write("ca.crt", ca.cert_pem(), 0o644),
            cert: write("client.crt", &leaf.cert_pem, 0o644),
            key: write("client.key", leaf.key_pem(), 0o600),
            _dir: dir,
        }
    }

    fn now() -> i64 {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    fn run(f: &Files, env: Environment) -> (Option<TlsMaterial>, Vec<Check>) {
        let mut checks = Vec::new();
        let m = check(
            Some(f.ca.clone()),
            Some(f.cert.clone()),
            Some(f.key.clone()),
            env,
            &|_| None,
            now(),
            &mut checks,
        );
        (m, checks)
    }

    fn outcome(checks: &[Check], rule: Rule) -> Vec<&Outcome> {
        checks
            .iter()
            .filter(|c| c.rule == rule)
            .map(|c| &c.outcome)
            .collect()
    }

    #[test]
    fn good_material_passes_every_rule() {
        let f = files(Validity::days(365));
        let (m, checks) = run(&f, Environment::Production);
        let m = m.expect("material");
        assert!(
            checks.iter().all(|c| !c.failed() && c.problem().is_none()),
            "{checks:#?}"
        );
        assert_eq!((m.roots.len(), m.chain.len()), (1, 1));
        assert_eq!(format!("{:?}", m.key), "[redacted]");
        assert!(!format!("{m:?}").contains("PRIVATE"), "{m:?}");
        assert_eq!(checks.len(), 3, "one pass per rule: {checks:#?}");
    }

    #[test]
    fn an_expired_client_certificate_fails_in_every_environment() {
        let f = files(Validity::expired());
        for env in Environment::ALL {
            let (m, checks) = run(&f, env);
            assert!(m.is_some(), "the material still loads");
            let [Outcome::Fail(p)] = &outcome(&checks, Rule::ClientCertificate)[..] else {
                panic!("{checks:#?}")
            };
            assert!(p.what.contains("expired on"), "{p}");
            assert_eq!(p.docs, "docs/security.md#client-certificate-expired");
        }
    }

    #[test]
    fn a_certificate_expiring_within_14_days_warns() {
        let f = files(Validity::days(5));
        let (_, checks) = run(&f, Environment::Production);
        let [Outcome::Warn(p)] = &outcome(&checks, Rule::ClientCertificate)[..] else {
            panic!("{checks:#?}")
        };
        assert!(
            p.what.contains("expires on") && p.what.contains("(in 4 days)")
                || p.what.contains("(in 5 days)"),
            "{p}"
        );
        let f = files(Validity::days(15));
        let (_, checks) = run(&f, Environment::Production);
        assert!(matches!(
            outcome(&checks, Rule::ClientCertificate)[..],
            [Outcome::Pass(_)]
        ));
    }

    #[test]
    fn a_certificate_not_yet_valid_fails() {
        let start = SystemTime::now() + Duration::from_secs(86_400 * 2);
        let f = files(Validity::between(
            start,
            start + Duration::from_secs(86_400 * 30),
        ));
        let (_, checks) = run(&f, Environment::Development);
        let [Outcome::Fail(p)] = &outcome(&checks, Rule::ClientCertificate)[..] else {
            panic!("{checks:#?}")
        };
        assert!(p.what.contains("not valid before"), "{p}");
    }

    #[test]
    fn key_permissions_depend_on_the_environment() {
        let f = files(Validity::days(365));
        for mode in [0o640, 0o604, 0o644] {
            std::fs::set_permissions(&f.key, std::fs::Permissions::from_mode(mode)).unwrap();
            for env in Environment::ALL {
                let (m, checks) = run(&f, env);
                assert!(m.is_some());
                let o = outcome(&checks, Rule::PrivateKeyFile);
                let p = match (env.is_strict(), &o[..]) {
                    (true, [Outcome::Fail(p)]) | (false, [Outcome::Warn(p)]) => p,
                    _ => panic!("{env} {mode:o}: {o:?}"),
                };
                assert!(p.what.contains(&format!("mode {mode:04o}")), "{p}");
                assert!(p.fix.contains("chmod 600"), "{p}");
            }
        }
        std::fs::set_permissions(&f.key, std::fs::Permissions::from_mode(0o400)).unwrap();
        let (_, checks) = run(&f, Environment::Production);
        assert!(matches!(
            outcome(&checks, Rule::PrivateKeyFile)[..],
            [Outcome::Pass(_)]
        ));
    }

    #[test]
    fn unreadable_and_garbage_files_are_reported_without_contents() {
        let f = files(Validity::days(365));
        let secret_line = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg-not-a-key";
        std::fs::write(
            &f.key,
            format!("-----BEGIN {} KEY-----\n{secret_line}\n", "PRIVATE"),
        )
        .unwrap();
        std::fs::write(&f.cert, "not a certificate\n").unwrap();
        std::fs::write(
            &f.ca,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let (m, checks) = run(&f, Environment::Production);
        assert!(m.is_none());
        let text = format!("{checks:?}");
        assert!(!text.contains(secret_line), "{text}");
        let fails: Vec<_> = checks
            .iter()
            .filter(|c| c.failed())
            .map(|c| c.rule)
            .collect();
        assert_eq!(
            fails,
            [Rule::ClientCertificate, Rule::ClientCertificate],
            "{checks:#?}"
        );
        // The CA "certificate" is valid PEM; whether it is a usable trust anchor is decided
        // by the TLS builder.
    }

    #[test]
    fn missing_files_are_reported_by_variable() {
        let mut checks = Vec::new();
        let m = check(
            Some("/nonexistent/ca.crt".into()),
            None,
            Some("/nonexistent/client.key".into()),
            Environment::Production,
            &|_| None,
            now(),
            &mut checks,
        );
        assert!(m.is_none());
        let whats: Vec<_> = checks
            .iter()
            .filter_map(|c| c.problem().map(|p| p.what.clone()))
            .collect();
        assert_eq!(
            whats,
            [
                "REDIS_TLS_CA_CERT=/nonexistent/ca.crt does not exist or is not a file",
                "REDIS_TLS_CERT is not set",
                "REDIS_TLS_KEY=/nonexistent/client.key does not exist or is not a file",
            ]
        );
    }

    #[test]
    fn system_roots_are_used_without_a_ca() {
        let f = files(Validity::days(365));
        let mut checks = Vec::new();
        let bundle = f.ca.display().to_string();
        let m = check(
            None,
            Some(f.cert.clone()),
            Some(f.key.clone()),
            Environment::Production,
            &|k| (k == "SSL_CERT_FILE").then(|| bundle.clone()),
            now(),
            &mut checks,
        )
        .unwrap();
        assert_eq!(m.roots_file, f.ca);
        assert!(
            checks[0].summary().contains("system CA bundle"),
            "{checks:?}"
        );
    }
}

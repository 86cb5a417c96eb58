//! The upstream TLS configuration: built in one place, with the ring provider, the CA from
//! `REDIS_TLS_CA_CERT` and redcloak's client certificate (mutual TLS).
//!
//! # Security
//! Server certificates are always verified, including the host name or IP address in the
//! URL against the certificate's SANs. There is no code path that skips verification.

use std::path::Path;
use std::sync::Arc;

use redcloak_config::{Problem, TlsFiles};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// Where the system's trusted roots are looked for when no CA is configured (Debian/Ubuntu,
/// Alpine, then Red Hat family). `SSL_CERT_FILE` comes first when set.
const SYSTEM_ROOTS: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/cert.pem",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// Builds the client configuration, reporting every unreadable or mismatched file.
pub fn client_config(files: &TlsFiles) -> Result<Arc<ClientConfig>, Vec<Problem>> {
    let mut problems = Vec::new();
    let roots = load_roots(files.ca_cert.as_deref(), &mut problems);
    let chain = load_certs(
        &files.cert,
        "REDIS_TLS_CERT",
        "redcloak's client certificate",
        &mut problems,
    );
    let key = match PrivateKeyDer::from_pem_file(&files.key) {
        Ok(key) => Some(key),
        Err(e) => {
            problems.push(Problem::new(
                format!(
                    "REDIS_TLS_KEY={} holds no readable private key ({})",
                    files.key.display(),
                    pem_error(&e)
                ),
                "the PEM private key (PKCS#8, PKCS#1 or SEC1) of the client certificate",
                "point REDIS_TLS_KEY at the key file that belongs to REDIS_TLS_CERT",
                "docs/security.md#mtls",
            ));
            None
        }
    };
    let (Some(roots), Some(chain), Some(key)) = (roots, chain, key) else {
        return Err(problems);
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = match ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    {
        Ok(b) => b,
        Err(e) => {
            problems.push(internal(format!(
                "the TLS provider rejected the protocol versions: {e}"
            )));
            return Err(problems);
        }
    };
    match builder
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
    {
        Ok(mut config) => {
            config.resumption = rustls::client::Resumption::default();
            Ok(Arc::new(config))
        }
        Err(e) => {
            problems.push(Problem::new(
                format!("the client certificate and key cannot be used together: {e}"),
                "REDIS_TLS_KEY is the private key of the certificate in REDIS_TLS_CERT",
                "use the matching pair (e.g. certs/client.crt and certs/client.key from the setup script)",
                "docs/security.md#mtls",
            ));
            Err(problems)
        }
    }
}

fn load_roots(ca: Option<&Path>, problems: &mut Vec<Problem>) -> Option<RootCertStore> {
    let system;
    let (path, var) = match ca {
        Some(path) => (path, "REDIS_TLS_CA_CERT"),
        None => {
            system = std::env::var_os("SSL_CERT_FILE")
                .map(std::path::PathBuf::from)
                .into_iter()
                .chain(SYSTEM_ROOTS.iter().map(std::path::PathBuf::from))
                .find(|p| p.is_file());
            match &system {
                Some(p) => (p.as_path(), "SSL_CERT_FILE (system roots)"),
                None => {
                    problems.push(Problem::new(
                        "REDIS_TLS_CA_CERT is not set and no system CA bundle was found",
                        "a CA to verify Redis's server certificate against",
                        "set REDIS_TLS_CA_CERT=/path/to/ca.crt (the CA that signed Redis's certificate)",
                        "docs/security.md#server-verification",
                    ));
                    return None;
                }
            }
        }
    };
    let certs = load_certs(path, var, "CA certificates", problems)?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        problems.push(Problem::new(
            format!("{var}={} holds no usable CA certificate", path.display()),
            "at least one valid CA certificate (PEM)",
            "point REDIS_TLS_CA_CERT at the CA that signed Redis's certificate (certs/ca.crt from the setup script)",
            "docs/security.md#server-verification",
        ));
        return None;
    }
    Some(roots)
}

fn load_certs(
    path: &Path,
    var: &str,
    what: &str,
    problems: &mut Vec<Problem>,
) -> Option<Vec<CertificateDer<'static>>> {
    let certs =
        CertificateDer::pem_file_iter(path).and_then(|iter| iter.collect::<Result<Vec<_>, _>>());
    match certs {
        Ok(certs) if !certs.is_empty() => Some(certs),
        Ok(_) => {
            problems.push(Problem::new(
                format!("{var}={} holds no certificate", path.display()),
                format!("{what} in PEM form (-----BEGIN CERTIFICATE-----)"),
                format!("point {var} at a PEM certificate file"),
                "docs/security.md#mtls",
            ));
            None
        }
        Err(e) => {
            problems.push(Problem::new(
                format!(
                    "{var}={} cannot be read ({})",
                    path.display(),
                    pem_error(&e)
                ),
                format!("{what} in PEM form"),
                format!("check the path and permissions of {}", path.display()),
                "docs/security.md#mtls",
            ));
            None
        }
    }
}

/// Describes a PEM error without echoing file contents.
fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(io) => io.kind().to_string(),
        Error::NoItemsFound => "no PEM section of the expected kind".to_owned(),
        _ => "not valid PEM".to_owned(),
    }
}

fn internal(what: String) -> Problem {
    Problem::new(
        what,
        "a working TLS provider",
        "report this as a bug",
        "docs/security.md#mtls",
    )
}

//! The upstream TLS configuration: built in one place, with the ring provider, the CA roots
//! and redcloak's client certificate (mutual TLS) that `redcloak_config` has already read and
//! checked, and the protocol versions the environment allows.
//!
//! # Security
//! Server certificates are always verified, including the host name or IP address in the
//! URL against the certificate's SANs. There is no code path that skips verification, and no
//! cipher setting: rustls's defaults (all AEAD, forward secret) are the only suites.
//! Staging and production speak TLS 1.3 only; development also allows TLS 1.2.

use std::sync::Arc;

use redcloak_config::{Check, Environment, Problem, Rule, TlsMaterial};
use rustls::{ClientConfig, RootCertStore};

type Versions = &'static [&'static rustls::SupportedProtocolVersion];

const TLS13_AND_TLS12: Versions = &[&rustls::version::TLS13, &rustls::version::TLS12];
const TLS13_ONLY: Versions = &[&rustls::version::TLS13];

/// The protocol versions allowed in `environment`.
pub fn protocol_versions(environment: Environment) -> Versions {
    if environment.allows_tls12() {
        TLS13_AND_TLS12
    } else {
        TLS13_ONLY
    }
}

/// Builds the client configuration. Records a failure of [`Rule::ServerVerification`] when no
/// CA certificate is usable as a trust anchor, and the outcome of the key/certificate match
/// for [`Rule::ClientCertificate`]; `None` when the configuration cannot be built.
pub fn client_config(
    material: &TlsMaterial,
    environment: Environment,
    checks: &mut Vec<Check>,
) -> Option<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(material.roots.iter().cloned());
    let roots_ok = added > 0;
    if !roots_ok {
        checks.push(Check::fail(
            Rule::ServerVerification,
            Problem::new(
                format!(
                    "{} holds no usable CA certificate",
                    material.roots_file.display()
                ),
                "at least one valid CA certificate (PEM) to verify Redis's certificate against",
                "point REDIS_TLS_CA_CERT at the CA that signed Redis's certificate (certs/ca.crt from the setup script)",
                "docs/security.md#ca-file-invalid",
            ),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = match ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(protocol_versions(environment))
    {
        Ok(b) => b,
        Err(e) => {
            checks.push(Check::fail(
                Rule::TlsVersions,
                Problem::new(
                    format!("the TLS provider rejected the protocol versions: {e}"),
                    "a working TLS provider",
                    "report this as a bug",
                    "docs/security.md#tls-versions",
                ),
            ));
            return None;
        }
    };
    let files = &material.files;
    match builder
        .with_root_certificates(roots)
        .with_client_auth_cert(material.chain.clone(), material.key.clone_der())
    {
        Ok(mut config) => {
            checks.push(Check::pass(
                Rule::ClientCertificate,
                format!("{} is the certificate's private key", files.key.display()),
            ));
            config.resumption = rustls::client::Resumption::default();
            roots_ok.then(|| Arc::new(config))
        }
        Err(e) => {
            checks.push(Check::fail(
                Rule::ClientCertificate,
                Problem::new(
                    format!(
                        "the client certificate REDIS_TLS_CERT={} and key REDIS_TLS_KEY={} cannot be used together: {e}",
                        files.cert.display(),
                        files.key.display()
                    ),
                    "REDIS_TLS_KEY is the private key of the certificate in REDIS_TLS_CERT",
                    "use the matching pair (e.g. certs/client.crt and certs/client.key from the setup script)",
                    "docs/security.md#client-key-mismatch",
                ),
            ));
            None
        }
    }
}

//! What an upstream failure means for the operator: each [`UpstreamError`] that is not an
//! outage, turned into the what / required / fix / docs form of a [`Problem`].
//!
//! The texts live here, next to the errors they explain, so that `redcloak run` (exit 77)
//! and `redcloak check` (the handshake rule) say the same thing.

use redcloak_config::{Config, Problem};

use crate::upstream::{TlsFailure as F, UpstreamError};

// === impl UpstreamError ===

impl UpstreamError {
    /// Says what failed, what the policy requires and how to fix it, by kind of failure.
    /// `config` names the host, the trusted CA and the environment in the texts.
    ///
    /// # Security
    /// The texts name settings and file paths, never a password, key or certificate bytes.
    pub fn problem(&self, config: &Config) -> Problem {
        let environment = config.environment();
        let host = config.upstream.host.to_string();
        let trusted = match &config.tls.files.ca_cert {
            Some(p) => format!("the CA in REDIS_TLS_CA_CERT={}", p.display()),
            None => format!("the system roots ({})", config.tls.roots_file.display()),
        };
        let what = self.to_string();
        let (what, required, fix, docs) = match self {
            UpstreamError::Tls { failure, .. } => {
                tls_problem(*failure, what, &host, &trusted, environment)
            }
            UpstreamError::Rejected { step: "AUTH", .. } => (
                what,
                "the password (and user) Redis expects".to_owned(),
                "set REDIS_PASSWORD_FILE (or REDIS_PASSWORD) to Redis's requirepass / ACL password, and REDIS_USERNAME \
                 for ACL users"
                    .to_owned(),
                "docs/security.md#auth-rejected",
            ),
            UpstreamError::Rejected { .. } => (
                what,
                "a database number Redis has (its `databases` setting)".to_owned(),
                "correct the /db at the end of REDIS_URL".to_owned(),
                "docs/configuration.md#redis_url",
            ),
            _ => (
                what,
                "Redis reachable at REDIS_URL (while it is not, redcloak serves errors and keeps retrying)".to_owned(),
                "start Redis or correct REDIS_URL".to_owned(),
                "docs/security.md#redis-unreachable",
            ),
        };
        Problem::new(what, required, fix, docs)
    }
}

/// The parts of a [`Problem`] for a failed TLS handshake.
fn tls_problem(
    failure: F,
    what: String,
    host: &str,
    trusted: &str,
    environment: redcloak_config::Environment,
) -> (String, String, String, &'static str) {
    match failure {
            F::UntrustedServer => (
                what,
                format!("Redis's certificate is signed by {trusted}; verification cannot be turned off"),
                "set REDIS_TLS_CA_CERT to the CA that signed Redis's tls-cert-file (certs/ca.crt from \
                 ./scripts/setup-secure-redis.sh)"
                    .to_owned(),
                "docs/security.md#server-certificate-untrusted",
            ),
            F::NameMismatch => (
                what,
                format!("Redis's certificate names {host} (the host in REDIS_URL) as a DNS or IP SAN"),
                format!(
                    "set REDIS_URL to a name the certificate holds, or reissue Redis's certificate with {host} as a SAN \
                     (development PKI: redcloak certs --dir certs --force --san {host})"
                ),
                "docs/security.md#server-name-mismatch",
            ),
            F::ServerExpired => (
                what,
                "a Redis certificate (and CA) that is valid now".to_owned(),
                "renew Redis's certificate (tls-cert-file) and restart Redis; development PKI: \
                 redcloak certs --dir certs --force, then make stop && make run"
                    .to_owned(),
                "docs/security.md#server-certificate-expired",
            ),
            F::ServerNotYetValid => (
                what,
                "a Redis certificate that is valid now".to_owned(),
                "check this machine's clock (NTP), or use a Redis certificate whose validity has started".to_owned(),
                "docs/security.md#server-certificate-not-yet-valid",
            ),
            F::ProtocolVersion if environment.is_strict() => (
                format!("{what} (Redis does not offer TLS 1.3, which the {environment} environment requires)"),
                "TLS 1.3 in staging and production; TLS 1.2 is accepted only in development".to_owned(),
                "enable TLS 1.3 in Redis: tls-protocols \"TLSv1.3\" (or \"TLSv1.2 TLSv1.3\") in redis.conf, then restart Redis"
                    .to_owned(),
                "docs/security.md#tls-version-refused",
            ),
            F::ProtocolVersion => (
                what,
                "TLS 1.2 or 1.3".to_owned(),
                "enable TLSv1.3 (or TLSv1.2) in Redis's tls-protocols, then restart Redis".to_owned(),
                "docs/security.md#tls-version-refused",
            ),
            F::ClientRejected => (
                what,
                "Redis accepts redcloak's client certificate: issued by a CA in Redis's tls-ca-cert-file, valid, \
                 with the clientAuth usage"
                    .to_owned(),
                "issue REDIS_TLS_CERT/REDIS_TLS_KEY from the CA in Redis's tls-ca-cert-file (certs/client.crt and \
                 certs/client.key from the setup script), or add redcloak's CA to that file"
                    .to_owned(),
                "docs/security.md#client-certificate-rejected",
            ),
            _ => (
                what,
                format!("a TLS handshake with Redis verified against {trusted}, with redcloak's client certificate"),
                "check REDIS_TLS_CA_CERT, REDIS_TLS_CERT, REDIS_TLS_KEY and the host in REDIS_URL".to_owned(),
                "docs/security.md#server-verification",
            ),
    }
}

//! Layering: defaults < configuration file < environment < flags, then validation.

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::addr::{ListenAddr, ListenAddrError, UpstreamUrl, UpstreamUrlError};
use crate::{Config, ConfigError, KeyRing, Limits, Problem, Secret, TlsFiles};

/// The configuration file read when `--config` is not given and it exists.
pub const DEFAULT_CONFIG_FILE: &str = "config/redcloak.toml";

/// The file layer (and the shape flags and environment merge into). Every field is optional;
/// defaults are applied after merging. Secrets have no field here except as file paths.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {
    listen: Option<String>,
    upstream: UpstreamSettings,
    tls: TlsSettings,
    encryption: EncryptionSettings,
    limits: LimitSettings,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct UpstreamSettings {
    url: Option<String>,
    username: Option<String>,
    password_file: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TlsSettings {
    ca_cert: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct EncryptionSettings {
    key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LimitSettings {
    max_connections: Option<u64>,
    max_pipeline: Option<u64>,
    max_bulk_bytes: Option<u64>,
    connect_timeout_ms: Option<u64>,
}

/// How an environment variable's text becomes a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
}

/// The non-secret environment variables and the setting each one sets. They are public
/// interface: documented in README.md and docs/configuration.md.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("REDCLOAK_LISTEN", "listen"),
    ("REDIS_URL", "upstream.url"),
    ("REDIS_USERNAME", "upstream.username"),
    ("REDIS_PASSWORD_FILE", "upstream.password_file"),
    ("REDIS_TLS_CA_CERT", "tls.ca_cert"),
    ("REDIS_TLS_CERT", "tls.cert"),
    ("REDIS_TLS_KEY", "tls.key"),
    ("REDIS_ENCRYPTION_KEY_FILE", "encryption.key_file"),
    ("REDCLOAK_MAX_CONNECTIONS", "limits.max_connections"),
    ("REDCLOAK_MAX_PIPELINE", "limits.max_pipeline"),
    ("REDCLOAK_MAX_BULK_BYTES", "limits.max_bulk_bytes"),
    ("REDCLOAK_CONNECT_TIMEOUT_MS", "limits.connect_timeout_ms"),
];

fn kind_of(path: &str) -> Kind {
    if path.starts_with("limits.") {
        Kind::Number
    } else {
        Kind::Text
    }
}

/// Values given on the command line (the highest layer).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config`: a file that must exist.
    pub config_file: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<String>,
}

/// Loads and validates the configuration. `env` reads one environment variable (the binary
/// passes `std::env::var`; tests pass a map).
pub fn load(
    overrides: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();
    let (settings, config_file) = layered(overrides, env, &mut problems);
    let config = validate(settings, config_file, env, &mut problems);
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ => Err(ConfigError { problems }),
    }
}

fn layered(
    overrides: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> (Settings, Option<PathBuf>) {
    let mut figment = Figment::new();
    let config_file = match &overrides.config_file {
        Some(path) if !path.is_file() => {
            problems.push(Problem::new(
                format!("the configuration file {} does not exist", path.display()),
                "--config names a readable TOML file",
                format!(
                    "create {} (see config/redcloak.example.toml) or drop --config",
                    path.display()
                ),
                "docs/configuration.md#configuration-file",
            ));
            None
        }
        Some(path) => Some(path.clone()),
        None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file()),
    };
    if let Some(path) = &config_file {
        // file_exact: never search parent directories for a file the user did not name.
        figment = figment.merge(Toml::file_exact(path));
    }
    for &(var, path) in ENV_VARS {
        let Some(value) = env(var).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        figment = match kind_of(path) {
            Kind::Text => figment.merge(Serialized::default(path, value)),
            Kind::Number => match value.trim().parse::<u64>() {
                Ok(n) => figment.merge(Serialized::default(path, n)),
                Err(_) => {
                    problems.push(Problem::new(
                        format!("{var}={value} is not a whole number"),
                        format!("{var} is a count (a whole number)"),
                        format!("set {var} to a number, or unset it to use the default"),
                        "docs/configuration.md#limits",
                    ));
                    figment
                }
            },
        };
    }
    if let Some(listen) = &overrides.listen {
        figment = figment.merge(Serialized::default("listen", listen));
    }
    match figment.extract::<Settings>() {
        Ok(settings) => (settings, config_file),
        Err(errors) => {
            for e in errors {
                // The file layer holds no secrets (they are only named by path), so the
                // error text is safe to show; the environment layer cannot fail here.
                problems.push(Problem::new(
                    format!(
                        "the configuration file is invalid at '{}': {}",
                        e.path.join("."),
                        e.kind
                    ),
                    "settings described in config/redcloak.example.toml, with the right types",
                    "correct or remove the setting (a misspelled name is an error, not ignored)",
                    "docs/configuration.md#configuration-file",
                ));
            }
            (Settings::default(), config_file)
        }
    }
}

fn validate(
    s: Settings,
    config_file: Option<PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<Config> {
    let listen = check_listen(s.listen.as_deref().unwrap_or("127.0.0.1:6379"), problems);
    let upstream = check_upstream(s.upstream.url.as_deref(), env, problems);
    let username = s
        .upstream
        .username
        .or_else(|| upstream.as_ref().and_then(|u| u.username.clone()));
    let password = check_password(
        s.upstream.password_file.as_deref(),
        upstream.as_ref(),
        env,
        problems,
    );
    let tls = check_tls(s.tls, problems);
    let key_ring = check_keys(s.encryption.key_file.as_deref(), env, problems);
    let limits = check_limits(&s.limits, problems);
    Some(Config {
        listen: listen?,
        upstream: upstream?,
        username,
        password: password?,
        tls: tls?,
        key_ring: key_ring?,
        limits,
        config_file,
    })
}

const SETUP: &str =
    "./scripts/setup-secure-redis.sh (or `make run`) generates a working local setup";

fn check_listen(value: &str, problems: &mut Vec<Problem>) -> Option<ListenAddr> {
    ListenAddr::parse(value)
        .map_err(|e| {
            let fix = match e {
                ListenAddrError::NotLoopback(_) => {
                    "set REDCLOAK_LISTEN=127.0.0.1:6379 (or unix:/path/to/redcloak.sock); to reach redcloak from \
                     another container, run it as a sidecar in the same pod/network namespace"
                }
                _ => "set REDCLOAK_LISTEN=127.0.0.1:6379 or REDCLOAK_LISTEN=unix:/path/to/redcloak.sock",
            };
            problems.push(Problem::new(
                format!("listen address {e}"),
                "a loopback address (127.0.0.0/8, ::1, localhost) or a Unix socket",
                fix,
                "docs/security.md#plaintext-listener",
            ))
        })
        .ok()
}

fn check_upstream(
    url: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<UpstreamUrl> {
    let Some(url) = url else {
        problems.push(Problem::new(
            "REDIS_URL is not set",
            "the address of the real Redis, as rediss://host:port[/db]",
            format!("set REDIS_URL=rediss://localhost:6380; {SETUP}"),
            "docs/configuration.md#redis_url",
        ));
        return None;
    };
    UpstreamUrl::parse(url)
        .map_err(|e| {
            let (what, fix) = match e {
                UpstreamUrlError::Plaintext => {
                    let mut what = e.to_string();
                    if env("REDIS_INSECURE_ALLOW_PLAINTEXT").is_some() {
                        what.push_str(
                            "; REDIS_INSECURE_ALLOW_PLAINTEXT is set, but redcloak has no insecure mode and ignores it",
                        );
                    }
                    (what, format!("serve Redis over TLS and set REDIS_URL=rediss://host:port; {SETUP}"))
                }
                _ => (e.to_string(), "set REDIS_URL=rediss://host:port[/db], e.g. rediss://localhost:6380/0".to_owned()),
            };
            problems.push(Problem::new(
                what,
                "rediss:// (TLS with a client certificate and AUTH); there is no plaintext mode",
                fix,
                "docs/security.md#upstream-url",
            ))
        })
        .ok()
}

fn check_password(
    file: Option<&Path>,
    url: Option<&UpstreamUrl>,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<Secret> {
    let from_env = env("REDIS_PASSWORD")
        .or_else(|| env("REDIS_AUTH"))
        .map(Secret::new);
    let password = match (from_env, file) {
        (Some(p), _) => Some(p),
        (None, Some(path)) => read_secret_file(path, "REDIS_PASSWORD_FILE", problems),
        (None, None) => url.and_then(|u| u.password.clone()),
    };
    match password {
        Some(p) if !p.is_empty() => Some(p),
        _ => {
            problems.push(Problem::new(
                "no Redis password is configured",
                "AUTH on every upstream connection: REDIS_PASSWORD, REDIS_AUTH or REDIS_PASSWORD_FILE",
                format!("set REDIS_PASSWORD_FILE=/path/to/password (or REDIS_PASSWORD); {SETUP}"),
                "docs/security.md#auth",
            ));
            None
        }
    }
}

fn check_tls(tls: TlsSettings, problems: &mut Vec<Problem>) -> Option<TlsFiles> {
    let mut file = |path: Option<PathBuf>, var: &str, what: &str| -> Option<PathBuf> {
        match path {
            None => {
                problems.push(Problem::new(
                    format!("{var} is not set"),
                    format!("{what} for mutual TLS with Redis"),
                    format!("set {var}=/path/to/file.pem; {SETUP}"),
                    "docs/security.md#mtls",
                ));
                None
            }
            Some(p) if !p.is_file() => {
                problems.push(Problem::new(
                    format!("{var}={} does not exist or is not a file", p.display()),
                    format!("{what} (PEM)"),
                    format!("point {var} at the PEM file; {SETUP}"),
                    "docs/security.md#mtls",
                ));
                None
            }
            Some(p) => Some(p),
        }
    };
    let cert = file(tls.cert, "REDIS_TLS_CERT", "a client certificate");
    let key = file(
        tls.key,
        "REDIS_TLS_KEY",
        "the client certificate's private key",
    );
    let ca_cert = match tls.ca_cert {
        None => None,
        some => Some(file(
            some,
            "REDIS_TLS_CA_CERT",
            "the CA certificate that signed Redis's certificate",
        )?),
    };
    Some(TlsFiles {
        ca_cert,
        cert: cert?,
        key: key?,
    })
}

fn check_keys(
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<KeyRing> {
    let list = match (env("REDIS_ENCRYPTION_KEY").map(Secret::new), file) {
        (Some(list), _) => list,
        (None, Some(path)) => {
            let raw = read_secret_file(path, "REDIS_ENCRYPTION_KEY_FILE", problems)?;
            // One key per line or comma-separated, as the user prefers.
            Secret::new(
                raw.expose()
                    .split(['\n', ','])
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .collect::<Vec<_>>()
                    .join(","),
            )
        }
        (None, None) => {
            problems.push(Problem::new(
                "no encryption key is configured",
                "REDIS_ENCRYPTION_KEY (comma-separated Fernet keys, the first encrypts) or REDIS_ENCRYPTION_KEY_FILE; \
                 redcloak never generates one at startup (data would be unreadable after a restart)",
                "run `redcloak keygen`, store the key in your secret store, and set REDIS_ENCRYPTION_KEY_FILE (or REDIS_ENCRYPTION_KEY)",
                "docs/security.md#encryption-keys",
            ));
            return None;
        }
    };
    KeyRing::parse(list.expose())
        .map_err(|e| {
            problems.push(Problem::new(
                e.to_string(),
                "one or more valid Fernet keys (32 random bytes, url-safe base64), no duplicates",
                "generate a key with `redcloak keygen`; to rotate, put the new key first and keep the old ones after it",
                "docs/security.md#encryption-keys",
            ))
        })
        .ok()
}

fn check_limits(l: &LimitSettings, problems: &mut Vec<Problem>) -> Limits {
    let d = Limits::default();
    let mut get = |value: Option<u64>, name: &str, default: usize, max: usize| -> usize {
        match value {
            None => default,
            Some(v) if v >= 1 && v <= max as u64 => v as usize,
            Some(v) => {
                problems.push(Problem::new(
                    format!("limits.{name} = {v} is out of range"),
                    format!("a value from 1 to {max}"),
                    format!("set limits.{name} within range, or unset it to use the default ({default})"),
                    "docs/configuration.md#limits",
                ));
                default
            }
        }
    };
    Limits {
        max_connections: get(
            l.max_connections,
            "max_connections",
            d.max_connections,
            1_000_000,
        ),
        max_pipeline: get(l.max_pipeline, "max_pipeline", d.max_pipeline, 10_000_000),
        max_bulk_bytes: get(
            l.max_bulk_bytes,
            "max_bulk_bytes",
            d.max_bulk_bytes,
            d.max_bulk_bytes,
        ),
        connect_timeout: Duration::from_millis(get(
            l.connect_timeout_ms,
            "connect_timeout_ms",
            d.connect_timeout.as_millis() as usize,
            600_000,
        ) as u64),
    }
}

/// Reads a secret file into a zeroizing buffer; one trailing newline is dropped (as `echo`
/// and Kubernetes Secrets created from literals leave one).
fn read_secret_file(path: &Path, var: &str, problems: &mut Vec<Problem>) -> Option<Secret> {
    match std::fs::read_to_string(path) {
        Ok(mut text) => {
            let trimmed_len = text.trim_end_matches(['\n', '\r']).len();
            text.truncate(trimmed_len);
            Some(Secret::new(text))
        }
        Err(e) => {
            problems.push(Problem::new(
                format!("{var}={} cannot be read: {}", path.display(), e.kind()),
                "a readable file holding the secret",
                format!("check the path and permissions of {}", path.display()),
                "docs/configuration.md#secret-files",
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Fixture {
        dir: tempfile::TempDir,
        env: HashMap<String, String>,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            for f in ["ca.crt", "client.crt", "client.key"] {
                std::fs::write(dir.path().join(f), "pem").unwrap();
            }
            let p = |f: &str| dir.path().join(f).display().to_string();
            let env = HashMap::from([
                ("REDIS_URL".to_owned(), "rediss://localhost:6380".to_owned()),
                (
                    "REDIS_PASSWORD".to_owned(),
                    "a-long-enough-password-123".to_owned(),
                ),
                (
                    "REDIS_ENCRYPTION_KEY".to_owned(),
                    redcloak_crypto::generate_key().to_string(),
                ),
                ("REDIS_TLS_CA_CERT".to_owned(), p("ca.crt")),
                ("REDIS_TLS_CERT".to_owned(), p("client.crt")),
                ("REDIS_TLS_KEY".to_owned(), p("client.key")),
            ]);
            Fixture { dir, env }
        }

        fn set(mut self, k: &str, v: &str) -> Self {
            self.env.insert(k.to_owned(), v.to_owned());
            self
        }

        fn unset(mut self, k: &str) -> Self {
            self.env.remove(k);
            self
        }

        fn load(&self, overrides: &Overrides) -> Result<Config, ConfigError> {
            load(overrides, &|k| self.env.get(k).cloned())
        }
    }

    fn errors(f: &Fixture) -> String {
        f.load(&Overrides::default()).unwrap_err().to_string()
    }

    #[test]
    fn a_complete_environment_loads_with_defaults() {
        let f = Fixture::new();
        let c = f.load(&Overrides::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:6379");
        assert_eq!(c.upstream.to_string(), "rediss://localhost:6380/0");
        assert_eq!(c.password.expose(), "a-long-enough-password-123");
        assert_eq!(c.limits, Limits::default());
        assert!(!c.summary().contains("a-long-enough-password-123"));
        assert!(!format!("{c:?}").contains("a-long-enough-password-123"));
        assert!(!format!("{c:?}").contains(&f.env["REDIS_ENCRYPTION_KEY"][..20]));
    }

    #[test]
    fn layers_file_then_env_then_flags() {
        let f = Fixture::new()
            .set("REDCLOAK_LISTEN", "127.0.0.2:7000")
            .set("REDCLOAK_MAX_PIPELINE", "42");
        let file = f.dir.path().join("redcloak.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.3:1\"\n[limits]\nmax_connections = 7\nmax_pipeline = 9\n",
        )
        .unwrap();
        let o = Overrides {
            config_file: Some(file.clone()),
            listen: None,
        };
        let c = f.load(&o).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.2:7000", "env beats file");
        assert_eq!((c.limits.max_connections, c.limits.max_pipeline), (7, 42));
        let o = Overrides {
            config_file: Some(file),
            listen: Some("[::1]:9".into()),
        };
        assert_eq!(
            f.load(&o).unwrap().listen.to_string(),
            "[::1]:9",
            "flag beats env"
        );
    }

    #[test]
    fn numeric_looking_secrets_are_strings() {
        // figment would sniff these as numbers/booleans and echo them in its error.
        let f = Fixture::new()
            .set("REDIS_PASSWORD", "1234567890123456")
            .set("REDIS_USERNAME", "true");
        let c = f.load(&Overrides::default()).unwrap();
        assert_eq!(c.password.expose(), "1234567890123456");
        assert_eq!(c.username.as_deref(), Some("true"));
    }

    #[test]
    fn all_problems_are_reported_together_without_secrets() {
        let f = Fixture::new()
            .set("REDIS_URL", "redis://:pw-in-url-secret@localhost:6379")
            .set("REDIS_INSECURE_ALLOW_PLAINTEXT", "true")
            .set("REDIS_ENCRYPTION_KEY", "not-a-key-secret-value")
            .set("REDCLOAK_LISTEN", "0.0.0.0:6379")
            .unset("REDIS_PASSWORD")
            .unset("REDIS_TLS_CERT");
        let err = f.load(&Overrides::default()).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.problems.len(), 5, "{text}");
        for needle in [
            "redis:// (plaintext)",
            "no insecure mode",
            "not a loopback",
            "no Redis password",
            "REDIS_TLS_CERT is not set",
            "encryption key #1",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        for p in &err.problems {
            assert!(!p.fix.is_empty() && p.docs.starts_with("docs/"), "{p}");
        }
        assert!(
            !text.contains("pw-in-url-secret") && !text.contains("not-a-key-secret-value"),
            "{text}"
        );
    }

    #[test]
    fn missing_everything_says_how_to_set_up() {
        let text = load(&Overrides::default(), &|_| None)
            .unwrap_err()
            .to_string();
        for needle in [
            "REDIS_URL is not set",
            "no Redis password",
            "REDIS_TLS_CERT is not set",
            "REDIS_TLS_KEY is not set",
            "no encryption key",
            "redcloak keygen",
            "setup-secure-redis.sh",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }

    #[test]
    fn secret_files_and_aliases() {
        let f = Fixture::new()
            .unset("REDIS_PASSWORD")
            .unset("REDIS_ENCRYPTION_KEY");
        let pw = f.dir.path().join("pw");
        std::fs::write(&pw, "from-a-file-password\n").unwrap();
        let keys = f.dir.path().join("keys");
        let (k1, k2) = (
            redcloak_crypto::generate_key(),
            redcloak_crypto::generate_key(),
        );
        std::fs::write(&keys, format!("{}\n{}\n", *k1, *k2)).unwrap();
        let f = f
            .set("REDIS_PASSWORD_FILE", &pw.display().to_string())
            .set("REDIS_ENCRYPTION_KEY_FILE", &keys.display().to_string());
        let c = f.load(&Overrides::default()).unwrap();
        assert_eq!(c.password.expose(), "from-a-file-password");
        assert_eq!(c.key_ring.len(), 2);
        let f = f.set("REDIS_AUTH", "alias-wins-over-file");
        assert_eq!(
            f.load(&Overrides::default()).unwrap().password.expose(),
            "alias-wins-over-file"
        );
        let f = f
            .set("REDIS_PASSWORD_FILE", "/nonexistent/pw")
            .unset("REDIS_AUTH");
        assert!(errors(&f).contains("REDIS_PASSWORD_FILE=/nonexistent/pw cannot be read"));
    }

    #[test]
    fn password_from_url_is_used_when_nothing_else_is_set() {
        let f = Fixture::new().unset("REDIS_PASSWORD").set(
            "REDIS_URL",
            "rediss://app:url-password-123@localhost:6380/3",
        );
        let c = f.load(&Overrides::default()).unwrap();
        assert_eq!(
            (c.password.expose(), c.username.as_deref(), c.upstream.db),
            ("url-password-123", Some("app"), 3)
        );
    }

    #[test]
    fn the_example_file_is_valid() {
        let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../config/redcloak.example.toml");
        let settings: Settings = Figment::new()
            .merge(Toml::file_exact(&example))
            .extract()
            .expect("example parses");
        assert_eq!(settings.listen.as_deref(), Some("127.0.0.1:6379"));
        assert_eq!(
            settings.limits.max_pipeline,
            Some(Limits::default().max_pipeline as u64)
        );
        assert_eq!(
            settings.limits.max_connections,
            Some(Limits::default().max_connections as u64)
        );
    }

    #[test]
    fn file_errors_are_reported() {
        let f = Fixture::new();
        let file = f.dir.path().join("bad.toml");
        std::fs::write(&file, "[upstream]\nurll = \"x\"\n").unwrap();
        let err = f
            .load(&Overrides {
                config_file: Some(file),
                listen: None,
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("urll"), "{err}");
        let err = f
            .load(&Overrides {
                config_file: Some("/nonexistent.toml".into()),
                listen: None,
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent.toml does not exist"), "{err}");
        let err = errors(&f.set("REDCLOAK_MAX_CONNECTIONS", "lots"));
        assert!(
            err.contains("REDCLOAK_MAX_CONNECTIONS=lots is not a whole number"),
            "{err}"
        );
    }
}

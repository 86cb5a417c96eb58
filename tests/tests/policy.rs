//! The security policy (DESIGN.md §6, docs/security.md): one test per rule, run in every
//! environment where the rule could differ, against the real binary and, where a handshake
//! is involved, a real TLS redis-server. Each test asserts the exit code, the what / required
//! / fix of the message, and that no secret appears in the output.

use std::os::unix::fs::PermissionsExt;
use std::process::{Output, Stdio};
use std::time::Duration;

use redcloak_certs::Validity;
use redcloak_e2e::{
    assert_no_secret, free_port, output_text, random_secret, redcloak_command, run_redcloak,
    stack_env, wait_for, with_var, without_var, Pki, PkiSpec, Redcloak, RedisServer, Stack,
};

const EX_CONFIG: i32 = 78;
const EX_SECURITY: i32 = 77;
const EX_UNAVAILABLE: i32 = 69;

/// `None` = no environment variable (the production rules apply).
const ENVIRONMENTS: [Option<&str>; 4] = [
    None,
    Some("development"),
    Some("staging"),
    Some("production"),
];
const STRICT: [Option<&str>; 3] = [None, Some("staging"), Some("production")];

fn in_env(env: &[(String, String)], name: Option<&str>) -> Vec<(String, String)> {
    match name {
        Some(name) => with_var(env, "REDCLOAK_ENV", name),
        None => without_var(env, "REDCLOAK_ENV"),
    }
}

/// A complete, valid configuration whose Redis is not running (so nothing but the
/// configuration is tested, and a configuration that passes makes `check` exit 69).
struct Setup {
    pki: Pki,
    password: String,
    keys: String,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::generate(&dir.path().join("certs"));
        let password = random_secret(40);
        let keys = redcloak_crypto::generate_key().to_string();
        let env = stack_env(&pki, free_port(), &password, &keys);
        Setup {
            pki,
            password,
            keys,
            env,
            dir,
        }
    }

    fn secrets(&self) -> [&str; 2] {
        [&self.password, &self.keys]
    }
}

/// One `error:`/`warning:` block of the output.
#[derive(Debug)]
struct Block {
    what: String,
    required: String,
    fix: String,
    docs: String,
}

/// The block whose first line contains `needle`; fails with the whole output if none does.
#[track_caller]
fn block(text: &str, label: &str, needle: &str) -> Block {
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(what) = line.strip_prefix(&format!("{label}: ")) else {
            continue;
        };
        if !what.contains(needle) {
            continue;
        }
        let field = |n: usize, name: &str| {
            lines
                .get(i + n)
                .and_then(|l| l.strip_prefix(&format!("  {name}: ")))
                .unwrap_or_else(|| panic!("no {name}: line after {line:?}:\n{text}"))
                .to_owned()
        };
        return Block {
            what: what.to_owned(),
            required: field(1, "required"),
            fix: field(2, "fix"),
            docs: field(3, "docs"),
        };
    }
    panic!("no {label}: block containing {needle:?} in:\n{text}")
}

/// Asserts the exit code and no secret in the output; returns the output text.
#[track_caller]
fn expect(out: &Output, code: i32, secrets: &[&str]) -> String {
    let text = output_text(out);
    assert_eq!(out.status.code(), Some(code), "{text}");
    assert_no_secret(&text, secrets);
    text
}

// === environment ===

#[test]
fn the_environment_is_detected_and_logged_with_its_source() {
    let s = Setup::new();
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[], "environment: production (default"),
        (&[("REDCLOAK_ENV", "dev")], "environment: development (from REDCLOAK_ENV=dev)"),
        (&[("APP_ENV", "Staging"), ("NODE_ENV", "development")], "environment: staging (from APP_ENV=Staging)"),
        (
            &[("ENVIRONMENT", "qa"), ("NODE_ENV", "development")],
            "environment: development (from NODE_ENV=development); ignored ENVIRONMENT=qa",
        ),
        (&[("NODE_ENV", "test")], "environment: production (default: none of REDCLOAK_ENV, APP_ENV, ENVIRONMENT, NODE_ENV names an environment); ignored NODE_ENV=test"),
    ];
    for (vars, expected) in cases {
        let mut env = s.env.clone();
        for (k, v) in vars {
            env = with_var(&env, k, v);
        }
        // The startup log (Redis is down, which is not fatal: redcloak starts).
        let proxy = Redcloak::start(s.dir.path(), &env);
        assert!(
            wait_for(Duration::from_secs(5), || proxy
                .log_text()
                .contains(expected)),
            "{expected:?} not in the log:\n{}",
            proxy.log_text()
        );
        assert_no_secret(&proxy.log_text(), &s.secrets());
    }
}

#[test]
fn an_unknown_redcloak_env_is_a_configuration_error() {
    let s = Setup::new();
    let env = with_var(&s.env, "REDCLOAK_ENV", "prodution");
    // Other rules are still checked, with the strictest (production) rules.
    let env = with_var(&env, "REDIS_PASSWORD", "0123456789abcdefghij");
    for args in [&[][..], &["check"][..]] {
        let out = run_redcloak(&env, args);
        let t = expect(&out, EX_CONFIG, &[&s.keys, "0123456789abcdefghij"]);
        let b = block(&t, "error", "REDCLOAK_ENV=prodution");
        assert!(
            b.required.contains("production") && b.required.contains("development"),
            "{b:?}"
        );
        assert!(b.fix.contains("REDCLOAK_ENV=production"), "{b:?}");
        assert_eq!(b.docs, "docs/security.md#unknown-environment");
        let b = block(&t, "error", "20 characters long");
        assert!(
            b.required.contains("at least 32 characters in production"),
            "{b:?}"
        );
    }
}

// === upstream URL ===

#[test]
fn a_plaintext_redis_url_is_refused_in_every_environment() {
    let s = Setup::new();
    let url = format!("redis://:{}@127.0.0.1:6379", s.password);
    for name in ENVIRONMENTS {
        let env = in_env(&with_var(&s.env, "REDIS_URL", &url), name);
        let out = run_redcloak(&env, &[]);
        let t = expect(&out, EX_CONFIG, &s.secrets());
        let b = block(&t, "error", "redis:// (plaintext)");
        assert!(
            !b.what.contains("INSECURE"),
            "not mentioned when not set: {b:?}"
        );
        assert!(
            b.required.contains("rediss://") && b.required.contains("no plaintext mode"),
            "{b:?}"
        );
        assert!(b.fix.contains("REDIS_URL=rediss://"), "{b:?}");
        assert_eq!(b.docs, "docs/security.md#plaintext-redis-url");

        // The seed PRD's override is named and refused, never silently ignored.
        let env = with_var(&env, "REDIS_INSECURE_ALLOW_PLAINTEXT", "true");
        let t = expect(&run_redcloak(&env, &[]), EX_CONFIG, &s.secrets());
        let b = block(&t, "error", "redis:// (plaintext)");
        assert!(
            b.what.contains("REDIS_INSECURE_ALLOW_PLAINTEXT is set")
                && b.what.contains("no insecure mode"),
            "{b:?}"
        );
        assert!(
            b.fix.contains("unset REDIS_INSECURE_ALLOW_PLAINTEXT"),
            "{b:?}"
        );
    }
}

// === listener ===

#[test]
fn a_non_loopback_listener_is_refused_in_every_environment() {
    let s = Setup::new();
    for name in ENVIRONMENTS {
        for addr in [
            "0.0.0.0:6379",
            "[::]:6379",
            "10.1.2.3:6379",
            "redis.example.com:6379",
        ] {
            let env = in_env(&with_var(&s.env, "REDCLOAK_LISTEN", addr), name);
            let t = expect(&run_redcloak(&env, &[]), EX_CONFIG, &s.secrets());
            let b = block(&t, "error", "is not a loopback address");
            assert!(b.what.contains(addr), "{b:?}");
            assert!(
                b.required.contains("loopback") && b.required.contains("Unix socket"),
                "{b:?}"
            );
            assert!(b.fix.contains("REDCLOAK_LISTEN=127.0.0.1:6379"), "{b:?}");
            assert_eq!(b.docs, "docs/security.md#listener-not-loopback");
        }
    }
}

#[test]
fn a_unix_socket_never_grants_access_to_other_users() {
    let s = Setup::new();
    let sock = s.dir.path().join("redcloak.sock");
    let unix = with_var(
        &s.env,
        "REDCLOAK_LISTEN",
        &format!("unix:{}", sock.display()),
    );
    for name in ENVIRONMENTS {
        for mode in ["0666", "0606", "0777", "0o604"] {
            let env = in_env(&with_var(&unix, "REDCLOAK_LISTEN_MODE", mode), name);
            let t = expect(&run_redcloak(&env, &[]), EX_CONFIG, &s.secrets());
            let b = block(&t, "error", "lets every user on the machine connect");
            assert!(
                b.required.contains("0600") && b.required.contains("0660"),
                "{b:?}"
            );
            assert!(b.fix.contains("REDCLOAK_LISTEN_MODE=0600"), "{b:?}");
            assert_eq!(b.docs, "docs/security.md#socket-mode-world-accessible");
            assert!(!sock.exists());
        }
    }
    // Group access is allowed and applied (Redis is down: redcloak still listens).
    let env = with_var(&unix, "REDCLOAK_LISTEN_MODE", "0660");
    let log = std::fs::File::create(s.dir.path().join("unix.log")).unwrap();
    let mut child = redcloak_command(&env)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let up = wait_for(Duration::from_secs(15), || sock.exists());
    let mode = std::fs::metadata(&sock).map(|m| m.permissions().mode() & 0o777);
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(s.dir.path().join("unix.log")).unwrap_or_default();
    assert!(up, "no socket:\n{log}");
    assert_eq!(mode.unwrap(), 0o660, "{log}");
    assert!(log.contains("(mode 0660)"), "{log}");
}

// === TLS versions ===

#[test]
fn a_tls12_only_redis_is_refused_in_production_and_staging() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("certs"));
    let password = random_secret(40);
    let keys = redcloak_crypto::generate_key().to_string();
    let redis = RedisServer::start(dir.path(), &pki, &password, &["--tls-protocols", "TLSv1.2"]);
    let env = stack_env(&pki, redis.port, &password, &keys);
    for name in STRICT {
        for args in [&[][..], &["check"][..]] {
            let out = run_redcloak(&in_env(&env, name), args);
            let t = expect(&out, EX_SECURITY, &[&password, &keys]);
            let b = block(&t, "error", "TLS handshake");
            let shown = name.unwrap_or("production");
            assert!(
                b.what.contains(&format!(
                    "Redis does not offer TLS 1.3, which the {shown} environment requires"
                )),
                "{b:?}"
            );
            assert!(
                b.required.contains("TLS 1.3 in staging and production"),
                "{b:?}"
            );
            assert!(
                b.fix.contains("tls-protocols") && b.fix.contains("TLSv1.3"),
                "{b:?}"
            );
            assert_eq!(b.docs, "docs/security.md#tls-version-refused");
        }
    }
}

#[test]
fn a_tls12_only_redis_works_in_development() {
    let stack = Stack::start_with(
        &["--tls-protocols", "TLSv1.2"],
        &[("REDCLOAK_ENV", "development")],
    );
    let mut c = stack.client();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("over TLS 1.2")
        .query(&mut c)
        .unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut c).unwrap();
    assert_eq!(v, "over TLS 1.2");
    let log = stack.proxy.log_text();
    assert!(
        log.contains("TLS 1.2") && log.contains("Redis handshake ok"),
        "{log}"
    );
    let out = run_redcloak(&stack.env, &["check"]);
    let t = expect(&out, 0, &[&stack.password, &stack.keys]);
    assert!(
        t.contains("✅ live handshake") && t.contains("TLS (TLS 1.2)"),
        "{t}"
    );
    assert!(t.contains("TLS 1.2 and 1.3"), "{t}");
}

#[test]
fn production_negotiates_tls13() {
    let stack = Stack::start();
    let log = stack.proxy.log_text();
    assert!(
        log.contains("tls=TLS 1.3") || log.contains(r#""tls":"TLS 1.3""#),
        "{log}"
    );
}

// === server certificate ===

#[test]
fn an_expired_server_certificate_stops_startup_in_every_environment() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::issue(
        &dir.path().join("certs"),
        &PkiSpec {
            server_validity: Validity::expired(),
            ..PkiSpec::default()
        },
    );
    let password = random_secret(40);
    let keys = redcloak_crypto::generate_key().to_string();
    let redis = RedisServer::start(dir.path(), &pki, &password, &[]);
    let env = stack_env(&pki, redis.port, &password, &keys);
    for name in ENVIRONMENTS {
        let t = expect(
            &run_redcloak(&in_env(&env, name), &[]),
            EX_SECURITY,
            &[&password, &keys],
        );
        let b = block(&t, "error", "TLS handshake");
        assert!(b.what.contains("expired"), "{b:?}");
        assert!(b.required.contains("valid now"), "{b:?}");
        assert!(b.fix.contains("renew Redis's certificate"), "{b:?}");
        assert_eq!(b.docs, "docs/security.md#server-certificate-expired");
    }
}

// === client certificate (mTLS) ===

#[test]
fn a_client_certificate_and_key_are_required_in_every_environment() {
    let s = Setup::new();
    for name in ENVIRONMENTS {
        for var in ["REDIS_TLS_CERT", "REDIS_TLS_KEY"] {
            let env = in_env(&without_var(&s.env, var), name);
            let t = expect(&run_redcloak(&env, &[]), EX_CONFIG, &s.secrets());
            let b = block(&t, "error", &format!("{var} is not set"));
            assert!(b.required.contains("always required"), "{b:?}");
            assert!(
                b.fix.contains(&format!("set {var}=")) && b.fix.contains("setup-secure-redis.sh"),
                "{b:?}"
            );
            assert_eq!(b.docs, "docs/security.md#client-certificate-missing");
        }
        // A key that is not the certificate's.
        let env = in_env(
            &with_var(
                &s.env,
                "REDIS_TLS_KEY",
                &s.pki.server_key.display().to_string(),
            ),
            name,
        );
        let t = expect(&run_redcloak(&env, &[]), EX_CONFIG, &s.secrets());
        let b = block(&t, "error", "cannot be used together");
        assert!(
            b.required.contains("private key of the certificate"),
            "{b:?}"
        );
        assert_eq!(b.docs, "docs/security.md#client-key-mismatch");
        // A file that is not a certificate.
        let env = in_env(
            &with_var(
                &s.env,
                "REDIS_TLS_CERT",
                &s.pki.client_key.display().to_string(),
            ),
            name,
        );
        let t = expect(&run_redcloak(&env, &[]), EX_CONFIG, &s.secrets());
        let b = block(&t, "error", "REDIS_TLS_CERT=");
        assert!(b.what.contains("holds no certificate"), "{b:?}");
        assert_eq!(b.docs, "docs/security.md#client-certificate-invalid");
        let key = std::fs::read_to_string(&s.pki.client_key).unwrap();
        assert_no_secret(&t, &[key.lines().nth(1).unwrap()]);
    }
}

#[test]
fn an_expired_client_certificate_is_a_configuration_error_in_every_environment() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::issue(
        dir.path(),
        &PkiSpec {
            client_validity: Validity::expired(),
            ..PkiSpec::default()
        },
    );
    let password = random_secret(40);
    let keys = redcloak_crypto::generate_key().to_string();
    // Redis is not running: the expiry is found before connecting.
    let env = stack_env(&pki, free_port(), &password, &keys);
    for name in ENVIRONMENTS {
        for args in [&[][..], &["check"][..]] {
            let t = expect(
                &run_redcloak(&in_env(&env, name), args),
                EX_CONFIG,
                &[&password, &keys],
            );
            let b = block(&t, "error", "the client certificate REDIS_TLS_CERT=");
            assert!(b.what.contains("expired on"), "{b:?}");
            assert!(b.required.contains("valid now"), "{b:?}");
            assert!(b.fix.contains("issue a new client certificate"), "{b:?}");
            assert_eq!(b.docs, "docs/security.md#client-certificate-expired");
        }
    }
}

#[test]
fn a_client_certificate_expiring_within_14_days_warns_but_starts() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::issue(
        &dir.path().join("certs"),
        &PkiSpec {
            client_validity: Validity::days(5),
            ..PkiSpec::default()
        },
    );
    let password = random_secret(40);
    let keys = redcloak_crypto::generate_key().to_string();
    let redis = RedisServer::start(dir.path(), &pki, &password, &[]);
    let env = stack_env(&pki, redis.port, &password, &keys);
    for name in ENVIRONMENTS {
        let env = in_env(&env, name);
        let t = expect(&run_redcloak(&env, &["check"]), 0, &[&password, &keys]);
        assert!(
            t.contains("⚠️ client certificate (mTLS)") && t.contains("✅ live handshake"),
            "{t}"
        );
        assert!(t.contains("every rule passes (1 warning above)"), "{t}");
        let b = block(&t, "warning", "expires on");
        assert!(
            b.what.contains("(in 4 days)") || b.what.contains("(in 5 days)"),
            "{b:?}"
        );
        assert!(
            b.required.contains("at least 14 days before it expires"),
            "{b:?}"
        );
        assert_eq!(b.docs, "docs/security.md#client-certificate-expiring");
    }
    let proxy = Redcloak::start(dir.path(), &env);
    let log = proxy.log_text();
    assert!(
        log.contains("warning: the client certificate") && log.contains("redcloak is ready"),
        "{log}"
    );
}

#[test]
fn a_readable_private_key_is_an_error_in_production_and_staging_and_a_warning_in_development() {
    let s = Setup::new();
    for mode in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&s.pki.client_key, std::fs::Permissions::from_mode(mode)).unwrap();
        for name in STRICT {
            let t = expect(
                &run_redcloak(&in_env(&s.env, name), &[]),
                EX_CONFIG,
                &s.secrets(),
            );
            let b = block(&t, "error", "the private key REDIS_TLS_KEY=");
            assert!(b.what.contains(&format!("has mode {mode:04o}")), "{b:?}");
            assert!(b.required.contains("readable only by its owner"), "{b:?}");
            assert!(
                b.fix
                    .contains(&format!("chmod 600 {}", s.pki.client_key.display())),
                "{b:?}"
            );
            assert_eq!(b.docs, "docs/security.md#private-key-permissions");
        }
        // Development starts (Redis is down, which is not fatal) and says so.
        let env = in_env(&s.env, Some("development"));
        let proxy = Redcloak::start(s.dir.path(), &env);
        let log = proxy.log_text();
        assert!(
            log.contains(&format!(
                "warning: the private key REDIS_TLS_KEY={}",
                s.pki.client_key.display()
            )),
            "{log}"
        );
        assert!(log.contains("redcloak is ready"), "{log}");
        assert_no_secret(&log, &s.secrets());
        let t = expect(
            &run_redcloak(&env, &["check"]),
            EX_UNAVAILABLE,
            &s.secrets(),
        );
        assert!(t.contains("⚠️ client key file"), "{t}");
    }
    std::fs::set_permissions(&s.pki.client_key, std::fs::Permissions::from_mode(0o400)).unwrap();
    let t = expect(
        &run_redcloak(&s.env, &["check"]),
        EX_UNAVAILABLE,
        &s.secrets(),
    );
    assert!(
        t.contains("✅ client key file") && t.contains("mode 0400"),
        "{t}"
    );
}

// === AUTH ===

#[test]
fn a_password_is_required_in_every_environment() {
    let s = Setup::new();
    for name in ENVIRONMENTS {
        let env = in_env(&without_var(&s.env, "REDIS_PASSWORD"), name);
        let t = expect(&run_redcloak(&env, &[]), EX_CONFIG, &s.secrets());
        let b = block(&t, "error", "no Redis password is configured");
        let min = if name == Some("development") { 16 } else { 32 };
        assert!(
            b.required.contains(&format!("at least {min} characters")),
            "{b:?}"
        );
        assert!(
            b.fix.contains("openssl rand -hex 32") && b.fix.contains("REDIS_PASSWORD_FILE"),
            "{b:?}"
        );
        assert_eq!(b.docs, "docs/security.md#password-missing");
    }
}

/// What a refused password's message says: (what, required, docs anchor).
type Failure = (&'static str, &'static str, &'static str);

#[test]
fn password_strength_follows_the_environment() {
    let s = Setup::new();
    // (password, environment, the failure expected or None when accepted)
    let cases: &[(&str, Option<&str>, Option<Failure>)] = &[
        ("k3Vq9xZ2mL7pR4sT", Some("development"), None),
        (
            "k3Vq9xZ2mL7pR4s",
            Some("development"),
            Some((
                "is 15 characters long",
                "at least 16 characters in development",
                "password-too-short",
            )),
        ),
        ("foobaredfoobared", Some("development"), None),
        (
            "k3Vq9xZ2mL7pR4sTw8Yb",
            Some("staging"),
            Some((
                "is 20 characters long",
                "at least 32 characters in staging",
                "password-too-short",
            )),
        ),
        (
            "k3Vq9xZ2mL7pR4sTw8Yb",
            None,
            Some((
                "is 20 characters long",
                "at least 32 characters in production",
                "password-too-short",
            )),
        ),
        (
            "changeme12345678901234567890123456",
            Some("production"),
            Some((
                "well-known weak value",
                "a random password in production",
                "password-well-known",
            )),
        ),
        (
            "redisredisredisredisredisredisredis2024",
            Some("staging"),
            Some((
                "well-known weak value",
                "a random password in staging",
                "password-well-known",
            )),
        ),
        (
            "abcdefabcdefabcdefabcdefabcdefabcdef",
            Some("production"),
            Some((
                "only 6 distinct characters",
                "at least 10 distinct characters",
                "password-not-random",
            )),
        ),
        ("k3Vq9xZ2mL7pR4sTw8Yb5nC1hJ6gF0dE", Some("production"), None),
    ];
    for &(password, name, expected) in cases {
        let env = in_env(&with_var(&s.env, "REDIS_PASSWORD", password), name);
        let secrets = [password, &s.keys];
        match expected {
            Some((what, required, anchor)) => {
                let t = expect(&run_redcloak(&env, &[]), EX_CONFIG, &secrets);
                let b = block(&t, "error", what);
                assert!(b.what.contains("(from REDIS_PASSWORD)"), "{b:?}");
                assert!(
                    b.required.contains(required),
                    "{password} in {name:?}: {b:?}"
                );
                assert!(b.fix.contains("openssl rand -hex 32"), "{b:?}");
                assert_eq!(b.docs, format!("docs/security.md#{anchor}"));
            }
            None => {
                // Accepted: every rule passes; only the (stopped) Redis is missing.
                let t = expect(&run_redcloak(&env, &["check"]), EX_UNAVAILABLE, &secrets);
                assert!(
                    t.contains("✅ AUTH: password from REDIS_PASSWORD"),
                    "{password}: {t}"
                );
                assert!(!t.contains("❌ AUTH"), "{t}");
            }
        }
    }
    // The same rules apply to a password from a file or the URL.
    let file = s.dir.path().join("password");
    std::fs::write(&file, "short-password-x\n").unwrap();
    let env = with_var(
        &without_var(&s.env, "REDIS_PASSWORD"),
        "REDIS_PASSWORD_FILE",
        &file.display().to_string(),
    );
    let t = expect(
        &run_redcloak(&env, &[]),
        EX_CONFIG,
        &["short-password-x", &s.keys],
    );
    block(
        &t,
        "error",
        "the Redis password (from REDIS_PASSWORD_FILE) is 16 characters long",
    );
    let url = env
        .iter()
        .find(|(k, _)| k == "REDIS_URL")
        .unwrap()
        .1
        .replace("rediss://", "rediss://:url-password-1234@");
    let env = with_var(&without_var(&env, "REDIS_PASSWORD_FILE"), "REDIS_URL", &url);
    let t = expect(
        &run_redcloak(&env, &[]),
        EX_CONFIG,
        &["url-password-1234", &s.keys],
    );
    block(
        &t,
        "error",
        "the Redis password (from REDIS_URL) is 17 characters long",
    );
}

#[test]
fn a_development_password_of_16_characters_works_against_real_redis() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("certs"));
    let password = "k3Vq9xZ2mL7pR4sT";
    let keys = redcloak_crypto::generate_key().to_string();
    let redis = RedisServer::start(dir.path(), &pki, password, &[]);
    let env = stack_env(&pki, redis.port, password, &keys);
    let t = expect(
        &run_redcloak(&in_env(&env, Some("dev")), &["check"]),
        0,
        &[password, &keys],
    );
    assert!(t.contains("meets the development rules"), "{t}");
    let t = expect(
        &run_redcloak(&env, &["check"]),
        EX_CONFIG,
        &[password, &keys],
    );
    block(&t, "error", "is 16 characters long");
}

// === encryption keys ===

#[test]
fn encryption_keys_are_required_valid_and_never_generated_in_every_environment() {
    let s = Setup::new();
    let other = redcloak_crypto::generate_key().to_string();
    let unpadded = s.keys.trim_end_matches('=').to_owned();
    for name in ENVIRONMENTS {
        let env = in_env(&without_var(&s.env, "REDIS_ENCRYPTION_KEY"), name);
        let t = expect(&run_redcloak(&env, &[]), EX_CONFIG, &s.secrets());
        let b = block(&t, "error", "no encryption key is configured");
        assert!(
            b.required.contains("never generates one at startup"),
            "{b:?}"
        );
        assert!(b.fix.contains("redcloak keygen"), "{b:?}");
        assert_eq!(b.docs, "docs/security.md#encryption-key-missing");

        for (list, what) in [
            (
                format!("{other},{}", s.password),
                "encryption key #2 is not a valid Fernet key",
            ),
            (
                format!("{},{other},{unpadded}", s.keys),
                "encryption keys #1 and #3 are the same key",
            ),
            (format!("{other},"), "encryption key #2 is empty"),
        ] {
            let env = in_env(&with_var(&s.env, "REDIS_ENCRYPTION_KEY", &list), name);
            let t = expect(
                &run_redcloak(&env, &[]),
                EX_CONFIG,
                &[&s.password, &s.keys, &other],
            );
            let b = block(&t, "error", what);
            assert!(b.what.contains("(in REDIS_ENCRYPTION_KEY)"), "{b:?}");
            assert!(b.required.contains("valid Fernet keys"), "{b:?}");
            assert!(b.fix.contains("redcloak keygen"), "{b:?}");
            assert_eq!(b.docs, "docs/security.md#encryption-key-invalid");
        }
    }
    // From a file: one key per line.
    let file = s.dir.path().join("keys");
    std::fs::write(&file, format!("{other}\n{}\n", s.keys)).unwrap();
    let env = with_var(
        &without_var(&s.env, "REDIS_ENCRYPTION_KEY"),
        "REDIS_ENCRYPTION_KEY_FILE",
        &file.display().to_string(),
    );
    let t = expect(
        &run_redcloak(&env, &["check"]),
        EX_UNAVAILABLE,
        &[&s.password, &s.keys, &other],
    );
    assert!(
        t.contains("✅ encryption keys: 2 Fernet keys from REDIS_ENCRYPTION_KEY_FILE"),
        "{t}"
    );
}

// === redcloak check ===

#[test]
fn check_prints_the_redacted_configuration_every_rule_and_the_handshake() {
    let stack = Stack::start();
    let out = run_redcloak(&stack.env, &["check"]);
    let t = expect(&out, 0, &[&stack.password, &stack.keys]);
    for needle in [
        "redcloak check (production environment)",
        "effective configuration (secrets redacted):",
        "password         [redacted] (40 characters, from REDIS_PASSWORD)",
        "tls.versions     TLS 1.3 only",
        "✅ environment: production (default",
        "✅ settings:",
        "✅ plaintext listener:",
        "✅ upstream URL: rediss://127.0.0.1:",
        "✅ TLS versions: TLS 1.3 only in production",
        "✅ server certificate:",
        "✅ client certificate (mTLS):",
        "is the certificate's private key",
        "✅ client key file:",
        "✅ AUTH:",
        "✅ encryption keys: 1 Fernet key from REDIS_ENCRYPTION_KEY",
        "✅ live handshake:",
        "TLS (TLS 1.3) + client certificate + AUTH + PING ok",
        "result: ✅ every rule passes",
    ] {
        assert!(t.contains(needle), "missing {needle:?}:\n{t}");
    }
    assert!(!t.contains("⚠️") && !t.contains("❌"), "{t}");
    let key = std::fs::read_to_string(&stack.pki.client_key).unwrap();
    assert_no_secret(&t, &[key.lines().nth(1).unwrap()]);
}

#[test]
fn check_lists_every_failure_and_skips_the_handshake() {
    let s = Setup::new();
    let env = with_var(&s.env, "REDCLOAK_LISTEN", "0.0.0.0:6379");
    let env = with_var(&env, "REDIS_PASSWORD", "password");
    let env = without_var(&env, "REDIS_ENCRYPTION_KEY");
    let out = run_redcloak(&env, &["check"]);
    let t = expect(&out, EX_CONFIG, &[&s.keys]);
    for needle in [
        "❌ plaintext listener",
        "❌ AUTH: the Redis password (from REDIS_PASSWORD) is 8 characters long",
        "❌ AUTH: the Redis password (from REDIS_PASSWORD) is a well-known weak value",
        "❌ encryption keys: no encryption key is configured",
        "✅ upstream URL",
        "⏭️ live handshake: skipped",
        "result: ❌ 5 problem(s)",
    ] {
        assert!(t.contains(needle), "missing {needle:?}:\n{t}");
    }
    assert_eq!(t.matches("\nerror: ").count(), 5, "{t}");
}

#[test]
fn check_fails_when_redis_is_unreachable() {
    let s = Setup::new();
    let t = expect(
        &run_redcloak(&s.env, &["check"]),
        EX_UNAVAILABLE,
        &s.secrets(),
    );
    let b = block(&t, "error", "cannot reach Redis");
    assert!(b.fix.contains("start Redis or correct REDIS_URL"), "{b:?}");
    assert_eq!(b.docs, "docs/security.md#redis-unreachable");
    assert!(t.contains("❌ live handshake"), "{t}");
    // `run` starts in that case (tests/tests/startup.rs), so check must not say it would not.
    assert!(!t.contains("would not start"), "{t}");
    let result = t
        .lines()
        .find(|l| l.starts_with("result: "))
        .unwrap_or_else(|| panic!("no result line:\n{t}"));
    for needle in [
        "Redis is unreachable",
        "would start anyway",
        "degraded mode",
        "-TRYAGAIN",
        "retries",
    ] {
        assert!(result.contains(needle), "{needle:?} not in {result:?}");
    }
}

/// A configuration problem still means `run` would not start, even with Redis down.
#[test]
fn check_with_a_bad_setting_and_redis_down_says_redcloak_would_not_start() {
    let s = Setup::new();
    let env = with_var(&s.env, "REDIS_ENCRYPTION_KEY", "not-a-key");
    let t = expect(&run_redcloak(&env, &["check"]), EX_CONFIG, &s.secrets());
    assert!(t.contains("redcloak would not start"), "{t}");
}

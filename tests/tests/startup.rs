//! Startup: configuration errors stop redcloak with what / required / fix, security failures
//! against a real Redis stop it, an unreachable Redis does not; secrets never appear in output.

use std::process::Output;
use std::time::Duration;

use redcloak_e2e::{
    assert_no_secret, free_port, output_text, random_secret, run_redcloak, stack_env, wait_for,
    with_var, Pki, PkiSpec, Redcloak, RedisServer, Stack,
};

fn run(env: &[(String, String)], args: &[&str]) -> Output {
    run_redcloak(env, args)
}

fn text(out: &Output) -> String {
    output_text(out)
}

fn with(env: &[(String, String)], k: &str, v: &str) -> Vec<(String, String)> {
    with_var(env, k, v)
}

#[test]
fn nothing_configured_lists_every_problem_and_exits_78() {
    let out = run(&[], &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(78), "{t}");
    for needle in [
        "error: REDIS_URL is not set",
        "required:",
        "fix:",
        "docs:",
        "no Redis password",
        "REDIS_TLS_CERT is not set",
        "no encryption key",
        "Nothing was served",
    ] {
        assert!(t.contains(needle), "missing {needle:?}:\n{t}");
    }
}

#[test]
fn insecure_settings_are_startup_errors_without_echoing_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path());
    let password = random_secret(40);
    let key = redcloak_crypto::generate_key().to_string();
    let env = stack_env(&pki, 6390, &password, &key);

    let plain = with(
        &env,
        "REDIS_URL",
        &format!("redis://:{password}@127.0.0.1:6379"),
    );
    let plain = with(&plain, "REDIS_INSECURE_ALLOW_PLAINTEXT", "true");
    let out = run(&plain, &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(78), "{t}");
    assert!(
        t.contains("redis:// (plaintext)")
            && t.contains("no insecure mode")
            && t.contains("rediss://"),
        "{t}"
    );

    let open = with(&env, "REDCLOAK_LISTEN", "0.0.0.0:6379");
    let out = run(&open, &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(78), "{t}");
    assert!(
        t.contains("not a loopback address") && t.contains("REDCLOAK_LISTEN=127.0.0.1:6379"),
        "{t}"
    );

    let bad_key = with(&env, "REDIS_ENCRYPTION_KEY", &format!("{key},{password}"));
    let out = run(&bad_key, &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(78), "{t}");
    assert!(t.contains("encryption key #2"), "{t}");

    let no_file = with(&env, "REDIS_TLS_KEY", "/nonexistent/client.key");
    let out = run(&no_file, &[]);
    assert_eq!(out.status.code(), Some(78));
    assert!(text(&out).contains("REDIS_TLS_KEY=/nonexistent/client.key does not exist"));

    let wrong_key = with(&env, "REDIS_TLS_KEY", &pki.server_key.display().to_string());
    let out = run(&wrong_key, &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(78), "{t}");
    assert!(t.contains("cannot be used together"), "{t}");

    for out in [run(&plain, &[]), run(&bad_key, &[]), run(&open, &[])] {
        let t = text(&out);
        assert!(
            !t.contains(&password) && !t.contains(&key),
            "a secret leaked:\n{t}"
        );
    }
}

#[test]
fn redis_rejecting_the_password_or_the_certificate_stops_startup() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("certs"));
    let password = random_secret(40);
    let redis = RedisServer::start(dir.path(), &pki, &password, &[]);
    let key = redcloak_crypto::generate_key().to_string();
    let env = stack_env(&pki, redis.port, &password, &key);
    let other = Pki::generate(&dir.path().join("other"));

    // A server certificate that does not name the host in REDIS_URL (127.0.0.1).
    let d = dir.path().join("named");
    let named_pki = Pki::issue(
        &d,
        &PkiSpec {
            server_sans: &["redis.internal"],
            ..PkiSpec::default()
        },
    );
    let named_redis = RedisServer::start(&d, &named_pki, &password, &[]);

    // Verification is the same in every environment: there is no way to skip it.
    for environment in ["production", "development"] {
        let env = with(&env, "REDCLOAK_ENV", environment);
        let expect = |out: &Output, anchor: &str, secrets: &[&str]| {
            let t = text(out);
            assert_eq!(out.status.code(), Some(77), "{environment}: {t}");
            assert!(
                t.contains(&format!("docs: docs/security.md#{anchor}")),
                "{t}"
            );
            assert!(t.contains("required: ") && t.contains("fix: "), "{t}");
            assert_no_secret(&t, secrets);
            t
        };

        let wrong = random_secret(40);
        let t = expect(
            &run(&with(&env, "REDIS_PASSWORD", &wrong), &[]),
            "auth-rejected",
            &[&wrong, &password, &key],
        );
        assert!(
            t.contains("refused redcloak's AUTH")
                && t.contains("WRONGPASS")
                && t.contains("REDIS_PASSWORD"),
            "{t}"
        );

        // A CA that did not sign Redis's certificate.
        let t = expect(
            &run(
                &with(
                    &env,
                    "REDIS_TLS_CA_CERT",
                    &other.ca_cert.display().to_string(),
                ),
                &[],
            ),
            "server-certificate-untrusted",
            &[&password, &key],
        );
        assert!(
            t.contains("TLS handshake")
                && t.contains("invalid peer certificate")
                && t.contains("set REDIS_TLS_CA_CERT to the CA that signed Redis's tls-cert-file"),
            "{t}"
        );

        let named_env = with(
            &stack_env(&named_pki, named_redis.port, &password, &key),
            "REDCLOAK_ENV",
            environment,
        );
        let t = expect(
            &run(&named_env, &[]),
            "server-name-mismatch",
            &[&password, &key],
        );
        assert!(
            t.contains("TLS handshake")
                && t.contains("not valid for name")
                && t.contains("names 127.0.0.1 (the host in REDIS_URL)")
                && t.contains("--san 127.0.0.1"),
            "{t}"
        );

        // A client certificate Redis does not trust.
        let t = expect(
            &run(
                &with(
                    &with(
                        &env,
                        "REDIS_TLS_CERT",
                        &other.client_cert.display().to_string(),
                    ),
                    "REDIS_TLS_KEY",
                    &other.client_key.display().to_string(),
                ),
                &[],
            ),
            "client-certificate-rejected",
            &[&password, &key],
        );
        assert!(t.contains("tls-ca-cert-file"), "{t}");
    }

    // `redcloak check` passes on the good configuration.
    let out = run(&env, &["check"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("✅") && !t.contains(&password), "{t}");
}

#[test]
fn an_unreachable_redis_is_not_fatal_and_clients_get_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path());
    let env = stack_env(
        &pki,
        free_port(),
        &random_secret(40),
        &redcloak_crypto::generate_key(),
    );
    let proxy = Redcloak::start(dir.path(), &env);
    let client = redis::Client::open(format!("redis://{}", proxy.addr)).unwrap();
    let mut c = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap();
    for _ in 0..3 {
        let err = redis::cmd("GET")
            .arg("k")
            .query::<Option<String>>(&mut c)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("redcloak") && err.contains("unreachable"),
            "{err}"
        );
    }
    // The connection stays open and answers every command.
    let ok: String = redis::cmd("AUTH").arg("x").query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    assert!(wait_for(Duration::from_secs(2), || proxy
        .log_text()
        .contains("unreachable")));
}

#[test]
fn trace_logs_of_a_full_run_hold_no_secret_and_no_value() {
    let stack = Stack::start_with(&[], &[("REDCLOAK_LOG", "trace")]);
    let mut c = stack.client();
    let value = "top-secret-value-4711";
    let _: () = redis::cmd("SET")
        .arg("secret-key-name")
        .arg(value)
        .query(&mut c)
        .unwrap();
    let _: String = redis::cmd("GET")
        .arg("secret-key-name")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("AUTH")
        .arg("client-password-0815")
        .query(&mut c)
        .unwrap();
    drop(c);
    std::thread::sleep(Duration::from_millis(200));
    let log = stack.proxy.log_text();
    assert!(
        log.contains("redcloak is ready"),
        "the log was captured: {log}"
    );
    for secret in [
        value,
        "client-password-0815",
        &stack.password,
        &stack.keys,
        "secret-key-name",
    ] {
        assert!(!log.contains(secret), "{secret:?} appears in the trace log");
    }
}

#[test]
fn keygen_prints_a_fresh_valid_key() {
    let a = run(&[], &["keygen"]);
    let b = run(&[], &["keygen"]);
    let (a, b) = (
        String::from_utf8(a.stdout).unwrap(),
        String::from_utf8(b.stdout).unwrap(),
    );
    assert_ne!(a, b);
    assert!(redcloak_crypto::KeyRing::parse(a.trim()).is_ok(), "{a}");
}

#[test]
fn certs_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("c");
    let out = run(&[], &["certs", "--dir", d.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let before = std::fs::read(d.join("ca.key")).unwrap();
    let out = run(&[], &["certs", "--dir", d.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("exists"), "{}", text(&out));
    assert_eq!(std::fs::read(d.join("ca.key")).unwrap(), before);
}

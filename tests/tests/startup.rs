//! Startup: configuration errors stop redcloak with what / required / fix, security failures
//! against a real Redis stop it, an unreachable Redis does not; secrets never appear in output.

use std::process::Output;
use std::time::Duration;

use redcloak_e2e::{
    free_port, random_secret, redcloak_command, stack_env, wait_for, Pki, Redcloak, RedisServer,
    Stack,
};

fn run(env: &[(String, String)], args: &[&str]) -> Output {
    let mut cmd = redcloak_command(env);
    if !env.iter().any(|(k, _)| k == "REDCLOAK_LISTEN") {
        cmd.env("REDCLOAK_LISTEN", format!("127.0.0.1:{}", free_port()));
    }
    cmd.args(args);
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Bounded: a process that would serve forever is killed after 20 s (and the test fails).
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(20));
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
    });
    let out = child.wait_with_output().unwrap();
    drop(killer);
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn with(env: &[(String, String)], k: &str, v: &str) -> Vec<(String, String)> {
    let mut env: Vec<_> = env.iter().filter(|(n, _)| n != k).cloned().collect();
    env.push((k.into(), v.into()));
    env
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

    let wrong = random_secret(40);
    let out = run(&with(&env, "REDIS_PASSWORD", &wrong), &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(77), "{t}");
    assert!(
        t.contains("refused redcloak's AUTH")
            && t.contains("WRONGPASS")
            && t.contains("REDIS_PASSWORD"),
        "{t}"
    );
    assert!(!t.contains(&wrong) && !t.contains(&password), "{t}");

    // A CA that did not sign Redis's certificate.
    let other = Pki::generate(&dir.path().join("other"));
    let out = run(
        &with(
            &env,
            "REDIS_TLS_CA_CERT",
            &other.ca_cert.display().to_string(),
        ),
        &[],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(77), "{t}");
    assert!(
        t.contains("TLS handshake") && t.contains("invalid peer certificate"),
        "{t}"
    );

    // A server certificate that does not name the host in REDIS_URL (127.0.0.1).
    let ca = redcloak_certs::Ca::new("test CA", redcloak_certs::Validity::days(1)).unwrap();
    let named = ca
        .issue_server(
            "redis",
            &["redis.internal"],
            redcloak_certs::Validity::days(1),
        )
        .unwrap();
    let client = ca
        .issue_client("redcloak", redcloak_certs::Validity::days(1))
        .unwrap();
    let d = dir.path().join("named");
    std::fs::create_dir_all(&d).unwrap();
    let write = |name: &str, pem: &str| {
        let path = d.join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    let named_pki = Pki {
        ca_cert: write("ca.crt", ca.cert_pem()),
        server_cert: write("redis.crt", &named.cert_pem),
        server_key: write("redis.key", named.key_pem()),
        client_cert: write("client.crt", &client.cert_pem),
        client_key: write("client.key", client.key_pem()),
    };
    let named_redis = RedisServer::start(&d, &named_pki, &password, &[]);
    let out = run(
        &stack_env(&named_pki, named_redis.port, &password, &key),
        &[],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(77), "{t}");
    assert!(
        t.contains("TLS handshake") && t.contains("not valid for name"),
        "{t}"
    );

    // A client certificate Redis does not trust.
    let out = run(
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
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(77), "{t}");

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
            err.contains("redcloak") && err.contains("unavailable"),
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

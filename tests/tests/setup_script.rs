//! The one-command setup, in a temporary copy of the repository (never in the real checkout):
//! `scripts/setup-secure-redis.sh` generates certificates, password and key, starts a TLS-only
//! redis-server, and redcloak started from the generated `.env` round-trips values that Redis
//! stores encrypted; re-running changes nothing; `--force` needs a confirmation; `make run` /
//! `make stop`; `init-redis-tls.sh`; every script's `--help`; the quickstart's client examples.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use redcloak_e2e::scripts::{
    alive, plain_ping, repo_root, run_bounded, spawn_script, tls_ping, DotEnv, TempRepo,
};
use redcloak_e2e::{assert_no_secret, audit, free_port, wait_for, Direct, Redcloak, Stack};
use redis::Commands;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const PKI_FILES: [&str; 6] = [
    "ca.crt",
    "ca.key",
    "redis.crt",
    "redis.key",
    "client.crt",
    "client.key",
];

fn pki_bytes(repo: &TempRepo) -> Vec<Vec<u8>> {
    PKI_FILES
        .iter()
        .map(|f| read(&repo.path(&format!("certs/{f}"))))
        .collect()
}

fn redcloak_env(env: &DotEnv) -> Vec<(String, String)> {
    env.vars.clone()
}

fn make(repo: &TempRepo, target: &str, seconds: u64) -> redcloak_e2e::scripts::Ran {
    let mut cmd = repo.command("make", &[]);
    cmd.arg(target);
    run_bounded(cmd, "", Duration::from_secs(seconds))
}

fn connect(proxy: &Redcloak) -> redis::Connection {
    redis::Client::open(format!("redis://{}", proxy.addr))
        .expect("client")
        .get_connection_with_timeout(Duration::from_secs(10))
        .expect("connect through redcloak")
}

#[test]
fn setup_then_redcloak_from_env_round_trips_encrypted_values_and_rerun_keeps_everything() {
    let repo = TempRepo::new();
    let first = repo.run("setup-secure-redis.sh", &[], &[], "");
    first.assert_ok();
    let out = first.text();
    for needle in [
        "==> certificates: generating",
        "==> .env: set REDIS_PASSWORD",
        "==> .env: set REDIS_ENCRYPTION_KEY",
        "==> starting redis-server (TLS only",
        "==> redcloak check: TLS + client certificate + AUTH + PING ok",
    ] {
        assert!(out.contains(needle), "missing {needle:?}:\n{out}");
    }

    // .env: every variable redcloak needs, a strong password, a valid Fernet key.
    let env = repo.env();
    assert_eq!(env.req("REDCLOAK_ENV"), "development");
    assert_eq!(
        env.req("REDIS_URL"),
        format!("rediss://localhost:{}", repo.redis_port)
    );
    let password = env.req("REDIS_PASSWORD").to_owned();
    assert!(
        password.len() >= 32 && password.chars().all(|c| c.is_ascii_hexdigit()),
        "weak password shape ({} chars)",
        password.len()
    );
    let key = env.req("REDIS_ENCRYPTION_KEY").to_owned();
    let ring = redcloak_crypto::KeyRing::parse(&key).expect("a valid Fernet key");
    for (var, file) in [
        ("REDIS_TLS_CA_CERT", "certs/ca.crt"),
        ("REDIS_TLS_CERT", "certs/client.crt"),
        ("REDIS_TLS_KEY", "certs/client.key"),
    ] {
        assert_eq!(Path::new(env.req(var)), repo.path(file), "{var}");
    }
    assert_no_secret(&out, &[&password, &key]);

    // Secrets on disk are owner-only.
    for file in [
        "certs/ca.key",
        "certs/redis.key",
        "certs/client.key",
        ".env",
        ".run/redis.conf",
    ] {
        assert_eq!(mode(&repo.path(file)), 0o600, "{file}");
    }
    assert_eq!(mode(&repo.path(".run")), 0o700);

    // Redis: TLS only, client certificate and password required.
    let port = repo.redis_port;
    let pki = env.pki();
    let plain = plain_ping(port);
    assert!(
        !plain.contains("PONG"),
        "plaintext PING was answered: {plain}"
    );
    let no_cert = tls_ping(&pki.ca_cert, None, None, port);
    assert!(
        !no_cert.contains("PONG") && !no_cert.contains("NOAUTH"),
        "TLS without a client certificate was accepted: {no_cert}"
    );
    let client = Some((pki.client_cert.as_path(), pki.client_key.as_path()));
    let no_auth = tls_ping(&pki.ca_cert, client, None, port);
    assert!(no_auth.contains("NOAUTH"), "PING without AUTH: {no_auth}");
    assert_eq!(
        tls_ping(&pki.ca_cert, client, Some(&password), port),
        "+PONG"
    );
    let redis_pid = repo
        .live_pid("redis.pid", "redis-server")
        .expect("redis-server running");

    // redcloak from the generated .env: values round-trip and Redis stores ciphertext.
    let proxy = Redcloak::start(repo.scratch(), &redcloak_env(&env));
    let mut c = connect(&proxy);
    let binary: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let _: () = c.set("greeting", "hello world").unwrap();
    let _: () = c.set("blob", &binary).unwrap();
    let _: () = c.hset("user:1", "name", "Ada").unwrap();
    let _: () = c.rpush("queue", &["a", "b", "c"]).unwrap();
    assert_eq!(c.get::<_, String>("greeting").unwrap(), "hello world");
    assert_eq!(c.get::<_, Vec<u8>>("blob").unwrap(), binary);
    assert_eq!(c.hget::<_, _, String>("user:1", "name").unwrap(), "Ada");
    assert_eq!(
        c.lrange::<_, Vec<String>>("queue", 0, -1).unwrap(),
        ["a", "b", "c"]
    );
    let mut direct = Direct::connect(&pki, port, &password).expect("direct TLS to Redis");
    let stored = direct.get(b"greeting").expect("stored");
    assert!(
        !stored.windows(5).any(|w| w == b"hello"),
        "plaintext in Redis"
    );
    assert_eq!(audit::assert_all_values_encrypted(&mut direct, &ring), 6);

    // Re-running: nothing is replaced, the same Redis keeps running, values stay readable.
    let env_before = read(&repo.path(".env"));
    let pki_before = pki_bytes(&repo);
    let again = repo.run("setup-secure-redis.sh", &[], &[], "");
    again.assert_ok();
    let t = again.text();
    assert!(
        t.contains("keeping the existing ones") && t.contains("nothing existing was replaced"),
        "{t}"
    );
    assert!(
        t.contains(&format!("already running (pid {redis_pid})")),
        "{t}"
    );
    assert!(
        !t.contains(".env: set"),
        "a re-run must not set anything:\n{t}"
    );
    assert_eq!(
        read(&repo.path(".env")),
        env_before,
        ".env changed on re-run"
    );
    assert_eq!(
        pki_bytes(&repo),
        pki_before,
        "certificates changed on re-run"
    );
    assert_eq!(c.get::<_, String>("greeting").unwrap(), "hello world");

    // --force without the confirmation changes nothing.
    for answer in ["", "yes\n", "no\n"] {
        let r = repo.run("setup-secure-redis.sh", &["--force"], &[], answer);
        assert_eq!(r.code, Some(1), "{}", r.text());
        assert!(
            r.text().contains("aborted; nothing changed"),
            "{}",
            r.text()
        );
        assert_eq!(read(&repo.path(".env")), env_before);
        assert_eq!(pki_bytes(&repo), pki_before);
    }
    assert!(alive(redis_pid), "an aborted --force stopped Redis");
    // A fresh redcloak from the same .env reads what the first one wrote.
    drop(c);
    drop(proxy);
    let proxy = Redcloak::start(repo.scratch(), &redcloak_env(&repo.env()));
    assert_eq!(
        connect(&proxy).get::<_, Vec<u8>>("blob").unwrap(),
        binary,
        "the value written before the re-run does not read back"
    );
}

#[test]
fn force_regenerates_secrets_after_confirmation_and_keeps_a_backup() {
    let repo = TempRepo::new();
    repo.run("setup-secure-redis.sh", &["--no-start"], &[], "")
        .assert_ok();
    // A setting of the developer's own survives --force.
    let mut text = std::fs::read_to_string(repo.path(".env")).unwrap();
    text.push_str("APP_SETTING=kept\n");
    std::fs::write(repo.path(".env"), text).unwrap();
    let old = repo.env();
    let old_pki = pki_bytes(&repo);

    // --renew-certs: new certificates, same password and key.
    let r = repo.run(
        "setup-secure-redis.sh",
        &["--renew-certs", "--no-start"],
        &[],
        "",
    );
    r.assert_ok();
    let renewed = repo.env();
    assert_eq!(
        renewed.req("REDIS_ENCRYPTION_KEY"),
        old.req("REDIS_ENCRYPTION_KEY")
    );
    assert_eq!(renewed.req("REDIS_PASSWORD"), old.req("REDIS_PASSWORD"));
    let renewed_pki = pki_bytes(&repo);
    assert!(
        renewed_pki.iter().zip(&old_pki).all(|(a, b)| a != b),
        "--renew-certs must replace all six files"
    );

    let r = repo.run(
        "setup-secure-redis.sh",
        &["--force", "--no-start"],
        &[],
        "regenerate\n",
    );
    r.assert_ok();
    let t = r.text();
    assert!(t.contains("moved the old certificates"), "{t}");
    let new = repo.env();
    assert_ne!(
        new.req("REDIS_ENCRYPTION_KEY"),
        old.req("REDIS_ENCRYPTION_KEY")
    );
    assert_ne!(new.req("REDIS_PASSWORD"), old.req("REDIS_PASSWORD"));
    assert_eq!(new.req("REDIS_URL"), old.req("REDIS_URL"));
    assert_eq!(new.req("APP_SETTING"), "kept");
    assert_ne!(pki_bytes(&repo), renewed_pki);
    assert_no_secret(
        &t,
        &[
            old.req("REDIS_ENCRYPTION_KEY"),
            new.req("REDIS_ENCRYPTION_KEY"),
            new.req("REDIS_PASSWORD"),
        ],
    );

    // The backup holds the old key (to read old values) and the old certificates, owner-only.
    let backups: Vec<_> = std::fs::read_dir(repo.path(".run"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("backup-"))
        .collect();
    assert_eq!(backups.len(), 1, "one backup directory");
    let backup = backups[0].path();
    assert_eq!(mode(&backup), 0o700);
    let saved = DotEnv::read(&backup.join(".env"));
    assert_eq!(
        saved.req("REDIS_ENCRYPTION_KEY"),
        old.req("REDIS_ENCRYPTION_KEY")
    );
    assert_eq!(read(&backup.join("certs/client.key")), renewed_pki[5]);
}

#[test]
fn setup_refuses_a_plaintext_env_and_points_to_the_migration() {
    let repo = TempRepo::new();
    let text = "REDIS_URL=redis://:hunter2hunter2@127.0.0.1:6379/0\n";
    std::fs::write(repo.path(".env"), text).unwrap();
    let r = repo.run("setup-secure-redis.sh", &["--no-start"], &[], "");
    assert_eq!(r.code, Some(1), "{}", r.text());
    let t = r.text();
    for needle in [
        "error: .env points at a plaintext Redis (REDIS_URL=redis://127.0.0.1:6379/0)",
        "required: REDIS_URL=rediss://",
        "fix: scripts/migrate-to-secure-redis.sh",
    ] {
        assert!(t.contains(needle), "missing {needle:?}:\n{t}");
    }
    assert_no_secret(&t, &["hunter2hunter2"]);
    assert_eq!(std::fs::read_to_string(repo.path(".env")).unwrap(), text);
    assert!(!repo.path("certs/ca.crt").exists());
}

#[test]
fn make_run_serves_on_loopback_and_make_stop_stops_redcloak_and_redis() {
    let repo = TempRepo::new();
    let listen = format!("127.0.0.1:{}", free_port());
    let env = [("REDCLOAK_LISTEN", listen.as_str())];
    let mut cmd = repo.command("make", &env);
    cmd.arg("run");
    let mut run = spawn_script(cmd, &repo.scratch().join("make-run.log"));
    let up = wait_for(Duration::from_secs(60), || {
        !run.running() || std::net::TcpStream::connect(&listen).is_ok()
    });
    assert!(
        up && run.running(),
        "make run did not serve:\n{}",
        run.log_text()
    );
    let log = run.log_text();
    assert!(
        log.contains("==> redcloak on") && log.contains("redcloak is ready"),
        "{log}"
    );
    let mut c = redis::Client::open(format!("redis://{listen}"))
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(10))
        .unwrap();
    let _: () = c.set("kept", "across restarts").unwrap();
    let redcloak = repo
        .live_pid("redcloak.pid", "redcloak")
        .expect("redcloak pid");
    let redis = repo
        .live_pid("redis.pid", "redis-server")
        .expect("redis pid");

    let stop = make(&repo, "stop", 60);
    stop.assert_ok();
    let t = stop.text();
    assert!(
        t.contains(&format!("stopped redcloak (pid {redcloak})"))
            && t.contains(&format!("stopped redis-server (pid {redis})")),
        "{t}"
    );
    assert!(wait_for(Duration::from_secs(10), || !alive(redcloak)
        && !alive(redis)));
    assert!(
        run.wait_exit(Duration::from_secs(10)).is_some(),
        "make run did not end"
    );

    // Again: same key and password, Redis's data (appendonly) back, the value readable.
    drop(c);
    let mut cmd = repo.command("make", &env);
    cmd.arg("run");
    let mut run = spawn_script(cmd, &repo.scratch().join("make-run-2.log"));
    let up = wait_for(Duration::from_secs(60), || {
        !run.running() || std::net::TcpStream::connect(&listen).is_ok()
    });
    assert!(up && run.running(), "second make run:\n{}", run.log_text());
    let mut c = redis::Client::open(format!("redis://{listen}"))
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(10))
        .unwrap();
    assert_eq!(c.get::<_, String>("kept").unwrap(), "across restarts");
    make(&repo, "stop", 60).assert_ok();
    assert!(run.wait_exit(Duration::from_secs(10)).is_some());
    let second = make(&repo, "stop", 30);
    second.assert_ok();
    assert!(
        second
            .text()
            .contains("no redcloak started by make run is running"),
        "{}",
        second.text()
    );
}

#[test]
fn init_redis_tls_never_replaces_without_force() {
    let repo = TempRepo::new();
    let dir = repo.scratch().join("pki");
    let dir_arg = dir.to_str().unwrap();
    let r = repo.run(
        "init-redis-tls.sh",
        &["--dir", dir_arg, "--san", "redis.internal", "--days", "30"],
        &[],
        "",
    );
    r.assert_ok();
    let files: Vec<Vec<u8>> = PKI_FILES.iter().map(|f| read(&dir.join(f))).collect();
    for key in ["ca.key", "redis.key", "client.key"] {
        assert_eq!(mode(&dir.join(key)), 0o600, "{key}");
    }
    if Command::new("openssl").arg("version").output().is_ok() {
        let sans = Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(dir.join("redis.crt"))
            .output()
            .unwrap();
        let sans = String::from_utf8_lossy(&sans.stdout);
        for san in [
            "DNS:localhost",
            "DNS:redis",
            "IP Address:127.0.0.1",
            "DNS:redis.internal",
        ] {
            assert!(sans.contains(san), "{san} missing: {sans}");
        }
    }

    let again = repo.run("init-redis-tls.sh", &["--dir", dir_arg], &[], "");
    again.assert_ok();
    assert!(again.text().contains("keeping the existing ones"));
    let same: Vec<Vec<u8>> = PKI_FILES.iter().map(|f| read(&dir.join(f))).collect();
    assert_eq!(same, files);

    // A partial set is an error (a lone file cannot be reissued without the others).
    std::fs::remove_file(dir.join("client.crt")).unwrap();
    let partial = repo.run("init-redis-tls.sh", &["--dir", dir_arg], &[], "");
    assert_eq!(partial.code, Some(1));
    let t = partial.text();
    assert!(
        t.contains("but not client.crt") && t.contains("required:") && t.contains("--force"),
        "{t}"
    );

    let refused = repo.run(
        "init-redis-tls.sh",
        &["--dir", dir_arg, "--force"],
        &[],
        "no\n",
    );
    assert_eq!(refused.code, Some(1));
    assert!(!dir.join("client.crt").exists());
    repo.run(
        "init-redis-tls.sh",
        &["--dir", dir_arg, "--force"],
        &[],
        "replace\n",
    )
    .assert_ok();
    assert_ne!(read(&dir.join("ca.key")), files[1]);
    assert!(dir.join("client.crt").exists());
}

#[test]
fn every_script_is_strict_bash_with_help() {
    let scripts = repo_root().join("scripts");
    let mut names: Vec<String> = std::fs::read_dir(&scripts)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sh"))
        .collect();
    names.sort();
    for required in [
        "setup-secure-redis.sh",
        "init-redis-tls.sh",
        "migrate-to-secure-redis.sh",
        "run.sh",
        "stop.sh",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "scripts/{required} is missing"
        );
    }
    let repo = TempRepo::new();
    for name in &names {
        let text = std::fs::read_to_string(scripts.join(name)).unwrap();
        assert!(
            text.starts_with("#!/usr/bin/env bash\n"),
            "{name}: not a bash script"
        );
        assert!(
            text.contains("\nset -euo pipefail\n"),
            "{name}: no `set -euo pipefail`"
        );
        assert!(
            mode(&scripts.join(name)) & 0o111 != 0,
            "{name} is not executable"
        );
        let help = repo.run(name, &["--help"], &[], "");
        assert_eq!(help.code, Some(0), "{name} --help failed:\n{}", help.text());
        assert!(
            help.stdout.contains("Usage:"),
            "{name} --help:\n{}",
            help.stdout
        );
        if name != "ensure-deps.sh" {
            let bad = repo.run(name, &["--no-such-option"], &[], "");
            assert_eq!(
                bad.code,
                Some(64),
                "{name} with an unknown option:\n{}",
                bad.text()
            );
        }
    }
    // --help documents the knobs the tests (and CI) use.
    let help = repo
        .run("setup-secure-redis.sh", &["--help"], &[], "")
        .stdout;
    for knob in [
        "REDCLOAK_BIN",
        "REDCLOAK_DEV_REDIS_PORT",
        "REDCLOAK_REDIS_MODE",
        "--force",
        "--no-start",
    ] {
        assert!(help.contains(knob), "{knob} missing from --help:\n{help}");
    }
}

/// The fenced code block that follows `marker` in docs/quickstart.md.
fn quickstart_block(marker: &str) -> String {
    let doc = std::fs::read_to_string(repo_root().join("docs/quickstart.md")).unwrap();
    let from = doc
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} missing in docs/quickstart.md"));
    let rest = &doc[from..];
    let start = rest.find("```").expect("a code block") + 3;
    let body = &rest[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").expect("end of the code block")].to_owned()
}

#[test]
fn quickstart_client_examples_run_through_redcloak() {
    let stack = Stack::start();
    let port = stack.proxy.addr.port().to_string();
    let dir = stack.dir.path();

    let python = quickstart_block("<!-- example: redis-py -->").replace("6379", &port);
    let file = dir.join("example.py");
    std::fs::write(&file, python).unwrap();
    let out = Command::new("python3").arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "redis-py example:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Ada"));

    let node_modules = repo_root().join("tests/clients/node/node_modules");
    let node = quickstart_block("<!-- example: node-redis -->").replace("6379", &port);
    let file = dir.join("example.cjs");
    std::fs::write(&file, node).unwrap();
    let out = Command::new("node")
        .arg(&file)
        .env("NODE_PATH", &node_modules)
        .output()
        .unwrap_or_else(|_| {
            redcloak_e2e::missing(
                "node is not installed",
                "Node.js for the node-redis example",
                "run `make test` (scripts/ensure-deps.sh installs it)",
            )
        });
    assert!(
        out.status.success(),
        "node-redis example:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Ada"));
    assert!(stack.assert_all_values_encrypted() >= 2);
}

/// A `docker` stand-in on PATH: records its arguments and the compose variables, answers
/// `docker info` / `docker compose version` as an engine would (unless `engine` is false), and
/// fails `compose … up` (there is no engine here to run Redis).
fn fake_docker(dir: &Path, engine: bool) -> (String, std::path::PathBuf) {
    let bin = dir.join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("docker.log");
    let script = format!(
        r#"#!/usr/bin/env bash
printf 'args: %s\n' "$*" >>'{log}'
env | grep -E '^REDCLOAK_(UID|GID|CERTS_DIR|REDIS_DATA|DEV_REDIS_PORT)=' | sort >>'{log}'
case "$1" in
  info) exit {info} ;;
  compose) [[ "$2" == version ]] && exit 0; [[ " $* " == *" up "* ]] && exit 1; exit 0 ;;
esac
exit 1
"#,
        log = log.display(),
        info = if engine { 0 } else { 1 },
    );
    let path = bin.join("docker");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path_var = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (path_var, log)
}

#[test]
fn docker_mode_runs_the_compose_files_as_the_key_owner() {
    let repo = TempRepo::new();
    let (path, log) = fake_docker(repo.scratch(), true);
    let r = repo.run(
        "setup-secure-redis.sh",
        &[],
        &[("PATH", &path), ("REDCLOAK_REDIS_MODE", "auto")],
        "",
    );
    assert_eq!(r.code, Some(1), "{}", r.text());
    let t = r.text();
    assert!(
        t.contains("error: the compose Redis did not become healthy")
            && t.contains("fix: see: docker compose -p redcloak-dev logs redis"),
        "{t}"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    let root = repo.root.display().to_string();
    let up = format!(
        "args: compose --project-name redcloak-dev --env-file {root}/.env \
         -f {root}/deploy/docker-compose.secure.yml -f {root}/deploy/docker-compose.dev.yml \
         up -d --wait redis"
    );
    assert!(calls.contains(&up), "expected `{up}` in:\n{calls}");
    let uid = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap();
    for var in [
        format!("REDCLOAK_UID={}", uid.trim()),
        format!("REDCLOAK_CERTS_DIR={root}/certs"),
        format!("REDCLOAK_REDIS_DATA={root}/.run/compose/redis-data"),
        format!("REDCLOAK_DEV_REDIS_PORT={}", repo.redis_port),
    ] {
        assert!(
            calls.contains(&var),
            "{var} not passed to compose:\n{calls}"
        );
    }
    assert!(repo.path(".run/compose/redis-data").is_dir());
    // The configuration was written before Redis was started, and is complete.
    assert!(repo.env().get("REDIS_ENCRYPTION_KEY").is_some());
    assert!(
        !repo.path(".run/redis.mode").exists(),
        "no mode recorded for a failed start"
    );

    // --docker without an engine says so instead of falling back silently.
    let (path, _) = fake_docker(&repo.scratch().join("no-engine"), false);
    let r = repo.run(
        "setup-secure-redis.sh",
        &["--docker"],
        &[("PATH", &path)],
        "",
    );
    assert_eq!(r.code, Some(1), "{}", r.text());
    assert!(
        r.text().contains("but no Docker engine answers") && r.text().contains("--local"),
        "{}",
        r.text()
    );
}

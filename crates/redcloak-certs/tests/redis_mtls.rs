//! A real `redis-server` (OpenSSL) accepts the development PKI for mutual
//! TLS, and refuses clients without a good certificate.
//!
//! Needs `redis-server` and `redis-cli` (Debian: `apt-get install
//! redis-server redis-tools`); if either is missing the test FAILS and says so.

mod common;

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{missing, path_str, write};
use redcloak_certs::{write_dev_pki, Ca, DevPki, Validity};

/// A running redis-server, killed by PID when dropped (also when a test
/// panics).
struct Redis {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Redis {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn cli(&self, ca: &Path, client: Option<(&Path, &Path)>) -> Output {
        let port = self.port.to_string();
        let mut args = vec![
            "--tls",
            "--cacert",
            path_str(ca),
            "-h",
            "127.0.0.1",
            "-p",
            &port,
        ];
        if let Some((cert, key)) = client {
            args.extend(["--cert", path_str(cert), "--key", path_str(key)]);
        }
        args.push("PING");
        let out = Command::new("redis-cli")
            .args(&args)
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                missing("redis-cli", "redis-tools")
            }
            Err(e) => panic!("could not run redis-cli: {e}"),
        }
    }

    fn ping(&self, pki: &DevPki) -> Output {
        self.cli(&pki.ca_cert, Some((&pki.client_cert, &pki.client_key)))
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Starts redis-server with TLS only (no plaintext port) and required
/// client certificates; waits until it answers PING over mTLS.
fn start_redis(pki: &DevPki, dir: &Path) -> Redis {
    // The port is chosen before redis binds it; retry if another process
    // took it in between.
    for attempt in 0..3 {
        let port = free_port();
        let log = dir.join(format!("redis-{attempt}.log"));
        let child = Command::new("redis-server")
            .args(["--port", "0", "--bind", "127.0.0.1", "--tls-port"])
            .arg(port.to_string())
            .arg("--tls-cert-file")
            .arg(&pki.server_cert)
            .arg("--tls-key-file")
            .arg(&pki.server_key)
            .arg("--tls-ca-cert-file")
            .arg(&pki.ca_cert)
            .args(["--tls-auth-clients", "yes"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                missing("redis-server", "redis-server")
            }
            Err(e) => panic!("could not start redis-server: {e}"),
        };
        let mut redis = Redis { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = redis.child.try_wait() {
                eprintln!("redis-server exited ({status}):\n{}", redis.log());
                break;
            }
            if stdout(&redis.ping(pki)) == "PONG" {
                return redis;
            }
            sleep(Duration::from_millis(50));
        }
        eprintln!(
            "attempt {attempt}: redis-server not ready:\n{}",
            redis.log()
        );
    }
    panic!("redis-server did not start with the generated certificates (see the log above)");
}

#[test]
fn redis_server_accepts_the_dev_pki_for_mutual_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = write_dev_pki(&tmp.path().join("certs"), &[], 1, false).unwrap();
    let redis = start_redis(&pki, tmp.path());

    let out = redis.ping(&pki);
    assert_eq!(stdout(&out), "PONG", "{out:?}\n{}", redis.log());

    // No client certificate: the handshake is refused.
    let out = redis.cli(&pki.ca_cert, None);
    assert_ne!(
        stdout(&out),
        "PONG",
        "connected without a client certificate"
    );

    // A client certificate from another CA: refused.
    let other = Ca::new("other CA", Validity::days(1)).unwrap();
    let stranger = other.issue_client("stranger", Validity::days(1)).unwrap();
    let cert = write(tmp.path(), "stranger.crt", &stranger.cert_pem);
    let key = write(tmp.path(), "stranger.key", stranger.key_pem());
    let out = redis.cli(&pki.ca_cert, Some((Path::new(&cert), Path::new(&key))));
    assert_ne!(
        stdout(&out),
        "PONG",
        "a foreign client certificate was accepted"
    );

    // The client trusts only our CA: a different CA file refuses the server.
    let other_ca = write(tmp.path(), "other-ca.crt", other.cert_pem());
    let out = redis.cli(
        Path::new(&other_ca),
        Some((&pki.client_cert, &pki.client_key)),
    );
    assert_ne!(
        stdout(&out),
        "PONG",
        "the server certificate was not checked"
    );
}

/// Writes a PKI from `ca` (so the test can issue more certificates from it).
fn pki_from(ca: &Ca, dir: &Path, client_validity: Validity) -> DevPki {
    let server = ca
        .issue_server("redis", &["localhost", "127.0.0.1"], Validity::days(1))
        .unwrap();
    let client = ca.issue_client("redcloak", client_validity).unwrap();
    let file = |name: &str, contents: &str| PathBuf::from(write(dir, name, contents));
    DevPki {
        ca_cert: file("ca.crt", ca.cert_pem()),
        ca_key: file("ca.key", ca.key_pem()),
        server_cert: file("redis.crt", &server.cert_pem),
        server_key: file("redis.key", server.key_pem()),
        client_cert: file("client.crt", &client.cert_pem),
        client_key: file("client.key", client.key_pem()),
    }
}

#[test]
fn redis_server_refuses_an_expired_client_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA", Validity::days(1)).unwrap();
    let pki = pki_from(&ca, tmp.path(), Validity::days(1));
    let redis = start_redis(&pki, tmp.path());

    let expired = ca.issue_client("late", Validity::expired()).unwrap();
    let cert = write(tmp.path(), "expired.crt", &expired.cert_pem);
    let key = write(tmp.path(), "expired.key", expired.key_pem());
    let out = redis.cli(&pki.ca_cert, Some((Path::new(&cert), Path::new(&key))));
    assert_ne!(
        stdout(&out),
        "PONG",
        "an expired client certificate was accepted"
    );
    // The valid one still works.
    assert_eq!(stdout(&redis.ping(&pki)), "PONG");
}

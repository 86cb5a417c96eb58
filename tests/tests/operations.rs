//! Operations: hot reload of certificates and secrets, graceful shutdown, limits.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use redcloak_certs::{Ca, Validity};
use redcloak_e2e::{random_secret, stack_env, wait_for, Pki, Redcloak, RedisServer, Stack};
use redis::cmd;

/// Replaces a file atomically (as Kubernetes does with Secret volumes: write, then swap).
fn replace(path: &Path, text: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
    drop(f);
    std::fs::rename(&tmp, path).unwrap();
}

struct Rotating {
    ca: Ca,
    pki: Pki,
    dir: tempfile::TempDir,
    password_file: PathBuf,
    password: String,
    redis: RedisServer,
    proxy: Redcloak,
}

/// Redis + redcloak whose client certificate and password live in files we can rotate.
fn rotating(extra_env: &[(&str, &str)]) -> Rotating {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("rotation CA", Validity::days(30)).unwrap();
    let server = ca
        .issue_server("redis", &["127.0.0.1", "localhost"], Validity::days(30))
        .unwrap();
    let client = ca.issue_client("redcloak", Validity::days(30)).unwrap();
    let p = |n: &str| dir.path().join(n);
    replace(&p("ca.crt"), ca.cert_pem());
    replace(&p("redis.crt"), &server.cert_pem);
    replace(&p("redis.key"), server.key_pem());
    replace(&p("client.crt"), &client.cert_pem);
    replace(&p("client.key"), client.key_pem());
    let pki = Pki {
        ca_cert: p("ca.crt"),
        server_cert: p("redis.crt"),
        server_key: p("redis.key"),
        client_cert: p("client.crt"),
        client_key: p("client.key"),
    };
    let password = random_secret(40);
    let password_file = p("password");
    replace(&password_file, &password);
    let redis = RedisServer::start(dir.path(), &pki, &password, &[]);
    let mut env: Vec<(String, String)> = stack_env(
        &pki,
        redis.port,
        &password,
        &redcloak_crypto::generate_key(),
    )
    .into_iter()
    .filter(|(k, _)| k != "REDIS_PASSWORD")
    .collect();
    env.push((
        "REDIS_PASSWORD_FILE".into(),
        password_file.display().to_string(),
    ));
    for (k, v) in extra_env {
        env.push(((*k).into(), (*v).into()));
    }
    let proxy = Redcloak::start(dir.path(), &env);
    Rotating {
        ca,
        pki,
        dir,
        password_file,
        password,
        redis,
        proxy,
    }
}

fn connect(proxy: &Redcloak) -> redis::Connection {
    redis::Client::open(format!("redis://{}", proxy.addr))
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap()
}

fn kill(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The ids of Redis's normal clients, but the one asking.
fn client_ids(direct: &mut redcloak_e2e::Direct) -> Vec<String> {
    let Ok(redcloak_commands::resp::Frame::Integer(me)) = direct.cmd(&[b"CLIENT", b"ID"]) else {
        panic!("CLIENT ID");
    };
    let Ok(redcloak_commands::resp::Frame::Bulk(list)) =
        direct.cmd(&[b"CLIENT", b"LIST", b"TYPE", b"normal"])
    else {
        panic!("CLIENT LIST");
    };
    String::from_utf8_lossy(&list)
        .lines()
        .filter_map(|l| l.strip_prefix("id=")?.split(' ').next().map(str::to_owned))
        .filter(|id| *id != me.to_string())
        .collect()
}

#[test]
fn rotated_client_certificate_and_password_are_picked_up_without_a_restart() {
    let r = rotating(&[]);
    let mut old = connect(&r.proxy);
    let _: () = cmd("SET")
        .arg("before")
        .arg("rotation")
        .query(&mut old)
        .unwrap();

    // Redis's clients made with the old material (other than the test's own).
    let mut direct = redcloak_e2e::Direct::connect(&r.pki, r.redis.port, &r.password).unwrap();
    let before: Vec<String> = client_ids(&mut direct);
    assert!(!before.is_empty());

    // The operator rotates: a new client certificate from the same CA, and a new password
    // (changed in Redis around the proxy, then in the mounted file).
    let client =
        r.ca.issue_client("redcloak-rotated", Validity::days(30))
            .unwrap();
    replace(&r.pki.client_key, client.key_pem());
    replace(&r.pki.client_cert, &client.cert_pem);
    let new_password = random_secret(40);
    direct
        .cmd(&[b"CONFIG", b"SET", b"requirepass", new_password.as_bytes()])
        .unwrap();
    replace(&r.password_file, &new_password);

    // No SIGHUP: the file change alone triggers the reload (Kubernetes rotates in place).
    assert!(
        wait_for(Duration::from_secs(15), || r
            .proxy
            .log_text()
            .contains("reloaded certificates")),
        "{}",
        r.proxy.log_text()
    );
    // New connections use the new material...
    let mut new = connect(&r.proxy);
    let _: () = cmd("SET")
        .arg("after")
        .arg("rotation")
        .query(&mut new)
        .unwrap();
    let v: String = cmd("GET").arg("before").query(&mut new).unwrap();
    assert_eq!(v, "rotation");
    // ...and the connection opened before keeps working.
    let v: String = cmd("GET").arg("after").query(&mut old).unwrap();
    assert_eq!(v, "rotation");
    // Once the clients of before have left, no connection made with the old material is left
    // open: the shared connections of before close with their last client (the warm pool
    // and redcloak's side connections were emptied at the reload).
    drop(old);
    let mut left = Vec::new();
    assert!(
        wait_for(Duration::from_secs(10), || {
            let _: () = cmd("SET").arg("after").arg("x").query(&mut new).unwrap();
            let now = client_ids(&mut direct);
            left = before
                .iter()
                .filter(|id| now.contains(id))
                .cloned()
                .collect();
            left.is_empty()
        }),
        "connections made before the rotation still open: {left:?}"
    );
    let log = r.proxy.log_text();
    assert!(
        !log.contains(&new_password) && !log.contains(&r.password),
        "no password in the log"
    );
    drop(r.dir);
}

#[test]
fn a_broken_reload_is_rejected_loudly_and_the_old_material_stays() {
    let r = rotating(&[]);
    replace(
        &r.pki.client_cert,
        "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n",
    );
    kill(r.proxy.pid(), "-HUP");
    assert!(
        wait_for(Duration::from_secs(10), || r
            .proxy
            .log_text()
            .contains("reload rejected")),
        "{}",
        r.proxy.log_text()
    );
    // Still serving, with the material it had: new connections authenticate and work.
    let mut c = connect(&r.proxy);
    let _: () = cmd("SET")
        .arg("still")
        .arg("working")
        .query(&mut c)
        .unwrap();
    let v: String = cmd("GET").arg("still").query(&mut c).unwrap();
    assert_eq!(v, "working");
    let log = r.proxy.log_text();
    assert!(
        log.contains("REDIS_TLS_CERT"),
        "the rejection says what is wrong: {log}"
    );
}

#[test]
fn sigterm_during_pipelined_load_answers_every_command_read_and_exits_0() {
    let stack = Stack::start_with(&[], &[("REDCLOAK_SHUTDOWN_GRACE", "10")]);
    let mut raw = stack.raw();
    // 20,000 SETs in one go; SIGTERM arrives while redcloak works through them.
    let mut pipeline = Vec::new();
    for i in 0..20_000 {
        pipeline.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\nk{i}\r\n$5\r\nvalue\r\n",
                format!("k{i}").len()
            )
            .as_bytes(),
        );
    }
    let writer = {
        let mut w = raw.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = w.write_all(&pipeline);
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let pid = stack.proxy.pid();
    kill(pid, "-TERM");
    raw.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut replies = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match raw.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => replies.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("the connection must be closed cleanly after the replies: {e}"),
        }
    }
    let _ = writer.join();
    let ok = replies.windows(5).filter(|w| w == b"+OK\r\n").count();
    assert_eq!(replies.len(), ok * 5, "only +OK replies, no partial one");
    // Every command redcloak read was answered, and only those ran.
    let redcloak_commands::resp::Frame::Integer(stored) = stack.direct().cmd(&[b"DBSIZE"]).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        stored as usize, ok,
        "{ok} replies for {stored} keys written"
    );
    let mut proxy = stack.proxy;
    let exited = wait_for(Duration::from_secs(15), || !proxy.is_running());
    assert!(exited, "redcloak exits within the grace period");
    assert!(
        proxy.log_text().contains("redcloak stopped"),
        "{}",
        proxy.log_text()
    );
    let code = proxy.exit_code();
    assert_eq!(code, Some(0), "exit code");
}

#[test]
fn a_thousand_idle_clients_and_a_slow_reader_do_not_starve_others() {
    let stack = Stack::start_with(&["--maxclients", "4000"], &[]);
    let mut c = stack.client();
    let big = vec![b'x'; 1024 * 1024];
    let _: () = cmd("SET").arg("big").arg(&big).query(&mut c).unwrap();
    let baseline = stack.proxy.rss_kib();
    // 1,000 idle clients (each also costs redcloak an upstream TLS connection).
    let t = Instant::now();
    let idle: Vec<_> = (0..1000).map(|_| stack.raw()).collect();
    eprintln!("1000 idle clients connected in {:?}", t.elapsed());
    // A slow reader: asks for 100 MiB of replies and reads none of them.
    let mut slow = stack.raw();
    let mut req = Vec::new();
    for _ in 0..100 {
        req.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n");
    }
    slow.write_all(&req).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // Others stay fast.
    let mut fast = stack.client();
    let started = Instant::now();
    for i in 0..200 {
        let _: () = cmd("SET")
            .arg(format!("fast{i}"))
            .arg(i)
            .query(&mut fast)
            .unwrap();
        let _: String = cmd("GET").arg(format!("fast{i}")).query(&mut fast).unwrap();
    }
    let elapsed = started.elapsed();
    eprintln!("400 commands next to them took {elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(10),
        "400 commands took {elapsed:?} next to 1,000 idle clients and a slow reader"
    );
    let grown = stack.proxy.rss_kib().saturating_sub(baseline) / 1024;
    assert!(
        grown < 256,
        "redcloak grew by {grown} MiB: the slow reader's replies must not pile up in redcloak"
    );
    // The slow reader still gets its replies, in order, once it reads.
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut got = 0usize;
    let mut chunk = vec![0u8; 1 << 20];
    let expected = 100 * (big.len() + "$1048576\r\n\r\n".len());
    let t = Instant::now();
    while got < expected {
        let n = slow.read(&mut chunk).unwrap();
        assert!(n > 0, "closed after {got} bytes");
        got += n;
    }
    assert_eq!(got, expected);
    eprintln!("the slow reader's 100 MiB arrived in {:?}", t.elapsed());
    drop(idle);
}

#[test]
fn idle_clients_are_closed_after_the_idle_timeout_but_blocked_ones_are_not() {
    let stack = Stack::start_with(&[], &[("REDCLOAK_IDLE_TIMEOUT", "1")]);
    let mut idle = stack.raw();
    let mut blocked = stack.raw();
    blocked
        .write_all(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let (got, closed) = redcloak_e2e::read_until_closed(&mut idle, Duration::from_secs(2));
    assert!(closed && got.is_empty(), "an idle client is closed");
    // The blocked client is still waiting: a push wakes it.
    let mut c = stack.client();
    let _: i64 = cmd("RPUSH").arg("q").arg("woken").query(&mut c).unwrap();
    blocked
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 64];
    let n = blocked.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"*2\r\n$1\r\nq\r\n$5\r\nwoken\r\n");
}

#[test]
fn a_request_larger_than_the_limit_is_refused_and_closed() {
    let stack = Stack::start_with(&[], &[("REDCLOAK_MAX_REQUEST_BYTES", "100000")]);
    let mut raw = stack.raw();
    let mut req = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$200000\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'x', 150_000));
    let _ = raw.write_all(&req);
    let (got, closed) = redcloak_e2e::read_until_closed(&mut raw, Duration::from_secs(5));
    let got = String::from_utf8_lossy(&got);
    assert!(
        got.contains("request larger than 100000 bytes") && closed,
        "{got}"
    );
    assert_eq!(stack.direct().get(b"k"), None);
}

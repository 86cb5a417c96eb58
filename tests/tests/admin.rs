//! The admin endpoint of a real redcloak in front of a real TLS Redis: `/metrics` counters move
//! with traffic, `/readyz` is 200 when healthy *and* degraded and 503 while shutting down,
//! `/status` holds no secret, the endpoint works on a Unix socket, and `redcloak probe` exits
//! 0 or 1 accordingly.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redcloak_e2e::{
    assert_no_secret, free_port, output_text, redcloak_command, run_redcloak, wait_for, with_var,
    Stack,
};
use redis::RedisResult;

// === a minimal HTTP/1.1 client (the test crate has no HTTP library) ===

/// One HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

fn exchange<S: Read + Write>(
    mut s: S,
    method: &str,
    path: &str,
    extra: &str,
) -> std::io::Result<Answer> {
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}\r\n"
    )?;
    s.flush()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no HTTP head in {text:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))?;
    Ok(Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

fn request(admin: &str, method: &str, path: &str, extra: &str) -> std::io::Result<Answer> {
    let s = TcpStream::connect(admin)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    exchange(s, method, path, extra)
}

fn get(admin: &str, path: &str) -> Answer {
    request(admin, "GET", path, "").unwrap_or_else(|e| panic!("GET {path} on {admin}: {e}"))
}

/// A free loopback address for the admin endpoint.
fn admin_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// Starts a stack whose admin endpoint listens on `admin`, and waits until it is ready.
fn stack_with_admin(admin: &str, redis_args: &[&str], env: &[(&str, &str)]) -> Stack {
    let mut env = env.to_vec();
    env.push(("REDCLOAK_ADMIN_LISTEN", admin));
    let stack = Stack::start_with(redis_args, &env);
    assert!(
        wait_for(Duration::from_secs(10), || request(
            admin, "GET", "/readyz", ""
        )
        .is_ok_and(|a| a.status == 200)),
        "the admin endpoint never became ready:\n{}",
        stack.proxy.log_text()
    );
    stack
}

// === reading Prometheus text ===

/// The value of one exact series (`name{labels}` as exposed), if present.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let v = l.strip_prefix(name)?.strip_prefix(' ')?;
        v.split_whitespace().next()?.parse().ok()
    })
}

#[track_caller]
fn value(text: &str, name: &str) -> f64 {
    series(text, name).unwrap_or_else(|| panic!("{name} is not in the scrape:\n{text}"))
}

fn scrape(admin: &str) -> String {
    let a = get(admin, "/metrics");
    assert_eq!(a.status, 200, "{a:?}");
    a.body
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

// === /metrics ===

#[test]
fn metrics_move_with_traffic_and_name_no_key_value_or_secret() {
    let admin = admin_addr();
    let stack = stack_with_admin(&admin, &[], &[]);
    // The harness's "is it up" connection must be counted and gone before the baseline (on a
    // loaded machine it may not even have been accepted yet).
    assert!(wait_for(Duration::from_secs(5), || {
        let m = scrape(&admin);
        series(&m, "redcloak_connections_open") == Some(0.0)
            && series(&m, "redcloak_connections_total").is_some_and(|n| n >= 1.0)
    }));
    let before = scrape(&admin);
    let head = get(&admin, "/metrics").head;
    assert!(
        head.contains("text/plain; version=0.0.4"),
        "Prometheus text format: {head}"
    );

    // Traffic: a write, two reads, an unknown command, and a value redcloak cannot decrypt.
    stack.direct().set(b"planted-key", b"planted-plaintext");
    let mut c = stack.client();
    let _: () = redis::cmd("SET")
        .arg("metric-key")
        .arg("metric-value")
        .query(&mut c)
        .unwrap();
    let v: String = redis::cmd("GET").arg("metric-key").query(&mut c).unwrap();
    assert_eq!(v, "metric-value");
    let none: Option<String> = redis::cmd("GET")
        .arg("metric-missing")
        .query(&mut c)
        .unwrap();
    assert_eq!(none, None);
    let unknown: RedisResult<String> = redis::cmd("NOSUCHCOMMAND").query(&mut c);
    assert!(unknown.is_err());
    let undecryptable: RedisResult<String> = redis::cmd("GET").arg("planted-key").query(&mut c);
    assert!(undecryptable.is_err(), "{undecryptable:?}");

    let during = scrape(&admin);
    let delta = |name: &str| value(&during, name) - series(&before, name).unwrap_or(0.0);
    assert_eq!(value(&during, "redcloak_connections_open"), 1.0, "{during}");
    assert_eq!(delta("redcloak_connections_total"), 1.0, "{during}");
    assert_eq!(
        delta(r#"redcloak_commands_total{command="SET",outcome="ok"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"redcloak_commands_total{command="GET",outcome="ok"}"#),
        2.0,
        "two GETs answered with their values"
    );
    assert_eq!(
        delta(r#"redcloak_commands_total{command="GET",outcome="error"}"#),
        1.0,
        "the GET whose value did not decrypt was answered with an error"
    );
    assert_eq!(
        delta(r#"redcloak_commands_total{command="unknown",outcome="refused"}"#),
        1.0
    );
    assert_eq!(delta("redcloak_encrypt_total"), 1.0);
    assert_eq!(
        delta(r#"redcloak_decrypt_failures_total{reason="not_encrypted"}"#),
        1.0,
        "the planted plaintext is counted under its reason"
    );
    assert_eq!(
        delta(r#"redcloak_command_duration_seconds_count{command="SET"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"redcloak_command_duration_seconds_bucket{command="GET",le="+Inf"}"#),
        3.0
    );
    assert!(
        value(
            &during,
            r#"redcloak_command_duration_seconds_sum{command="GET"}"#
        ) > 0.0
    );
    assert!(
        value(&during, "redcloak_tls_handshake_seconds_count") >= 1.0,
        "the startup handshake at least"
    );
    // State, read at scrape time.
    assert_eq!(value(&during, "redcloak_upstream_up"), 1.0);
    assert_eq!(value(&during, "redcloak_fallback_mode"), 0.0);
    assert_eq!(value(&during, "redcloak_journal_entries"), 0.0);
    assert_eq!(value(&during, "redcloak_fallback_hits_total"), 0.0);
    for reason in ["unreachable", "timeout", "tls", "auth", "broken"] {
        let name = format!(r#"redcloak_upstream_connect_failures_total{{reason="{reason}"}}"#);
        assert_eq!(value(&during, &name), 0.0, "{name}");
    }
    // The harness issues 30-day certificates.
    let client = value(
        &during,
        r#"redcloak_cert_expiry_timestamp_seconds{cert="client"}"#,
    );
    let days = (client - now()) / 86_400.0;
    assert!(
        (29.0..=31.0).contains(&days),
        "client certificate: {days} days"
    );
    assert!(
        value(
            &during,
            r#"redcloak_cert_expiry_timestamp_seconds{cert="ca"}"#
        ) > now()
    );
    let build = format!(
        r#"redcloak_build_info{{version="{}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(value(&during, &build), 1.0);
    for line in [
        "# TYPE redcloak_commands_total counter",
        "# TYPE redcloak_connections_open gauge",
        "# TYPE redcloak_command_duration_seconds histogram",
        "# HELP redcloak_upstream_up ",
    ] {
        assert!(during.contains(line), "{line:?} in:\n{during}");
    }

    // Labels are command names and fixed words: no key, value or secret anywhere.
    for needle in [
        "metric-key",
        "metric-value",
        "planted",
        "metric-missing",
        "NOSUCHCOMMAND",
    ] {
        assert!(
            !during.contains(needle),
            "{needle:?} in the scrape:\n{during}"
        );
    }
    assert_no_secret(&during, &[&stack.password, &stack.keys]);

    // The connection closes: the open gauge comes back down.
    drop(c);
    assert!(wait_for(Duration::from_secs(5), || series(
        &scrape(&admin),
        "redcloak_connections_open"
    ) == Some(0.0)));
    let after = scrape(&admin);
    assert_eq!(
        value(&after, "redcloak_connections_total"),
        value(&during, "redcloak_connections_total")
    );
    eprintln!("--- a real scrape ---\n{after}--- end ---");
}

#[test]
fn openmetrics_when_the_scraper_asks_for_it() {
    let admin = admin_addr();
    let _stack = stack_with_admin(&admin, &[], &[]);
    let a = request(
        &admin,
        "GET",
        "/metrics",
        "Accept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n",
    )
    .unwrap();
    assert_eq!(a.status, 200);
    assert!(
        a.head.contains("application/openmetrics-text"),
        "{}",
        a.head
    );
    assert!(a.body.ends_with("# EOF\n"), "{}", a.body);
    assert!(
        a.body.contains("redcloak_build_info{version="),
        "{}",
        a.body
    );
}

// === /livez, /readyz, /status, routing ===

#[test]
fn status_and_routes() {
    let admin = admin_addr();
    let stack = stack_with_admin(&admin, &[], &[]);
    let live = get(&admin, "/livez");
    assert_eq!((live.status, live.body.as_str()), (200, "ok\n"));
    let ready = get(&admin, "/readyz");
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (200, "ready: healthy\n")
    );

    let status = get(&admin, "/status");
    assert_eq!(status.status, 200);
    assert!(status.head.contains("application/json"), "{}", status.head);
    let s = &status.body;
    eprintln!("/status: {s}");
    let key_id = stack.key_ring().key_ids()[0].to_string();
    for needle in [
        format!(r#""version":"{}""#, env!("CARGO_PKG_VERSION")),
        r#""mode":"healthy""#.to_owned(),
        r#""ready":true"#.to_owned(),
        r#""reachable":true"#.to_owned(),
        r#""last_error":null"#.to_owned(),
        format!(r#""address":"127.0.0.1:{}""#, stack.redis.port),
        format!(r#""ids":["{key_id}"]"#),
        format!(r#""encrypts_with":"{key_id}""#),
        r#""journal_entries":0"#.to_owned(),
        r#""ca":{"#.to_owned(),
        r#""client":{"#.to_owned(),
        r#""not_after":""#.to_owned(),
        r#""tls_version":""#.to_owned(),
    ] {
        assert!(s.contains(&needle), "{needle} not in /status: {s}");
    }
    assert_no_secret(s, &[&stack.password, &stack.keys]);

    let missing = get(&admin, "/nothing-here");
    assert_eq!(missing.status, 404, "{missing:?}");
    assert!(missing.body.contains("/metrics"), "{missing:?}");
    let post = request(&admin, "POST", "/readyz", "Content-Length: 0\r\n").unwrap();
    assert_eq!(post.status, 405, "{post:?}");
    assert!(
        post.head.to_lowercase().contains("allow: get, head"),
        "{post:?}"
    );
    let head = request(&admin, "HEAD", "/livez", "").unwrap();
    assert_eq!((head.status, head.body.as_str()), (200, ""));
}

#[test]
fn readiness_stays_200_in_degraded_mode_and_metrics_say_so() {
    let admin = admin_addr();
    let mut stack = stack_with_admin(&admin, &["--appendonly", "yes"], &[]);
    let mut c = stack.client();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    stack.redis.kill9();
    // One command through redcloak, so that it notices (its outcome may be "lost").
    let _: RedisResult<Option<String>> = redis::cmd("GET").arg("k").query(&mut c);
    assert!(
        wait_for(Duration::from_secs(10), || {
            let a = get(&admin, "/readyz");
            a.status == 200 && a.body.contains("degraded")
        }),
        "{:?}\n{}",
        get(&admin, "/readyz"),
        stack.proxy.log_text()
    );
    // Served from the local cache, and a journaled write.
    let v: String = redis::cmd("GET").arg("k").query(&mut c).unwrap();
    assert_eq!(v, "v");
    let _: () = redis::cmd("SET").arg("k2").arg("v2").query(&mut c).unwrap();

    let m = scrape(&admin);
    assert_eq!(value(&m, "redcloak_fallback_mode"), 1.0, "{m}");
    assert_eq!(value(&m, "redcloak_upstream_up"), 0.0, "{m}");
    assert_eq!(value(&m, "redcloak_journal_entries"), 1.0, "{m}");
    assert!(value(&m, "redcloak_fallback_hits_total") >= 1.0, "{m}");
    assert!(
        value(
            &m,
            r#"redcloak_commands_total{command="GET",outcome="fallback"}"#
        ) >= 1.0,
        "{m}"
    );
    // The recovery probe keeps failing to connect: counted by reason.
    assert!(
        wait_for(Duration::from_secs(10), || series(
            &scrape(&admin),
            r#"redcloak_upstream_connect_failures_total{reason="unreachable"}"#
        )
        .is_some_and(|n| n >= 1.0)),
        "{}",
        scrape(&admin)
    );
    let s = get(&admin, "/status").body;
    assert!(
        s.contains(r#""mode":"degraded""#)
            && s.contains(r#""reachable":false"#)
            && s.contains(r#""journal_entries":1"#)
            && !s.contains(r#""last_error":null"#),
        "{s}"
    );
    let ready = get(&admin, "/readyz");
    assert!(ready.body.starts_with("ready: degraded"), "{ready:?}");

    // Redis is back: the journal is applied and everything says healthy again.
    stack.redis.restart();
    assert!(
        wait_for(Duration::from_secs(20), || get(&admin, "/readyz").body
            == "ready: healthy\n"),
        "{}",
        stack.proxy.log_text()
    );
    let m = scrape(&admin);
    assert_eq!(value(&m, "redcloak_fallback_mode"), 0.0, "{m}");
    assert_eq!(value(&m, "redcloak_upstream_up"), 1.0, "{m}");
    assert_eq!(value(&m, "redcloak_journal_entries"), 0.0, "{m}");
    assert!(
        stack.direct().get(b"k2").is_some(),
        "the journal was applied"
    );
}

#[test]
fn readiness_is_503_while_shutting_down() {
    let admin = admin_addr();
    let mut stack = stack_with_admin(&admin, &[], &[("REDCLOAK_SHUTDOWN_GRACE", "3")]);
    let signal = |sig: &str, pid: u32| {
        let status = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {sig} {pid}");
    };
    // A client whose session is connected to Redis...
    let mut raw = stack.raw();
    raw.write_all(b"*2\r\n$3\r\nGET\r\n$4\r\nwarm\r\n").unwrap();
    let mut reply = [0u8; 16];
    let n = raw.read(&mut reply).unwrap();
    assert_eq!(&reply[..n], b"$-1\r\n");
    // ...then a command Redis does not answer (frozen): the drain lasts the grace period.
    let redis = stack.redis.pid();
    signal("-STOP", redis);
    raw.write_all(b"*2\r\n$3\r\nGET\r\n$6\r\nfrozen\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    signal("-TERM", stack.proxy.pid());
    let started = Instant::now();
    let mut seen = None;
    let saw_503 = wait_for(Duration::from_secs(2), || {
        match request(&admin, "GET", "/readyz", "") {
            Ok(a) if a.status == 503 => {
                seen = Some(a);
                true
            }
            _ => false,
        }
    });
    // Checked while draining (before the grace period ends).
    let live = request(&admin, "GET", "/livez", "");
    let probe = run_redcloak(
        &[("REDCLOAK_ADMIN_LISTEN".into(), admin.clone())],
        &["probe", "readyz"],
    );
    let draining = started.elapsed();
    assert!(
        saw_503,
        "/readyz never answered 503 after SIGTERM:\n{}",
        stack.proxy.log_text()
    );
    let not_ready = seen.unwrap();
    assert_eq!(
        not_ready.body, "not ready: shutting down (draining clients)\n",
        "{not_ready:?}"
    );
    assert!(
        draining < Duration::from_secs(3),
        "checks took {draining:?}"
    );
    assert!(
        live.as_ref().is_ok_and(|a| a.status == 200),
        "alive while draining: {live:?}\n{}",
        stack.proxy.log_text()
    );
    assert_eq!(probe.status.code(), Some(1), "{}", output_text(&probe));
    assert_eq!(
        String::from_utf8_lossy(&probe.stdout),
        "not ready: shutting down (draining clients)\n"
    );
    // The grace period ends the drain, and the process.
    assert!(
        wait_for(Duration::from_secs(10), || !stack.proxy.is_running()),
        "redcloak still runs 10 s after SIGTERM with a 3 s grace:\n{}",
        stack.proxy.log_text()
    );
    signal("-CONT", redis);
    assert!(
        started.elapsed() >= Duration::from_millis(2500),
        "the unanswered command should hold the drain open for the grace period: {:?}\n{}",
        started.elapsed(),
        stack.proxy.log_text()
    );
    assert!(
        request(&admin, "GET", "/readyz", "").is_err(),
        "gone with the process"
    );
}

// === redcloak probe ===

#[test]
fn probe_exits_0_when_ready_and_1_when_nothing_answers() {
    let admin = admin_addr();
    let stack = stack_with_admin(&admin, &[], &[]);
    let only = |addr: &str| vec![("REDCLOAK_ADMIN_LISTEN".to_owned(), addr.to_owned())];
    let out = run_redcloak(&only(&admin), &["probe", "readyz"]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ready: healthy\n");
    let out = run_redcloak(&only(&admin), &["probe", "livez"]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");

    // Without REDCLOAK_ADMIN_LISTEN, the probe reads the configuration as redcloak does.
    let file = stack.dir.path().join("redcloak.toml");
    std::fs::write(&file, format!("[operations]\nadmin_listen = \"{admin}\"\n")).unwrap();
    let out = run_redcloak(
        &stack.env,
        &["probe", "readyz", "--config", &file.display().to_string()],
    );
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_no_secret(&text, &[&stack.password, &stack.keys]);

    // Nothing listens there.
    let nowhere = admin_addr();
    let out = run_redcloak(&only(&nowhere), &["probe", "readyz"]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("redcloak's admin endpoint did not answer /readyz")
            && text.contains(&format!("cannot connect to {nowhere}")),
        "{text}"
    );
    // Off.
    let out = run_redcloak(&only("off"), &["probe", "livez"]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("the admin endpoint is off"), "{text}");
    // Not loopback: refused like redcloak refuses it.
    let out = run_redcloak(&only("0.0.0.0:9121"), &["probe", "livez"]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("not a loopback address"), "{text}");
}

// === Unix socket ===

#[test]
fn admin_endpoint_on_a_unix_socket_is_0600() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("admin.sock");
    let listen = format!("unix:{}", sock.display());
    let mut stack = Stack::start_with(&[], &[("REDCLOAK_ADMIN_LISTEN", &listen)]);
    let unix_get = |path: &str| -> std::io::Result<Answer> {
        let s = UnixStream::connect(&sock)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        exchange(s, "GET", path, "")
    };
    assert!(
        wait_for(Duration::from_secs(10), || unix_get("/readyz")
            .is_ok_and(|a| a.status == 200)),
        "{}",
        stack.proxy.log_text()
    );
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "admin socket mode {mode:o}");
    let m = unix_get("/metrics").unwrap();
    assert_eq!(value(&m.body, "redcloak_upstream_up"), 1.0, "{}", m.body);
    let out = run_redcloak(
        &with_var(&[], "REDCLOAK_ADMIN_LISTEN", &listen),
        &["probe", "readyz"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    // A clean exit removes the socket file.
    let term = Command::new("kill")
        .args(["-TERM", &stack.proxy.pid().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(wait_for(Duration::from_secs(10), || !stack
        .proxy
        .is_running()));
    assert!(!sock.exists(), "{} is left behind", sock.display());
}

#[test]
fn the_admin_endpoint_never_takes_the_client_socket_over() {
    let stack = Stack::start_with(&[], &[("REDCLOAK_ADMIN_LISTEN", "off")]);
    let sock = stack.dir.path().join("shared.sock");
    let listen = format!("unix:{}", sock.display());
    let env = with_var(
        &with_var(&stack.env, "REDCLOAK_LISTEN", &listen),
        "REDCLOAK_ADMIN_LISTEN",
        &listen,
    );
    let log = stack.dir.path().join("same-address.log");
    let mut child = redcloak_command(&env)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    let refused = wait_for(Duration::from_secs(10), || {
        text().contains("REDCLOAK_ADMIN_LISTEN is the client listener's address")
    });
    // The socket still speaks RESP to clients, not HTTP.
    let pong = wait_for(Duration::from_secs(10), || {
        UnixStream::connect(&sock).is_ok_and(|mut s| {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reply = [0u8; 7];
            s.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok()
                && s.read_exact(&mut reply).is_ok()
                && &reply == b"+PONG\r\n"
        })
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(refused && pong, "{}", text());
}

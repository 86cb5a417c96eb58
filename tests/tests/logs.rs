//! Logs of a real redcloak: JSON lines by default when stderr is not a terminal (as here),
//! with the connection's span and the documented message texts; text on request; an unknown
//! `REDCLOAK_LOG_FORMAT` is a warning, not a failure. Never a value or a secret.

use std::time::Duration;

use redcloak_e2e::{wait_for, Stack};
use redis::RedisResult;

/// Lines that are JSON objects.
fn json_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.starts_with('{')).collect()
}

#[test]
fn json_lines_by_default_without_values_or_secrets() {
    let stack = Stack::start();
    stack
        .direct()
        .set(b"log-planted-key", b"log-planted-plaintext");
    let mut c = stack.client();
    let _: () = redis::cmd("SET")
        .arg("log-key")
        .arg("log-value-4711")
        .query(&mut c)
        .unwrap();
    let bad: RedisResult<String> = redis::cmd("GET").arg("log-planted-key").query(&mut c);
    assert!(bad.is_err());
    let log = stack.proxy.log_text();
    let lines = json_lines(&log);
    assert!(!lines.is_empty(), "no JSON line in:\n{log}");
    for line in &lines {
        assert!(
            line.ends_with('}')
                && line.contains(r#""timestamp":""#)
                && line.contains(r#""level":""#)
                && line.contains(r#""message":""#),
            "not a JSON event: {line}"
        );
    }
    // The message texts operators grep for are intact, fields are JSON fields.
    let ready = lines
        .iter()
        .find(|l| l.contains(r#""message":"redcloak is ready""#))
        .unwrap_or_else(|| panic!("no ready line in:\n{log}"));
    assert!(
        ready.contains(&format!(r#""listen":"{}""#, stack.proxy.addr)),
        "{ready}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(r#""message":"Redis handshake ok""#)
                && l.contains(r#""tls":"TLS 1.3""#)),
        "{log}"
    );
    let decrypt = lines
        .iter()
        .find(|l| l.contains(r#""message":"a stored value could not be decrypted""#))
        .unwrap_or_else(|| panic!("no decrypt warning in:\n{log}"));
    assert!(
        decrypt.contains(r#""level":"WARN""#) && decrypt.contains(r#""command":"GET""#),
        "{decrypt}"
    );
    for needle in [
        "log-key",
        "log-value-4711",
        "log-planted",
        &stack.password,
        &stack.keys,
    ] {
        assert!(!log.contains(needle), "{needle:?} in the log:\n{log}");
    }
}

#[test]
fn session_events_carry_the_connection_span() {
    let stack = Stack::start_with(
        &[],
        &[("REDCLOAK_LOG", "debug"), ("REDCLOAK_IDLE_TIMEOUT", "1")],
    );
    let mut c = stack.client();
    let _: Option<String> = redis::cmd("GET").arg("idle-key").query(&mut c).unwrap();
    let idle = r#""message":"closing an idle client (REDCLOAK_IDLE_TIMEOUT)""#;
    assert!(
        wait_for(Duration::from_secs(5), || stack
            .proxy
            .log_text()
            .contains(idle)),
        "{}",
        stack.proxy.log_text()
    );
    let log = stack.proxy.log_text();
    let line = json_lines(&log)
        .into_iter()
        .find(|l| l.contains(idle))
        .unwrap();
    assert!(
        line.contains(r#""span":{"#)
            && line.contains(r#""name":"conn""#)
            && line.contains(r#""id":"#)
            && line.contains(r#""client.addr":"127.0.0.1:"#),
        "{line}"
    );
    assert!(!log.contains("idle-key"), "{log}");
}

#[test]
fn text_on_request() {
    let stack = Stack::start_with(&[], &[("REDCLOAK_LOG_FORMAT", "text")]);
    let log = stack.proxy.log_text();
    assert!(json_lines(&log).is_empty(), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains(" INFO ") && l.contains("redcloak is ready")),
        "{log}"
    );
    assert!(log.contains("tls=TLS 1.3"), "{log}");
}

#[test]
fn an_unknown_format_is_a_warning_and_json_is_used() {
    let stack = Stack::start_with(&[], &[("REDCLOAK_LOG_FORMAT", "yaml")]);
    let log = stack.proxy.log_text();
    assert!(
        log.contains("warning: REDCLOAK_LOG_FORMAT=yaml is not a log format; logging as json")
            && log.contains("docs/configuration.md#logs"),
        "{log}"
    );
    assert!(
        json_lines(&log)
            .iter()
            .any(|l| l.contains(r#""message":"redcloak is ready""#)),
        "{log}"
    );
}

//! Pipelining, concurrency and redis-benchmark through redcloak.

use std::process::Command;

use redcloak_e2e::Stack;
use redis::cmd;

#[test]
fn a_pipeline_of_10000_mixed_commands_is_answered_in_order() {
    let stack = Stack::start();
    let mut c = stack.client();
    let mut pipe = redis::pipe();
    for i in 0..10_000 {
        match i % 4 {
            0 => pipe
                .cmd("SET")
                .arg(format!("k{i}"))
                .arg(format!("value-{i}")),
            1 => pipe.cmd("GET").arg(format!("k{}", i - 1)),
            2 => pipe.cmd("EXISTS").arg(format!("k{}", i - 2)).arg("missing"),
            _ => pipe.cmd("ECHO").arg(format!("echo-{i}")),
        };
    }
    let replies: Vec<redis::Value> = pipe.query(&mut c).unwrap();
    assert_eq!(replies.len(), 10_000);
    for (i, reply) in replies.iter().enumerate() {
        let expected = match i % 4 {
            0 => redis::Value::Okay,
            1 => redis::Value::BulkString(format!("value-{}", i - 1).into_bytes()),
            2 => redis::Value::Int(1),
            _ => redis::Value::BulkString(format!("echo-{i}").into_bytes()),
        };
        assert_eq!(reply, &expected, "reply #{i} out of order or wrong");
    }
    let stored = stack.direct().get(b"k9996").unwrap();
    assert_eq!(stack.key_ring().decrypt(&stored).unwrap(), b"value-9996");
}

#[test]
fn one_hundred_concurrent_clients() {
    let stack = Stack::start();
    std::thread::scope(|s| {
        for t in 0..100 {
            let stack = &stack;
            s.spawn(move || {
                let mut c = stack.client();
                for i in 0..50 {
                    let key = format!("client{t}:key{i}");
                    let value = format!("client {t} value {i}");
                    let _: () = cmd("SET").arg(&key).arg(&value).query(&mut c).unwrap();
                    let got: String = cmd("GET").arg(&key).query(&mut c).unwrap();
                    assert_eq!(got, value);
                }
            });
        }
    });
    let mut direct = stack.direct();
    let keys = direct.keys();
    assert_eq!(keys.len(), 100 * 50);
    let ring = stack.key_ring();
    for key in keys.iter().step_by(97) {
        let stored = direct.get(key).unwrap();
        assert!(ring.decrypt(&stored).is_ok(), "{key:?} holds ciphertext");
    }
}

#[test]
fn redis_benchmark_set_get_runs_without_errors() {
    let stack = Stack::start();
    let out = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &stack.proxy.addr.port().to_string(),
        ])
        .args([
            "-t", "set,get", "-n", "5000", "-c", "20", "-P", "4", "-d", "100", "-r", "1000", "-q",
            "--csv",
        ])
        .output()
        .expect("redis-benchmark (make test installs redis-tools)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "redis-benchmark failed:\n{stdout}\n{stderr}"
    );
    for test in ["\"SET\"", "\"GET\""] {
        assert!(
            stdout.contains(test),
            "no {test} result in:\n{stdout}\n{stderr}"
        );
    }
    assert!(
        !stdout.to_lowercase().contains("error") && !stderr.contains("ERR"),
        "errors:\n{stdout}\n{stderr}"
    );
    // What redis-benchmark wrote is stored encrypted.
    let mut direct = stack.direct();
    let keys = direct.keys();
    assert!(!keys.is_empty());
    let ring = stack.key_ring();
    for key in &keys {
        let stored = direct.get(key).unwrap();
        assert!(ring.decrypt(&stored).is_ok(), "{key:?} is not ciphertext");
    }
}

#[test]
fn redis_cli_round_trip() {
    let stack = Stack::start();
    assert_eq!(
        stack.redis_cli(&["SET", "greeting", "hello world"]).trim(),
        "OK"
    );
    assert_eq!(stack.redis_cli(&["GET", "greeting"]).trim(), "hello world");
    let stored = stack.direct().get(b"greeting").unwrap();
    assert!(stored.starts_with(b"gAAAAA"));
    // Piped (non-interactive) redis-cli sends several commands on one connection.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf 'SET a 1\\nMGET a greeting\\nDEL a\\n' | redis-cli -p {}",
            stack.proxy.addr.port()
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "OK\n1\nhello world\n1\n"
    );
}

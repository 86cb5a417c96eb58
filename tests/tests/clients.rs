//! Real client libraries, unmodified, through redcloak: redis-py (RESP2 and RESP3) and
//! node-redis (RESP2 and RESP3). Each script exercises strings, hashes, lists, pipelines,
//! transactions and pub/sub; afterwards every value Redis holds must be ciphertext.

use std::path::Path;
use std::process::Command;

use redcloak_e2e::{missing, Stack};

fn run(program: &str, script: &Path, stack: &Stack, proto: u8) {
    let out = Command::new(program)
        .arg(script)
        .args([
            "127.0.0.1",
            &stack.proxy.addr.port().to_string(),
            &proto.to_string(),
        ])
        .current_dir(script.parent().unwrap())
        .output()
        .unwrap_or_else(|_| {
            missing(
                &format!("{program} is not installed"),
                "python3 and node for the client tests",
                "run `make test` (scripts/ensure-deps.sh installs them)",
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "{program} {} RESP{proto} failed:\n{stdout}\n{stderr}",
        script.display()
    );
}

fn clients_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/clients"))
}

#[test]
fn redis_py_resp2_and_resp3() {
    let check = Command::new("python3")
        .args(["-c", "import redis"])
        .output();
    if !check.is_ok_and(|o| o.status.success()) {
        missing(
            "the Python redis package is not installed",
            "redis-py for the client test",
            "run `make test` (it installs it) or `pip install redis`",
        );
    }
    let stack = Stack::start();
    run(
        "python3",
        &clients_dir().join("redis_py_client.py"),
        &stack,
        2,
    );
    run(
        "python3",
        &clients_dir().join("redis_py_client.py"),
        &stack,
        3,
    );
    assert!(stack.assert_all_values_encrypted() > 200);
}

#[test]
fn node_redis_resp2_and_resp3() {
    let script = clients_dir().join("node/client.mjs");
    if !clients_dir().join("node/node_modules/redis").is_dir() {
        missing(
            "tests/clients/node/node_modules is not installed",
            "node-redis for the client test",
            "run `make test` (it installs it) or `npm ci --prefix tests/clients/node`",
        );
    }
    let stack = Stack::start();
    run("node", &script, &stack, 2);
    run("node", &script, &stack, 3);
    assert!(stack.assert_all_values_encrypted() > 200);
}

//! Real applications, unmodified, from PyPI / npm, through redcloak — each ending with an
//! audit that reads Redis around the proxy and finds only ciphertext.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redcloak_commands::resp::Frame;
use redcloak_e2e::plain::PlainRedis;
use redcloak_e2e::{missing, Stack};

/// The longest one application script may run before it is killed (the test then fails).
/// They take 5–15 s on a quiet machine; the margin is for a loaded one.
const APP_TIMEOUT: Duration = Duration::from_secs(120);

fn apps_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/apps"))
}

fn require(module: &str) {
    let present = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        missing(
            &format!("the Python package {module} is not installed"),
            &format!("{module} from PyPI for the application tests"),
            "run `make test` (scripts/ensure-deps.sh installs it)",
        );
    }
}

/// Runs `python3 apps/<script> 127.0.0.1 PORT`, killed after [`APP_TIMEOUT`]; returns
/// (success and `ok` printed last, stdout, stderr).
fn run_app(script: &str, port: u16) -> (bool, String, String) {
    let mut child = Command::new("python3")
        .arg(apps_dir().join(script))
        .args(["127.0.0.1", &port.to_string()])
        .current_dir(apps_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + APP_TIMEOUT;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, mut stderr) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    if status.is_none() {
        stderr.push_str(&format!("\n(killed after {} s)", APP_TIMEOUT.as_secs()));
    }
    let ok = status.is_some_and(|s| s.success()) && stdout.trim_end().ends_with("ok");
    (ok, stdout, stderr)
}

/// Runs `script` (which needs the Python module `module`) through redcloak; it prints `ok`
/// last when everything held. Returns its stdout.
fn python(script: &str, module: &str, stack: &Stack) -> String {
    require(module);
    let (ok, stdout, stderr) = run_app(script, stack.proxy.addr.port());
    assert!(
        ok,
        "{script} failed:\n{stdout}\n{stderr}\nredcloak's log:\n{}",
        stack.proxy.log_text()
    );
    stdout
}

/// How many members the sorted set or set `key` holds, read around redcloak.
fn members_in_redis(stack: &Stack, kind: &[u8], key: &[u8]) -> i64 {
    let cmd: &[u8] = if kind == b"zset" { b"ZCARD" } else { b"SCARD" };
    match stack.direct().cmd(&[cmd, key]).expect("count members") {
        Frame::Integer(n) => n,
        other => panic!("{other:?}"),
    }
}

#[test]
fn django_cache_counters_and_values() {
    let stack = Stack::start();
    python("django_cache.py", "django", &stack);
    assert!(stack.assert_all_values_encrypted() >= 5);
}

/// redis-py's `Lock`: acquire, extend, reacquire, release, contention between clients,
/// mutual exclusion over a non-atomic counter in several threads, expiry. Its scripts compare
/// the stored token with the caller's: redcloak runs them on the decrypted token.
#[test]
fn redis_py_lock() {
    let stack = Stack::start();
    python("redis_lock.py", "redis", &stack);
    let checked = stack.assert_all_values_encrypted();
    assert!(checked >= 3, "only {checked} values checked");
    let mut direct = stack.direct();
    let token = direct
        .get(b"lock:expiring")
        .expect("the lock held at the end");
    let ring = stack.key_ring();
    let plain = ring
        .decrypt(&token)
        .expect("the token is redcloak ciphertext");
    assert_eq!(
        direct.get(b"lock:kept").map(|v| ring.decrypt(&v).unwrap()),
        Some(plain),
        "the token the script compared is the one redis-py holds"
    );
}

/// `limits` (flask-limiter's engine): fixed window, moving window and sliding window counter
/// with its Redis storage, through redcloak and against a plain redis-server — the same
/// allow/deny sequences, remaining counts and key names.
#[test]
fn limits_rate_limiter_matches_plain_redis() {
    require("limits");
    let stack = Stack::start();
    let through = python("limits_rate.py", "limits", &stack);
    let plain = PlainRedis::start(stack.dir.path(), &[]);
    let (ok, direct, stderr) = run_app("limits_rate.py", plain.port);
    assert!(
        ok,
        "limits_rate.py against a plain Redis:\n{direct}\n{stderr}"
    );
    let record = |out: &str| out.lines().rev().nth(1).unwrap_or_default().to_owned();
    assert_eq!(
        record(&through),
        record(&direct),
        "limits through redcloak and against Redis differ"
    );
    assert!(record(&through).contains("\"hits\": [true, true, true, true, true, false, false]"));
    let checked = stack.assert_all_values_encrypted();
    assert!(checked >= 3, "only {checked} values checked");
}

/// celery with the Redis broker and result backend, a worker started in-process: results,
/// a failure, a retry (ETA messages unacked), a group and a chord (counted by a Lua script).
#[test]
fn celery_worker_with_redis_broker_and_backend() {
    require("celery");
    let stack = Stack::start();
    python("celery_app.py", "celery", &stack);
    let checked = stack.assert_all_values_encrypted();
    assert!(checked > 15, "only {checked} values and members checked");
    // kombu's binding table is a set of routing entries, stored as member ciphertexts.
    assert_eq!(
        members_in_redis(&stack, b"set", b"_kombu.binding.redcloak-celery"),
        1
    );
}

/// huey (RedisHuey) with a consumer in-process: immediate, delayed and scheduled tasks (the
/// schedule is a sorted set of pickled messages, popped by a Lua script), a retry, a revoked
/// task and a task lock.
#[test]
fn huey_immediate_and_scheduled_tasks() {
    require("huey");
    let stack = Stack::start();
    python("huey_app.py", "huey", &stack);
    let checked = stack.assert_all_values_encrypted();
    assert!(checked >= 2, "only {checked} values and members checked");
    assert_eq!(
        members_in_redis(&stack, b"zset", b"huey.schedule.redcloaktest"),
        1
    );
}

//! The operator's key tools and Python interoperability across a rotation:
//! `redcloak encrypt` / `redcloak decrypt` on values Redis really stores, and a Python service
//! that talks to the same Redis directly (TLS + AUTH, redis-py) with
//! `cryptography.fernet.MultiFernet` over the same ring, before, during and after a rotation
//! and `rewrap`.

use std::io::Write;
use std::process::{Command, Stdio};

use bytes::Bytes;
use redcloak_commands::resp::Frame;
use redcloak_e2e::{output_text, run_redcloak, with_var, Redcloak, Stack};

fn tool(env: &[(String, String)], args: &[&str], stdin: &[u8]) -> std::process::Output {
    let mut child = redcloak_e2e::redcloak_command(env)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redcloak");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn get(stack: &Stack, key: &str) -> Frame {
    stack.plain().cmd(&[b"GET", key.as_bytes()]).unwrap()
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

#[test]
fn decrypt_opens_what_redis_stores_and_encrypt_writes_what_redcloak_reads() {
    let stack = Stack::start();
    let mut c = stack.plain();
    c.cmd(&[b"SET", b"k", b"stored secret"]).unwrap();
    c.cmd(&[b"SADD", b"s", b"member"]).unwrap();
    let stored = stack.direct().get(b"k").unwrap();
    let env = &stack.env;
    let ring = stack.key_ring();
    let id = ring.key_ids()[0].to_string();

    // decrypt: the plaintext alone on stdout (no newline), what opened it on stderr; a
    // trailing newline after the token (as `redis-cli` or `echo` print it) is fine.
    let out = tool(env, &["decrypt"], &[&stored[..], b"\n"].concat());
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(out.stdout, b"stored secret");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("fernet, key {id}, written 20")),
        "{err}"
    );

    // A member, as hex.
    let Frame::Array(members) = stack.direct().cmd(&[b"SMEMBERS", b"s"]).unwrap() else {
        panic!()
    };
    let Frame::Bulk(member) = &members[0] else {
        panic!()
    };
    let hex: String = member.iter().map(|b| format!("{b:02x}")).collect();
    let out = tool(env, &["decrypt", "--member"], hex.as_bytes());
    assert_eq!(out.stdout, b"member", "{}", output_text(&out));

    // encrypt: what it prints, stored around redcloak, reads back through redcloak.
    let out = tool(env, &["encrypt"], b"made by the tool");
    assert!(out.status.success(), "{}", output_text(&out));
    let token = String::from_utf8(out.stdout).unwrap();
    stack.direct().set(b"tool", token.trim_end().as_bytes());
    assert_eq!(get(&stack, "tool"), bulk("made by the tool"));

    // A key-bound envelope opens only with the key name it was made for.
    let out = tool(
        env,
        &[
            "encrypt",
            "--format",
            "aes-gcm",
            "--key-name",
            "user:1",
            "--field",
            "name",
        ],
        b"bound",
    );
    assert!(out.status.success(), "{}", output_text(&out));
    let envelope = out.stdout;
    let ok = tool(
        env,
        &["decrypt", "--key-name", "user:1", "--field", "name"],
        &envelope,
    );
    assert_eq!(ok.stdout, b"bound", "{}", output_text(&ok));
    let moved = tool(
        env,
        &["decrypt", "--key-name", "user:2", "--field", "name"],
        &envelope,
    );
    assert_eq!(moved.status.code(), Some(1));
    assert!(
        output_text(&moved).contains("encrypted for another key"),
        "{}",
        output_text(&moved)
    );
    let unnamed = tool(env, &["decrypt"], &envelope);
    assert_eq!(unnamed.status.code(), Some(78), "{}", output_text(&unnamed));

    // Not a ciphertext, or under a key that is not in the ring: exit 1, a clear message.
    let plain = tool(env, &["decrypt"], b"just text");
    assert_eq!(plain.status.code(), Some(1));
    assert!(output_text(&plain).contains("not encrypted by redcloak"));
    let other = with_var(
        env,
        "REDIS_ENCRYPTION_KEY",
        redcloak_crypto::generate_key().as_ref(),
    );
    let wrong = tool(&other, &["decrypt"], &stored);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(output_text(&wrong).contains("no configured encryption key"));
    // No key at all: a configuration error.
    let none = redcloak_e2e::without_var(env, "REDIS_ENCRYPTION_KEY");
    assert_eq!(tool(&none, &["decrypt"], &stored).status.code(), Some(78));
    // The key never appears in anything the tools print.
    for out in [&wrong, &plain, &unnamed, &moved] {
        redcloak_e2e::assert_no_secret(&output_text(out), &[&stack.keys]);
    }
}

/// Runs `script` with python3 (redis-py and cryptography, installed by
/// scripts/ensure-deps.sh) against Redis directly, with `ring` as its MultiFernet ring.
fn python_service(stack: &Stack, ring: &str, script: &str) -> Vec<String> {
    let preamble = "import os, redis\n\
        from cryptography.fernet import Fernet, MultiFernet\n\
        r = redis.Redis(host='127.0.0.1', port=int(os.environ['PORT']), password=os.environ['PW'], \
            ssl=True, ssl_ca_certs=os.environ['CA'], ssl_certfile=os.environ['CERT'], ssl_keyfile=os.environ['KEY'])\n\
        m = MultiFernet([Fernet(k) for k in os.environ['RING'].split(',')])\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!("{preamble}{script}"))
        .env("PORT", stack.redis.port.to_string())
        .env("PW", &stack.password)
        .env("CA", &stack.pki.ca_cert)
        .env("CERT", &stack.pki.client_cert)
        .env("KEY", &stack.pki.client_key)
        .env("RING", ring)
        .output()
        .expect("python3 (scripts/ensure-deps.sh installs it with redis and cryptography)");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_python_multifernet_service_shares_the_ring_through_a_rotation_and_rewrap() {
    let mut stack = Stack::start();
    let key_a = stack.keys.clone();
    let key_b = redcloak_crypto::generate_key().to_string();
    stack
        .plain()
        .cmd(&[b"SET", b"redcloak-old", b"written by redcloak under A"])
        .unwrap();
    // Before the rotation the Python service has A alone.
    let out = python_service(
        &stack,
        &key_a,
        "print(m.decrypt(r.get('redcloak-old')).decode())\n\
         r.set('python-old', m.encrypt(b'written by python under A'))\n",
    );
    assert_eq!(out, ["written by redcloak under A"]);

    // Rotation: both sides get B,A.
    let ring_ba = format!("{key_b},{key_a}");
    let env = with_var(&stack.env, "REDIS_ENCRYPTION_KEY", &ring_ba);
    stack.proxy = Redcloak::start(stack.dir.path(), &env);
    stack.keys = ring_ba.clone();
    stack
        .plain()
        .cmd(&[b"SET", b"redcloak-new", b"written by redcloak under B"])
        .unwrap();
    let out = python_service(
        &stack,
        &ring_ba,
        "print(m.decrypt(r.get('redcloak-old')).decode())\n\
         print(m.decrypt(r.get('redcloak-new')).decode())\n\
         r.set('python-new', m.encrypt(b'written by python under B'))\n\
         r.set('python-rotated', m.rotate(r.get('python-old')))\n",
    );
    assert_eq!(
        out,
        ["written by redcloak under A", "written by redcloak under B"]
    );
    assert_eq!(get(&stack, "python-old"), bulk("written by python under A"));
    assert_eq!(get(&stack, "python-new"), bulk("written by python under B"));
    assert_eq!(
        get(&stack, "python-rotated"),
        bulk("written by python under A")
    );

    // rewrap; then both sides drop A.
    let run = run_redcloak(&env, &["rewrap"]);
    assert_eq!(run.status.code(), Some(0), "{}", output_text(&run));
    let out = python_service(
        &stack,
        &key_b,
        "for k in ['redcloak-old', 'redcloak-new', 'python-old', 'python-new', 'python-rotated']:\n    print(m.decrypt(r.get(k)).decode())\n",
    );
    assert_eq!(
        out,
        [
            "written by redcloak under A",
            "written by redcloak under B",
            "written by python under A",
            "written by python under B",
            "written by python under A"
        ]
    );
    let env_b = with_var(&stack.env, "REDIS_ENCRYPTION_KEY", &key_b);
    stack.proxy = Redcloak::start(stack.dir.path(), &env_b);
    assert_eq!(get(&stack, "python-old"), bulk("written by python under A"));
}

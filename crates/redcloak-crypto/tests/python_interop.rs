//! Tokens are interchangeable with Python's `cryptography.fernet`, the
//! library applications most often used to encrypt Redis values before
//! redcloak: Python decrypts what we write, we decrypt what Python writes,
//! and `MultiFernet` rotation works across both.
//!
//! Needs `python3` with the `cryptography` package. If either is missing the
//! tests FAIL and say how to install it: a skipped interop test would hide a
//! compatibility break. `REDCLOAK_TEST_PYTHON` selects another interpreter.

use std::io::ErrorKind;
use std::process::{Command, Stdio};

use redcloak_crypto::{generate_key, DecryptError, KeyRing};

const KEY_A: &str = "CnoFYelOnLLksjp7Te1342ralzvooKpUtxSZFrasGxA=";
const KEY_B: &str = "ApHo_gwPKEDd59lgnwzd-Fy9eNhj6uJlpHxE3xRcXWs=";

fn interpreter() -> String {
    std::env::var("REDCLOAK_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Runs `script` with `env` set for the child only; returns its stdout lines.
/// Keys and data go through the environment, not the command line.
fn python(script: &str, env: &[(&str, &str)]) -> Vec<String> {
    let python = interpreter();
    let preamble = "import os, sys\n\
                    try:\n    from cryptography.fernet import Fernet, MultiFernet\n\
                    except ImportError as e:\n    print(e, file=sys.stderr); sys.exit(86)\n";
    let output = Command::new(&python)
        .arg("-c")
        .arg(format!("{preamble}{script}"))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            if e.kind() == ErrorKind::NotFound {
                panic!(
                    "error: `{python}` was not found\n  required: Python 3 with the `cryptography` \
                     package, to check that redcloak's Fernet tokens interoperate with Python's\n  \
                     fix: install Python 3 (e.g. `apt-get install python3 python3-pip`), then \
                     `pip install cryptography`; or point REDCLOAK_TEST_PYTHON at an interpreter \
                     that has it"
                )
            }
            panic!("error: could not run `{python}`: {e}")
        });
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(86) {
        panic!(
            "error: `{python}` cannot import cryptography.fernet ({})\n  required: the Python \
             `cryptography` package, to check that redcloak's Fernet tokens interoperate with \
             Python's\n  fix: `{python} -m pip install cryptography` (or `pip install \
             cryptography`); or point REDCLOAK_TEST_PYTHON at an interpreter that has it",
            stderr.trim()
        );
    }
    assert!(
        output.status.success(),
        "`{python}` failed ({}):\n{stderr}",
        output.status
    );
    String::from_utf8(output.stdout)
        .expect("python printed UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sample() -> Vec<u8> {
    let mut data: Vec<u8> = (0..=255).collect();
    data.extend_from_slice("héllo, wörld\r\n\0".as_bytes());
    data
}

fn utf8(token: &[u8]) -> &str {
    std::str::from_utf8(token).expect("tokens are ASCII")
}

#[test]
fn python_decrypts_our_tokens() {
    let data = sample();
    let token = KeyRing::parse(KEY_A).unwrap().encrypt(&data);
    let empty = KeyRing::parse(KEY_A).unwrap().encrypt(b"");
    let out = python(
        "f = Fernet(os.environ['KEY'])\n\
         print(f.decrypt(os.environ['TOKEN']).hex())\n\
         print(repr(f.decrypt(os.environ['EMPTY'])))\n",
        &[
            ("KEY", KEY_A),
            ("TOKEN", utf8(&token)),
            ("EMPTY", utf8(&empty)),
        ],
    );
    assert_eq!(out, [hex(&data), "b''".to_string()]);
}

#[test]
fn we_decrypt_python_tokens() {
    let data = sample();
    let out = python(
        "f = Fernet(os.environ['KEY'])\n\
         print(f.encrypt(bytes.fromhex(os.environ['DATA'])).decode())\n\
         print(f.encrypt(b'').decode())\n",
        &[("KEY", KEY_A), ("DATA", &hex(&data))],
    );
    let ring = KeyRing::parse(KEY_A).unwrap();
    assert_eq!(ring.decrypt(out[0].as_bytes()).unwrap(), data);
    assert_eq!(ring.decrypt(out[1].as_bytes()).unwrap(), b"");
}

#[test]
fn multifernet_rotation_python_reads_ours() {
    let data = sample();
    let old_token = KeyRing::parse(KEY_A).unwrap().encrypt(&data);
    let new_token = KeyRing::parse(&format!("{KEY_B},{KEY_A}"))
        .unwrap()
        .encrypt(&data);
    let out = python(
        "m = MultiFernet([Fernet(os.environ['NEW']), Fernet(os.environ['OLD'])])\n\
         print(m.decrypt(os.environ['OLD_TOKEN']).hex())\n\
         print(m.decrypt(os.environ['NEW_TOKEN']).hex())\n\
         # The rotated-to key alone opens what redcloak wrote after rotation.\n\
         print(Fernet(os.environ['NEW']).decrypt(os.environ['NEW_TOKEN']).hex())\n\
         # Python's rotate() of our old token, for us to read back.\n\
         print(m.rotate(os.environ['OLD_TOKEN']).decode())\n",
        &[
            ("OLD", KEY_A),
            ("NEW", KEY_B),
            ("OLD_TOKEN", utf8(&old_token)),
            ("NEW_TOKEN", utf8(&new_token)),
        ],
    );
    assert_eq!(out[..3], [hex(&data), hex(&data), hex(&data)]);
    let rotated = out[3].as_bytes();
    assert_eq!(
        KeyRing::parse(KEY_B).unwrap().decrypt(rotated).unwrap(),
        data
    );
    assert_eq!(
        KeyRing::parse(KEY_A).unwrap().decrypt(rotated),
        Err(DecryptError::NoMatchingKey)
    );
}

#[test]
fn multifernet_rotation_we_read_pythons() {
    let data = sample();
    let out = python(
        "old = Fernet(os.environ['OLD'])\n\
         m = MultiFernet([Fernet(os.environ['NEW']), old])\n\
         d = bytes.fromhex(os.environ['DATA'])\n\
         before = old.encrypt(d)\n\
         print(before.decode())\n\
         print(m.encrypt(d).decode())\n\
         print(m.rotate(before).decode())\n",
        &[("OLD", KEY_A), ("NEW", KEY_B), ("DATA", &hex(&data))],
    );
    let rotated_ring = KeyRing::parse(&format!("{KEY_B},{KEY_A}")).unwrap();
    let new_only = KeyRing::parse(KEY_B).unwrap();
    let old_only = KeyRing::parse(KEY_A).unwrap();
    for token in &out {
        assert_eq!(rotated_ring.decrypt(token.as_bytes()).unwrap(), data);
    }
    // Made before rotation: old key only.
    assert_eq!(old_only.decrypt(out[0].as_bytes()).unwrap(), data);
    assert_eq!(
        new_only.decrypt(out[0].as_bytes()),
        Err(DecryptError::NoMatchingKey)
    );
    // MultiFernet.encrypt and rotate() use the first (new) key.
    for token in &out[1..] {
        assert_eq!(new_only.decrypt(token.as_bytes()).unwrap(), data);
        assert_eq!(
            old_only.decrypt(token.as_bytes()),
            Err(DecryptError::NoMatchingKey)
        );
    }
}

#[test]
fn keys_are_interchangeable() {
    let ours = generate_key();
    let out = python(
        "ours = Fernet(os.environ['OURS'])\n\
         print(ours.encrypt(b'from python').decode())\n\
         print(Fernet.generate_key().decode())\n",
        &[("OURS", ours.as_str())],
    );
    assert_eq!(
        KeyRing::parse(&ours)
            .unwrap()
            .decrypt(out[0].as_bytes())
            .unwrap(),
        b"from python"
    );
    let theirs = KeyRing::parse(&out[1]).expect("Python's generate_key() output parses");
    let token = theirs.encrypt(b"from rust");
    let back = python(
        "print(Fernet(os.environ['KEY']).decrypt(os.environ['TOKEN']).decode())\n",
        &[("KEY", &out[1]), ("TOKEN", utf8(&token))],
    );
    assert_eq!(back, ["from rust"]);
}

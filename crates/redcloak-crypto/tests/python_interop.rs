//! Tokens are interchangeable with Python's `cryptography.fernet`, the
//! library applications most often used to encrypt Redis values before
//! redcloak: Python decrypts what we write, we decrypt what Python writes,
//! and `MultiFernet` rotation works across both. The AES-GCM envelope and
//! member layouts of docs/encryption.md are re-implemented here in Python
//! (`HKDF`, `AESGCM`, `AESSIV`) and must agree with ours byte for byte.
//!
//! Needs `python3` with the `cryptography` package. If either is missing the
//! tests FAIL and say how to install it: a skipped interop test would hide a
//! compatibility break. `REDCLOAK_TEST_PYTHON` selects another interpreter.

use std::io::ErrorKind;
use std::process::{Command, Stdio};

use redcloak_crypto::{generate_key, Binding, DecryptError, KeyRing, ValueFormat};

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

#[test]
fn we_decrypt_python_tokens_stamped_in_the_future() {
    let out = python(
        "import time\n\
         f = Fernet(os.environ['KEY'])\n\
         now = int(time.time())\n\
         print(now)\n\
         for ahead in (3600, 86400 * 365 * 20):\n    \
             print(f.encrypt_at_time(b'from the future', now + ahead).decode())\n",
        &[("KEY", KEY_A)],
    );
    let now: u64 = out[0].parse().unwrap();
    let ring = KeyRing::parse(KEY_A).unwrap();
    for (token, ahead) in out[1..].iter().zip([3600, 86400 * 365 * 20]) {
        assert_eq!(ring.decrypt(token.as_bytes()).unwrap(), b"from the future");
        let opened = ring
            .decrypt_value(token.as_bytes(), &Binding::key(0, b"k"))
            .unwrap();
        assert_eq!(opened.timestamp, Some(now + ahead));
    }
}

/// The derivation and layouts in docs/encryption.md, implemented
/// independently in Python (`HKDF`, `AESGCM`, `AESSIV`, `Cipher(AES)`).
const PY_FORMATS: &str = "\
import hashlib, base64\n\
from cryptography.hazmat.primitives import hashes\n\
from cryptography.hazmat.primitives.kdf.hkdf import HKDF\n\
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes\n\
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV\n\
raw = base64.urlsafe_b64decode(os.environ['KEY'])\n\
kid = hashlib.sha256(raw).digest()[:4]\n\
def derive(label, n):\n    \
    return HKDF(hashes.SHA256(), n, b'redcloak key ring v1', label).derive(raw)\n\
gcm = AESGCM(derive(b'redcloak/v1/value/aes-256-gcm', 32))\n\
origin = Cipher(algorithms.AES(derive(b'redcloak/v1/value/origin-check', 32)), modes.ECB())\n\
siv = AESSIV(derive(b'redcloak/v1/member/aes-256-siv', 64))\n\
def u64(n): return n.to_bytes(8, 'big')\n\
def aad(db, key, field):\n    \
    label = b'redcloak/v1/value/aes-256-gcm'\n    \
    a = bytes([len(label)]) + label + b'\\xc1' + kid + db.to_bytes(4, 'big') + u64(len(key)) + key\n    \
    return a + (b'\\x00' if field is None else b'\\x01' + u64(len(field)) + field)\n\
def check(nonce, tag):\n    \
    e = origin.encryptor()\n    \
    x = e.update(tag)\n    \
    y = bytes(a ^ b for a, b in zip(x, kid + nonce))\n    \
    return e.update(y)[:4]\n\
def open_envelope(env, db, key, field):\n    \
    assert env[0] == 0xc1 and env[1:5] == kid\n    \
    nonce, body, tag, chk = env[5:17], env[17:-20], env[-20:-4], env[-4:]\n    \
    assert check(nonce, tag) == chk\n    \
    return gcm.decrypt(nonce, body + tag, aad(db, key, field))\n\
def seal(plain, db, key, field):\n    \
    nonce = os.urandom(12)\n    \
    ct = gcm.encrypt(nonce, plain, aad(db, key, field))\n    \
    return b'\\xc1' + kid + nonce + ct + check(nonce, ct[-16:])\n\
member_ad = b'redcloak/v1/member/aes-256-siv\\xf5' + kid\n\
def member(m):\n    \
    return b'\\xf5' + kid + siv.encrypt(m, [member_ad])\n";

#[test]
fn python_reads_our_envelopes_and_members_from_the_documented_layout() {
    let data = sample();
    let ring = KeyRing::parse(KEY_A)
        .unwrap()
        .with_format(ValueFormat::AesGcm);
    let string = ring.encrypt_value(&data, &Binding::key(7, b"user:1"));
    let field = ring.encrypt_value(b"", &Binding::field(0, b"h", b"f\x00\xff"));
    let members: Vec<String> = [&b""[..], b"x", &data]
        .iter()
        .map(|m| hex(&ring.encrypt_member(m)))
        .collect();
    let out = python(
        &format!(
            "{PY_FORMATS}\
             print(open_envelope(bytes.fromhex(os.environ['STRING']), 7, b'user:1', None).hex())\n\
             print(repr(open_envelope(bytes.fromhex(os.environ['FIELD']), 0, b'h', b'f\\x00\\xff')))\n\
             for m in (b'', b'x', bytes.fromhex(os.environ['DATA'])):\n    \
                 print(member(m).hex())\n"
        ),
        &[
            ("KEY", KEY_A),
            ("STRING", &hex(&string)),
            ("FIELD", &hex(&field)),
            ("DATA", &hex(&data)),
        ],
    );
    assert_eq!(out[0], hex(&data));
    assert_eq!(out[1], "b''");
    assert_eq!(out[2..], members[..]);
}

#[test]
fn we_read_envelopes_python_wrote_from_the_documented_layout() {
    let data = sample();
    let out = python(
        &format!(
            "{PY_FORMATS}\
             d = bytes.fromhex(os.environ['DATA'])\n\
             print(seal(d, 0, b'k', None).hex())\n\
             print(seal(d, 4294967295, b'', b'field').hex())\n"
        ),
        &[("KEY", KEY_A), ("DATA", &hex(&data))],
    );
    let ring = KeyRing::parse(KEY_A).unwrap();
    let unhex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    let a = ring
        .decrypt_value(&unhex(&out[0]), &Binding::key(0, b"k"))
        .unwrap();
    assert_eq!(*a.plaintext, data);
    let b = ring
        .decrypt_value(&unhex(&out[1]), &Binding::field(u32::MAX, b"", b"field"))
        .unwrap();
    assert_eq!(*b.plaintext, data);
    assert_eq!(
        ring.decrypt_value(&unhex(&out[1]), &Binding::key(u32::MAX, b""))
            .map(|o| o.key_id),
        Err(DecryptError::Binding)
    );
}

//! Python `cryptography.fernet` interoperability, through a real redcloak and Redis: what
//! redcloak stores, Python decrypts; what Python stores, redcloak reads.

use std::io::Write;
use std::process::{Command, Stdio};

use redcloak_e2e::{missing, Stack};
use redis::cmd;

/// Runs a Python snippet with the key in the environment and `input` on stdin.
fn python(script: &str, key: &str, input: &[u8]) -> Vec<u8> {
    let check = Command::new("python3")
        .args(["-c", "import cryptography.fernet"])
        .output();
    if !check.is_ok_and(|o| o.status.success()) {
        missing(
            "python3 with the cryptography package is not available",
            "Python's cryptography.fernet for the interoperability test",
            "run `make test` (it installs it) or `pip install cryptography`",
        );
    }
    let mut child = Command::new("python3")
        .args(["-c", script])
        .env("FERNET_KEY", key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn python_reads_what_redcloak_stored_and_redcloak_reads_what_python_stored() {
    let stack = Stack::start();
    let mut c = stack.client();
    let value = "héllo wörld — stored by redcloak".as_bytes();
    let _: () = cmd("SET")
        .arg("from-redcloak")
        .arg(value)
        .query(&mut c)
        .unwrap();
    let token = stack.direct().get(b"from-redcloak").unwrap();
    let decrypted = python(
        "import os,sys; from cryptography.fernet import Fernet; \
         sys.stdout.buffer.write(Fernet(os.environ['FERNET_KEY']).decrypt(sys.stdin.buffer.read()))",
        &stack.keys,
        &token,
    );
    assert_eq!(decrypted, value);

    let from_python = python(
        "import os,sys; from cryptography.fernet import Fernet; \
         sys.stdout.buffer.write(Fernet(os.environ['FERNET_KEY']).encrypt(sys.stdin.buffer.read()))",
        &stack.keys,
        b"written by a Python service",
    );
    stack.direct().set(b"from-python", &from_python);
    let got: String = cmd("GET").arg("from-python").query(&mut c).unwrap();
    assert_eq!(got, "written by a Python service");
}

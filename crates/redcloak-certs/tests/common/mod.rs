//! Helpers shared by the integration tests: running external tools that must
//! be installed (a missing tool FAILS the test with what to install).

#![allow(dead_code)] // each test crate uses a different subset

use std::io::ErrorKind;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `program args`; panics with a what/required/fix message if the
/// program is not installed.
pub fn run(program: &str, args: &[&str], package: &str) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            if e.kind() == ErrorKind::NotFound {
                missing(program, package)
            }
            panic!("could not run {program}: {e}")
        })
}

/// The what/required/fix failure for a missing tool.
pub fn missing(program: &str, package: &str) -> ! {
    panic!(
        "error: `{program}` was not found on PATH\n  required: {program}, to check the \
         generated certificates with a real TLS stack\n  fix: apt-get install {package}"
    )
}

/// `openssl args`, expecting success; returns stdout.
pub fn openssl_ok(args: &[&str]) -> String {
    let out = run("openssl", args, "openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("openssl prints UTF-8")
}

/// `openssl args`, expecting failure; returns stdout + stderr.
pub fn openssl_fails(args: &[&str]) -> String {
    let out = run("openssl", args, "openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "openssl {args:?} should fail:\n{text}"
    );
    text
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Writes `contents` to `dir/name` and returns the path as a string.
pub fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path_str(&path).to_owned()
}

//! Real applications, unmodified, from PyPI / npm, through redcloak — each ending with an
//! audit that reads Redis around the proxy and finds only ciphertext.

use std::path::Path;
use std::process::Command;

use redcloak_e2e::{missing, Stack};

fn apps_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/apps"))
}

/// Runs `python3 apps/<script> HOST PORT`; it prints `ok` last when everything held.
fn python(script: &str, module: &str, stack: &Stack) {
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
    let out = Command::new("python3")
        .arg(apps_dir().join(script))
        .args(["127.0.0.1", &stack.proxy.addr.port().to_string()])
        .current_dir(apps_dir())
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "{script} failed:\n{stdout}\n{stderr}\nredcloak's log:\n{}",
        stack.proxy.log_text()
    );
}

#[test]
fn django_cache_counters_and_values() {
    let stack = Stack::start();
    python("django_cache.py", "django", &stack);
    assert!(stack.assert_all_values_encrypted() >= 5);
}

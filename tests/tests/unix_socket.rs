//! The Unix-socket listener: created 0600, served like TCP, removed on shutdown.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use redcloak_e2e::{random_secret, redcloak_command, stack_env, wait_for, Pki, RedisServer};

#[test]
fn unix_socket_listener_is_private_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("certs"));
    let password = random_secret(40);
    let redis = RedisServer::start(dir.path(), &pki, &password, &[]);
    let keys = redcloak_crypto::generate_key().to_string();
    let sock = dir.path().join("redcloak.sock");
    let mut env = stack_env(&pki, redis.port, &password, &keys);
    env.push(("REDCLOAK_LISTEN".into(), format!("unix:{}", sock.display())));
    let log = std::fs::File::create(dir.path().join("redcloak.log")).unwrap();
    let mut child = redcloak_command(&env)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let up = wait_for(Duration::from_secs(15), || sock.exists());
    let cleanup = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
    };
    if !up {
        cleanup(&mut child);
        panic!(
            "no socket: {}",
            std::fs::read_to_string(dir.path().join("redcloak.log")).unwrap_or_default()
        );
    }
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .arg("-s")
            .arg(&sock)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let set = cli(&["SET", "via-socket", "hello"]);
    let get = cli(&["GET", "via-socket"]);
    // SIGTERM: graceful stop removes the socket file.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let exited = wait_for(Duration::from_secs(15), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    let status = child.try_wait().ok().flatten();
    cleanup(&mut child);
    assert_eq!(mode, 0o600, "socket mode");
    assert_eq!((set.as_str(), get.as_str()), ("OK", "hello"));
    assert!(
        exited && status.is_some_and(|s| s.success()),
        "SIGTERM exits 0: {status:?}"
    );
    assert!(!sock.exists(), "the socket file is removed on shutdown");
}

//! redcloak in front of a TLS Redis (the e2e [`Stack`]) with [`REDIS_ARGS`], also for the
//! `difffuzz` binary (the plain Redis it is compared with is [`crate::diff::PlainRedis`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{free_port, wait_for, Pki, Redcloak, RedisServer, Stack};

use super::normalise::REDIS_ARGS;

/// The redcloak binary next to the running executable, when that is a binary in
/// `target/<profile>/` (the `difffuzz` long run); tests (in `deps/`) use the e2e harness's.
fn sibling_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let sibling = dir.join("redcloak");
    (!dir.ends_with("deps") && sibling.is_file()).then_some(sibling)
}

/// A [`Stack`] whose Redis runs with [`REDIS_ARGS`]; redcloak writes values in the format
/// `REDCLOAK_DIFF_VALUE_FORMAT` names (`fernet` when unset; `aes-gcm` runs the whole
/// comparison with key-bound values, where a value opened at the wrong place would show as a
/// "cannot be decrypted" divergence).
pub fn start_stack() -> Stack {
    let format = std::env::var("REDCLOAK_DIFF_VALUE_FORMAT").unwrap_or_else(|_| "fernet".into());
    let Some(bin) = sibling_bin() else {
        return Stack::start_with(REDIS_ARGS, &[("REDCLOAK_VALUE_FORMAT", &format)]);
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::generate(&dir.path().join("certs"));
    let password = crate::random_secret(40);
    let keys = redcloak_crypto::generate_key().to_string();
    let redis = RedisServer::start(dir.path(), &pki, &password, REDIS_ARGS);
    let mut env = crate::stack_env(&pki, redis.port, &password, &keys);
    env.push(("REDCLOAK_VALUE_FORMAT".into(), format));
    let proxy = spawn_proxy(&bin, dir.path(), &env);
    Stack {
        proxy,
        redis,
        pki,
        password,
        keys,
        env,
        dir,
    }
}

/// Like `Redcloak::start`, with an explicit binary.
fn spawn_proxy(bin: &Path, dir: &Path, env: &[(String, String)]) -> Redcloak {
    for attempt in 0..5 {
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = dir.join(format!("redcloak-{port}.log"));
        let mut cmd = Command::new(bin);
        cmd.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        cmd.env("REDCLOAK_LOG", "info")
            .env("REDCLOAK_ADMIN_LISTEN", "off")
            .env("REDCLOAK_LISTEN", addr.to_string());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn redcloak");
        let up = wait_for(Duration::from_secs(15), || {
            matches!(child.try_wait(), Ok(Some(_))) || std::net::TcpStream::connect(addr).is_ok()
        });
        if up && matches!(child.try_wait(), Ok(None)) {
            return Redcloak { child, addr, log };
        }
        let _ = child.kill();
        let _ = child.wait();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if attempt < 4 && text.contains("in use") {
            continue;
        }
        panic!("redcloak did not start:\n{text}");
    }
    unreachable!()
}

//! Helpers for the tests of `scripts/` and `deploy/`.
//!
//! # Layout
//! - [`TempRepo`]: a throwaway copy of the repository's scripts, deploy files and Makefile, where
//!   the setup and migration scripts may write `certs/`, `.env` and `.run/` (never in the real
//!   checkout); on drop, the redcloak and redis-server they started are killed by the PIDs in
//!   `.run/` (only if those PIDs still run that program).
//! - [`run_script`] / [`spawn_script`]: a script (or `make`) with a clean environment pointed at
//!   the already built redcloak binary, a free Redis port and a local redis-server, bounded in
//!   time; its process group is killed on timeout.
//! - [`DotEnv`]: a `.env` file read back.
//! - [`PlainRedis`]: a plaintext redis-server to migrate from, killed on drop.
//! - [`tls_ping`]: PING over TLS with or without a client certificate and password, to check
//!   what a Redis refuses.
//! - [`load_yaml`]: YAML (via Python's PyYAML) flattened to `path = value` entries.
#![allow(clippy::missing_panics_doc)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::{free_port, missing, redcloak_bin, wait_for, Pki};

/// The repository this test crate belongs to.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repository root")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "__pycache__" {
            continue;
        }
        if path.is_dir() {
            copy_tree(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).expect("copy file");
        }
    }
}

// === TempRepo ===

/// A copy of `scripts/`, `deploy/`, `Makefile`, `certs/README.md` and `.gitignore` in a
/// temporary directory: the scripts run there exactly as in a checkout.
pub struct TempRepo {
    /// The copy's root (scripts `cd` here).
    pub root: PathBuf,
    /// The free port the setup script gives Redis (`REDCLOAK_DEV_REDIS_PORT`).
    pub redis_port: u16,
    dir: tempfile::TempDir,
}

impl TempRepo {
    /// A fresh copy with a free port for its Redis.
    pub fn new() -> TempRepo {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("repo");
        let src = repo_root();
        copy_tree(&src.join("scripts"), &root.join("scripts"));
        copy_tree(&src.join("deploy"), &root.join("deploy"));
        std::fs::create_dir_all(root.join("certs")).expect("certs dir");
        std::fs::copy(src.join("certs/README.md"), root.join("certs/README.md")).expect("copy");
        for file in ["Makefile", ".gitignore"] {
            std::fs::copy(src.join(file), root.join(file)).expect("copy");
        }
        TempRepo {
            root,
            redis_port: free_port(),
            dir,
        }
    }

    /// A path inside the copy.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The temporary directory around the copy (for logs of processes the test starts).
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// `.env`, read back.
    pub fn env(&self) -> DotEnv {
        DotEnv::read(&self.path(".env"))
    }

    /// Runs `scripts/<script>` with `args`, `stdin` and extra `env` (see [`run_script`]).
    pub fn run(&self, script: &str, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Ran {
        let mut cmd = self.command(&format!("scripts/{script}"), env);
        cmd.args(args);
        run_bounded(cmd, stdin, Duration::from_secs(120))
    }

    /// A command run in the copy with the scripts' test environment: a clean environment
    /// (PATH, HOME, LANG) plus `REDCLOAK_BIN` (the binary the tests use),
    /// `REDCLOAK_DEV_REDIS_PORT` (this copy's free port), `REDCLOAK_REDIS_MODE=local`, then
    /// `env`.
    pub fn command(&self, program: &str, env: &[(&str, &str)]) -> Command {
        let program = if program.contains('/') {
            self.root.join(program)
        } else {
            PathBuf::from(program)
        };
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.root).env_clear();
        for name in ["PATH", "HOME", "LANG"] {
            if let Some(v) = std::env::var_os(name) {
                cmd.env(name, v);
            }
        }
        cmd.env("REDCLOAK_BIN", redcloak_bin())
            .env("REDCLOAK_DEV_REDIS_PORT", self.redis_port.to_string())
            .env("REDCLOAK_REDIS_MODE", "local")
            .env("REDCLOAK_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// The PID in `.run/<file>` when that process is alive and runs `program`.
    pub fn live_pid(&self, file: &str, program: &str) -> Option<u32> {
        live_pid(&self.path(&format!(".run/{file}")), program)
    }
}

impl Default for TempRepo {
    fn default() -> Self {
        TempRepo::new()
    }
}

impl Drop for TempRepo {
    fn drop(&mut self) {
        for (file, program) in [("redcloak.pid", "redcloak"), ("redis.pid", "redis-server")] {
            if let Some(pid) = self.live_pid(file, program) {
                kill(pid, "KILL");
                wait_for(Duration::from_secs(5), || !alive(pid));
            }
        }
    }
}

/// The PID in `pidfile` when that process is alive and its command line contains `program`.
pub fn live_pid(pidfile: &Path, program: &str) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmdline = String::from_utf8_lossy(&cmdline);
    (alive(pid) && cmdline.contains(program)).then_some(pid)
}

/// Whether a process runs (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Sends `signal` (e.g. "TERM", "KILL") to the process `pid`.
pub fn kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Sends `signal` to every process of the process group `pgid`.
pub fn kill_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), "--".into(), format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

// === running scripts ===

/// What a bounded script run produced.
#[derive(Debug)]
pub struct Ran {
    /// Exit code (None when killed).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Ran {
    /// stdout then stderr.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Fails unless the exit code is 0.
    #[track_caller]
    pub fn assert_ok(&self) -> &Ran {
        assert_eq!(self.code, Some(0), "exit {:?}:\n{}", self.code, self.text());
        self
    }
}

/// Runs `cmd` in its own process group with `stdin`, until it exits or `timeout` passes (then
/// the whole group is killed and `code` is None).
pub fn run_bounded(mut cmd: Command, stdin: &str, timeout: Duration) -> Ran {
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn script");
    let pgid = child.id();
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let code = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status.code();
        }
        if Instant::now() > deadline {
            kill_group(pgid, "KILL");
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    Ran {
        code,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// A long-running command (`make run`) in its own process group, output to `log`; the group is
/// killed on drop.
pub struct Spawned {
    child: Child,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

/// Starts `cmd` in its own process group, stdin closed, output appended to `log`.
pub fn spawn_script(mut cmd: Command, log: &Path) -> Spawned {
    let file = std::fs::File::create(log).expect("log file");
    let child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log"))
        .stderr(file)
        .spawn()
        .expect("spawn");
    Spawned {
        child,
        log: log.to_owned(),
    }
}

impl Spawned {
    /// The output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it exited (within `timeout`), and with which code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<Option<i32>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        kill_group(self.child.id(), "KILL");
        let _ = self.child.wait();
    }
}

// === DotEnv ===

/// A `.env` file: `NAME=value` lines (quotes removed), in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotEnv {
    /// The assignments, in file order.
    pub vars: Vec<(String, String)>,
    /// The file's bytes.
    pub raw: String,
}

impl DotEnv {
    /// Reads `path` (an empty file when it does not exist).
    pub fn read(path: &Path) -> DotEnv {
        let raw = std::fs::read_to_string(path).unwrap_or_default();
        let vars = raw
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.strip_prefix("export ").or(Some(l)))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| {
                let v = v.trim_end_matches('\r');
                let v = v
                    .strip_prefix('\'')
                    .and_then(|v| v.strip_suffix('\''))
                    .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                    .unwrap_or(v);
                (k.trim().to_owned(), v.to_owned())
            })
            .collect();
        DotEnv { vars, raw }
    }

    /// The last value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, which must be set.
    #[track_caller]
    pub fn req(&self, name: &str) -> &str {
        self.get(name)
            .unwrap_or_else(|| panic!("{name} is not set in .env:\n{}", self.raw))
    }

    /// The certificates and keys `.env` names, as a [`Pki`] (for [`crate::Direct`]).
    pub fn pki(&self) -> Pki {
        let dir = Path::new(self.req("REDIS_TLS_CA_CERT"))
            .parent()
            .expect("certs dir")
            .to_owned();
        Pki {
            ca_cert: PathBuf::from(self.req("REDIS_TLS_CA_CERT")),
            server_cert: dir.join("redis.crt"),
            server_key: dir.join("redis.key"),
            client_cert: PathBuf::from(self.req("REDIS_TLS_CERT")),
            client_key: PathBuf::from(self.req("REDIS_TLS_KEY")),
        }
    }
}

// === PlainRedis ===

pub use crate::plain::PlainRedis;

// === TLS probing ===

/// Connects to 127.0.0.1:`port` over TLS (trusting `ca`), optionally presenting a client
/// certificate and sending AUTH, then sends PING. Returns the reply line, or the error that
/// ended the attempt (handshake refused, connection closed…), as text.
pub fn tls_ping(
    ca: &Path,
    client: Option<(&Path, &Path)>,
    password: Option<&str>,
    port: u16,
) -> String {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("ca pem") {
        roots.add(cert.expect("ca cert")).expect("add ca");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => {
            let chain: Vec<_> = CertificateDer::pem_file_iter(cert)
                .expect("cert pem")
                .map(|c| c.expect("cert"))
                .collect();
            let key = PrivateKeyDer::from_pem_file(key).expect("key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client auth")
        }
        None => builder.with_no_client_auth(),
    };
    let attempt = || -> std::io::Result<String> {
        let name = ServerName::try_from("127.0.0.1").expect("name");
        let conn =
            rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
        let tcp = TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut line = String::new();
        if let Some(p) = password {
            write!(tls, "AUTH {p}\r\n")?;
            line = read_line(&mut tls)?;
            if !line.starts_with("+OK") {
                return Ok(line);
            }
        }
        tls.write_all(b"PING\r\n")?;
        line.clear();
        read_line(&mut tls)
    };
    attempt().unwrap_or_else(|e| format!("error: {e}"))
}

/// Sends `PING` as plain text to a TCP port and returns what came back (or the error).
pub fn plain_ping(port: u16) -> String {
    let attempt = || -> std::io::Result<String> {
        let mut tcp = TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(3)))?;
        tcp.write_all(b"PING\r\n")?;
        read_line(&mut tcp)
    };
    attempt().unwrap_or_else(|e| format!("error: {e}"))
}

fn read_line<S: Read>(s: &mut S) -> std::io::Result<String> {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match s.read(&mut byte)? {
            0 => break,
            _ => {
                out.push(byte[0]);
                if byte[0] == b'\n' {
                    break;
                }
            }
        }
    }
    if out.is_empty() {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(String::from_utf8_lossy(&out).trim_end().to_owned())
}

// === YAML ===

/// One YAML document flattened to `path → value`: mapping keys joined with `.` (keys that are
/// not plain words are JSON-quoted: `metadata.labels."app.kubernetes.io/name"`), sequence
/// items as `[i]`; scalars as text (`true`, `null`, numbers in decimal); empty mappings and
/// sequences as `{}` and `[]`.
#[derive(Debug, Clone, Default)]
pub struct YamlDoc {
    /// Every leaf.
    pub entries: BTreeMap<String, String>,
}

impl YamlDoc {
    /// The scalar at `path`.
    pub fn get(&self, path: &str) -> Option<&str> {
        self.entries.get(path).map(String::as_str)
    }

    /// The scalar at `path`, which must exist.
    #[track_caller]
    pub fn req(&self, path: &str) -> &str {
        self.get(path).unwrap_or_else(|| {
            panic!(
                "{path} is missing; present: {:?}",
                self.entries.keys().collect::<Vec<_>>()
            )
        })
    }

    /// Whether anything exists at or under `path`.
    pub fn has(&self, path: &str) -> bool {
        self.entries.keys().any(|k| {
            k == path
                || k.strip_prefix(path)
                    .is_some_and(|r| r.starts_with('.') || r.starts_with('['))
        })
    }

    /// The part under `path` (a mapping or a sequence item), with `path` removed from the keys.
    pub fn sub(&self, path: &str) -> YamlDoc {
        let entries = self
            .entries
            .iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix(path)?;
                let rest = rest
                    .strip_prefix('.')
                    .or_else(|| rest.starts_with('[').then_some(rest))?;
                Some((rest.to_owned(), v.clone()))
            })
            .collect();
        YamlDoc { entries }
    }

    /// The number of items of the sequence at `path`.
    pub fn len(&self, path: &str) -> usize {
        (0..)
            .take_while(|i| self.has(&format!("{path}[{i}]")))
            .count()
    }

    /// Whether the document is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The scalars of the sequence at `path`.
    pub fn list(&self, path: &str) -> Vec<&str> {
        (0..self.len(path))
            .filter_map(|i| self.get(&format!("{path}[{i}]")))
            .collect()
    }

    /// The sequence items at `path`, each as a document.
    pub fn items(&self, path: &str) -> Vec<YamlDoc> {
        (0..self.len(path))
            .map(|i| self.sub(&format!("{path}[{i}]")))
            .collect()
    }

    /// The keys directly under the mapping at `path` ("" for the top level).
    pub fn keys(&self, path: &str) -> Vec<String> {
        let scope = if path.is_empty() {
            self.clone()
        } else {
            self.sub(path)
        };
        let mut keys: Vec<String> = Vec::new();
        for k in scope.entries.keys() {
            if k.starts_with('[') {
                continue;
            }
            let key = if let Some(quoted) = k.strip_prefix('"') {
                format!(
                    "\"{}\"",
                    &quoted[..quoted.find('"').unwrap_or(quoted.len())]
                )
            } else {
                k.split(['.', '[']).next().unwrap_or("").to_owned()
            };
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys
    }
}

const FLATTEN_YAML: &str = r#"
import json, re, sys, yaml
def walk(node, path, out):
    if isinstance(node, dict):
        if not node:
            out.append((path, "{}"))
        for k, v in node.items():
            k = str(k)
            seg = k if re.fullmatch(r"[A-Za-z0-9_<>-]+", k) else json.dumps(k)
            walk(v, f"{path}.{seg}" if path else seg, out)
    elif isinstance(node, list):
        if not node:
            out.append((path, "[]"))
        for i, v in enumerate(node):
            walk(v, f"{path}[{i}]", out)
    else:
        if node is None: text = "null"
        elif node is True: text = "true"
        elif node is False: text = "false"
        else: text = str(node)
        out.append((path, text))
for i, doc in enumerate(yaml.safe_load_all(open(sys.argv[1], encoding="utf-8"))):
    out = []
    walk(doc, "", out)
    print(f"--- {i}")
    for path, text in out:
        print(json.dumps([path, text], ensure_ascii=False))
"#;

/// Parses every document of a YAML file with PyYAML (`safe_load_all`) and flattens each.
pub fn load_yaml(path: &Path) -> Vec<YamlDoc> {
    let out = Command::new("python3")
        .args(["-c", FLATTEN_YAML])
        .arg(path)
        .output()
        .unwrap_or_else(|_| {
            missing(
                "python3 is not installed",
                "python3 with PyYAML to parse the deploy files",
                "run `make test` (scripts/ensure-deps.sh installs it)",
            )
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No module named 'yaml'") {
        missing(
            "Python's yaml module (PyYAML) is not installed",
            "PyYAML to parse the deploy files",
            "run `make test` (scripts/ensure-deps.sh installs it) or `python3 -m pip install pyyaml`",
        );
    }
    assert!(
        out.status.success(),
        "{} is not valid YAML:\n{stderr}",
        path.display()
    );
    let mut docs = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if line.starts_with("--- ") {
            docs.push(YamlDoc::default());
        } else if let Some((path, text)) = parse_pair(line) {
            docs.last_mut()
                .expect("a document")
                .entries
                .insert(path, text);
        }
    }
    docs
}

/// Parses `["path", "text"]` as printed by `json.dumps` of two strings.
fn parse_pair(line: &str) -> Option<(String, String)> {
    let mut strings = Vec::new();
    let mut chars = line.trim().strip_prefix('[')?.chars().peekable();
    while strings.len() < 2 {
        while chars.peek().is_some_and(|c| *c != '"') {
            chars.next();
        }
        chars.next()?;
        let mut s = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => match chars.next()? {
                    'n' => s.push('\n'),
                    't' => s.push('\t'),
                    'r' => s.push('\r'),
                    'u' => {
                        let hex: String = chars.by_ref().take(4).collect();
                        s.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    c => s.push(c),
                },
                c => s.push(c),
            }
        }
        strings.push(s);
    }
    let text = strings.pop()?;
    let path = strings.pop()?;
    Some((path, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_parse_json_escapes() {
        assert_eq!(
            parse_pair(r#"["a.\"b.c\"[0]", "x\ny \"q\" \u00e9"]"#),
            Some(("a.\"b.c\"[0]".into(), "x\ny \"q\" é".into()))
        );
    }
}

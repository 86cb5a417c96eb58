//! End-to-end test harness: real parts only.
//!
//! # Layout
//! - [`Pki`]: a throwaway CA, Redis server certificate and redcloak client certificate (rcgen).
//! - [`RedisServer`]: a real `redis-server` with TLS only, `--tls-auth-clients yes` and
//!   `requirepass`, on a free loopback port; killed (by PID) on drop.
//! - [`Redcloak`]: the real `redcloak` binary (built by `make test`) on a free loopback port,
//!   its log captured to a file; killed on drop.
//! - [`Direct`]: a minimal mutual-TLS RESP client that reads Redis *around* the proxy, to
//!   assert on what Redis really stores.
//! - [`diff`]: a plain Redis to compare with, scripted conversations compared reply by reply,
//!   a MONITOR reader (what Redis receives), the admin endpoint's metrics.
//! - [`gen`]: plausible commands generated from Redis's `COMMAND DOCS` (option words in any
//!   case, with NUL suffixes, markers in value arguments).
//! - [`Stack`]: all of the above, wired together, one per test (tests run in parallel, each
//!   with its own ports and temporary directory).

pub mod audit;
pub mod diff;
pub mod differential;
pub mod gen;
pub mod plain;
pub mod scripts;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use redcloak_commands::resp::{self, Frame, Limits, ReplyScanner};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// Fails the test with the what / required / fix form.
#[track_caller]
pub fn missing(what: &str, required: &str, fix: &str) -> ! {
    panic!("error: {what}\n  required: {required}\n  fix: {fix}")
}

/// A free loopback TCP port (bound then released; callers retry on the rare collision).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Waits until `check` returns true, up to `timeout`.
pub fn wait_for(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    check()
}

/// A random alphanumeric secret of `len` characters (test passwords).
pub fn random_secret(len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for c in redcloak_crypto::generate_key().chars() {
            if c.is_ascii_alphanumeric() && out.len() < len {
                out.push(c);
            }
        }
    }
    out
}

// === Pki ===

/// Throwaway certificates in a directory.
pub struct Pki {
    /// CA certificate (trusted by both sides).
    pub ca_cert: PathBuf,
    /// Redis server certificate and key.
    pub server_cert: PathBuf,
    /// Redis server key.
    pub server_key: PathBuf,
    /// redcloak's client certificate.
    pub client_cert: PathBuf,
    /// redcloak's client key.
    pub client_key: PathBuf,
}

impl Pki {
    /// Generates a development PKI (server SANs localhost, 127.0.0.1, ::1) into `dir`, valid
    /// for 30 days (so that no expiry warning fires; see [`Pki::issue`] for other periods).
    pub fn generate(dir: &Path) -> Pki {
        let p = redcloak_certs::write_dev_pki(dir, &[], 30, false).expect("generate test PKI");
        Pki {
            ca_cert: p.ca_cert,
            server_cert: p.server_cert,
            server_key: p.server_key,
            client_cert: p.client_cert,
            client_key: p.client_key,
        }
    }

    /// Issues a fresh CA, server and client certificate into `dir` (created if missing) as
    /// `spec` says; keys are written with mode 0600.
    pub fn issue(dir: &Path, spec: &PkiSpec<'_>) -> Pki {
        use redcloak_certs::{Ca, Validity};
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(dir).expect("PKI dir");
        let ca = Ca::new("redcloak test CA", Validity::days(60)).expect("CA");
        let server = ca
            .issue_server("redis", spec.server_sans, spec.server_validity)
            .expect("server certificate");
        let client = ca
            .issue_client("redcloak", spec.client_validity)
            .expect("client certificate");
        let write = |name: &str, text: &str, mode: u32| {
            let path = dir.join(name);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&path)
                .expect("create PKI file");
            f.write_all(text.as_bytes()).expect("write PKI file");
            path
        };
        Pki {
            ca_cert: write("ca.crt", ca.cert_pem(), 0o644),
            server_cert: write("redis.crt", &server.cert_pem, 0o644),
            server_key: write("redis.key", server.key_pem(), 0o600),
            client_cert: write("client.crt", &client.cert_pem, 0o644),
            client_key: write("client.key", client.key_pem(), 0o600),
        }
    }
}

/// What [`Pki::issue`] makes: the server's SANs and each leaf's validity.
#[derive(Debug, Clone, Copy)]
pub struct PkiSpec<'a> {
    /// Subject alternative names of Redis's certificate.
    pub server_sans: &'a [&'a str],
    /// Validity of Redis's certificate.
    pub server_validity: redcloak_certs::Validity,
    /// Validity of redcloak's client certificate.
    pub client_validity: redcloak_certs::Validity,
}

impl Default for PkiSpec<'_> {
    fn default() -> Self {
        PkiSpec {
            server_sans: &["localhost", "127.0.0.1", "::1"],
            server_validity: redcloak_certs::Validity::days(30),
            client_validity: redcloak_certs::Validity::days(30),
        }
    }
}

// === RedisServer ===

/// A real TLS-only redis-server, killed on drop.
pub struct RedisServer {
    child: Child,
    /// Its TLS port on 127.0.0.1.
    pub port: u16,
    /// Its log file.
    pub log: PathBuf,
    /// The arguments it was started with (to restart it the same way).
    args: Vec<std::ffi::OsString>,
}

impl RedisServer {
    /// Starts redis-server with TLS only, client certificates required and `password`.
    /// `extra` are further `--name value` arguments.
    pub fn start(dir: &Path, pki: &Pki, password: &str, extra: &[&str]) -> RedisServer {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            missing(
                "redis-server is not installed",
                "a real redis-server (6.0+ with TLS) for the end-to-end tests",
                "run `make test` (it installs it) or `sudo apt-get install -y redis-server redis-tools`",
            );
        }
        for attempt in 0..5 {
            let port = free_port();
            let log = dir.join(format!("redis-{port}.log"));
            let data = dir.join(format!("redis-{port}"));
            std::fs::create_dir_all(&data).expect("redis data dir");
            let conf = dir.join(format!("redis-{port}.conf"));
            // The password goes in a config file, not argv.
            std::fs::write(&conf, format!("requirepass {password}\n")).expect("write redis.conf");
            let mut cmd = Command::new("redis-server");
            cmd.arg(&conf)
                .args([
                    "--port",
                    "0",
                    "--bind",
                    "127.0.0.1",
                    "--tls-port",
                    &port.to_string(),
                ])
                .arg("--tls-cert-file")
                .arg(&pki.server_cert)
                .arg("--tls-key-file")
                .arg(&pki.server_key)
                .arg("--tls-ca-cert-file")
                .arg(&pki.ca_cert)
                .args([
                    "--tls-auth-clients",
                    "yes",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                ])
                .arg("--dir")
                .arg(&data)
                .arg("--logfile")
                .arg(&log)
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let args: Vec<std::ffi::OsString> = cmd.get_args().map(ToOwned::to_owned).collect();
            let child = cmd.spawn().expect("spawn redis-server");
            let mut server = RedisServer {
                child,
                port,
                log,
                args,
            };
            let ready = wait_for(Duration::from_secs(10), || {
                server.exited()
                    || std::fs::read_to_string(&server.log)
                        .is_ok_and(|l| l.contains("Ready to accept"))
            });
            if ready && !server.exited() {
                return server;
            }
            let log = std::fs::read_to_string(&server.log).unwrap_or_default();
            if attempt < 4 && log.contains("Address already in use") {
                continue; // lost the free-port race; try another port
            }
            panic!("redis-server did not start on port {port}:\n{log}");
        }
        unreachable!()
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills Redis with SIGKILL (no shutdown, no final save) and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts Redis again, same port, data directory and settings (after [`Self::kill9`]).
    pub fn restart(&mut self) {
        let readies = |log: &Path| {
            std::fs::read_to_string(log).map_or(0, |l| l.matches("Ready to accept").count())
        };
        let before = readies(&self.log);
        for _ in 0..50 {
            self.child = Command::new("redis-server")
                .args(&self.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("respawn redis-server");
            let log = self.log.clone();
            let ready = wait_for(Duration::from_secs(10), || {
                self.exited() || readies(&log) > before
            });
            if ready && !self.exited() {
                return;
            }
            // The old socket may linger for a moment after SIGKILL.
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "redis-server did not restart:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// === Redcloak ===

/// Path of the redcloak binary built by `cargo build` next to this test executable.
pub fn redcloak_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> → target/<profile>/redcloak
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("redcloak"))
        .expect("target dir");
    if !bin.is_file() {
        missing(
            &format!("{} does not exist", bin.display()),
            "the redcloak binary, built before the end-to-end tests run",
            "run `make test` (it builds it) or `cargo build -p redcloak` first",
        );
    }
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates");
    if let Some(newer) = newest_source(&crates).filter(|(t, _)| *t > built) {
        missing(
            &format!("{} is older than {}", bin.display(), newer.1.display()),
            "a redcloak binary built from the current sources",
            "run `make test` (it builds it) or `cargo build -p redcloak` first",
        );
    }
    bin
}

fn newest_source(dir: &Path) -> Option<(SystemTime, PathBuf)> {
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                // Only what goes into the binary: not build output, fuzzers or test files.
                if !path.ends_with("target") && !path.ends_with("fuzz") && !path.ends_with("tests")
                {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs" || e == "toml") {
                let t = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                if newest.as_ref().is_none_or(|(n, _)| t > *n) {
                    newest = Some((t, path));
                }
            }
        }
    }
    newest
}

/// A running redcloak process, killed on drop.
pub struct Redcloak {
    child: Child,
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Its stderr (logs).
    pub log: PathBuf,
}

impl Redcloak {
    /// Runs `redcloak` with exactly `env` (plus PATH) on a free loopback port and waits until
    /// it accepts connections.
    pub fn start(dir: &Path, env: &[(String, String)]) -> Redcloak {
        for attempt in 0..5 {
            let port = free_port();
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let log = dir.join(format!("redcloak-{port}.log"));
            let mut child = redcloak_command(env)
                .env("REDCLOAK_LISTEN", addr.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("log file"))
                .spawn()
                .expect("spawn redcloak");
            let up = wait_for(Duration::from_secs(15), || {
                matches!(child.try_wait(), Ok(Some(_))) || TcpStream::connect(addr).is_ok()
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

    /// The captured log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// The peak resident memory so far in KiB (`VmHWM`: catches spikes between samples).
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The exit code, once the process has exited.
    pub fn exit_code(&mut self) -> Option<i32> {
        self.child.try_wait().ok().flatten().and_then(|s| s.code())
    }
}

impl Drop for Redcloak {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `redcloak` command with a clean environment: only PATH and `env`.
pub fn redcloak_command(env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(redcloak_bin());
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.env(
        "REDCLOAK_LOG",
        std::env::var("REDCLOAK_TEST_LOG").unwrap_or_else(|_| "info".into()),
    );
    // Tests run in parallel: no admin endpoint unless a test asks for one on its own port.
    cmd.env("REDCLOAK_ADMIN_LISTEN", "off");
    // The whole suite runs once more with shared upstream connections (`make test`).
    if let Ok(n) = std::env::var("REDCLOAK_TEST_SHARED_CONNECTIONS") {
        cmd.env("REDCLOAK_SHARED_CONNECTIONS", n);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `redcloak` with exactly `env` and `args` until it exits (killed after 20 s, which
/// fails the caller's exit-code assertion); REDCLOAK_LISTEN defaults to a free loopback port.
pub fn run_redcloak(env: &[(String, String)], args: &[&str]) -> std::process::Output {
    let mut cmd = redcloak_command(env);
    if !env.iter().any(|(k, _)| k == "REDCLOAK_LISTEN") {
        cmd.env("REDCLOAK_LISTEN", format!("127.0.0.1:{}", free_port()));
    }
    let mut child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redcloak");
    // Read both pipes on threads so a chatty process cannot block on a full pipe.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().expect("wait for redcloak");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    std::process::Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// stdout followed by stderr, as text.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `env` with `name` set to `value` (replacing an earlier value).
pub fn with_var(env: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    let mut env: Vec<_> = env.iter().filter(|(k, _)| k != name).cloned().collect();
    env.push((name.to_owned(), value.to_owned()));
    env
}

/// `env` without `name`.
pub fn without_var(env: &[(String, String)], name: &str) -> Vec<(String, String)> {
    env.iter().filter(|(k, _)| k != name).cloned().collect()
}

/// Fails if any secret (or a 12-character piece of one) appears in `text`.
#[track_caller]
pub fn assert_no_secret(text: &str, secrets: &[&str]) {
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let chars: Vec<char> = secret.chars().collect();
        // Pieces of 12 characters (a secret cut or wrapped in output is still a leak); a
        // shorter secret is looked for whole.
        let window = chars.len().min(12);
        for piece in chars.windows(window) {
            let piece: String = piece.iter().collect();
            assert!(
                !text.contains(&piece),
                "a secret (or part of one: {piece:?}) appears in the output:\n{text}"
            );
        }
    }
}

// === Direct ===

/// A mutual-TLS RESP client straight to Redis, around the proxy.
pub struct Direct {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    buf: BytesMut,
}

impl Direct {
    /// Connects to 127.0.0.1:`port` with the PKI's client certificate and authenticates.
    pub fn connect(pki: &Pki, port: u16, password: &str) -> std::io::Result<Direct> {
        let roots = {
            let mut store = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(&pki.ca_cert).expect("ca pem") {
                store.add(cert.expect("ca cert")).expect("add ca");
            }
            store
        };
        let chain: Vec<_> = CertificateDer::pem_file_iter(&pki.client_cert)
            .expect("client pem")
            .map(|c| c.expect("cert"))
            .collect();
        let key = PrivateKeyDer::from_pem_file(&pki.client_key).expect("client key");
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("client auth");
        let name = ServerName::try_from("127.0.0.1").expect("ip name");
        let conn =
            rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
        let tcp = TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut direct = Direct {
            stream: rustls::StreamOwned::new(conn, tcp),
            buf: BytesMut::new(),
        };
        match direct.cmd(&[b"AUTH", password.as_bytes()])? {
            Frame::Simple(ok) if &ok[..] == b"OK" => Ok(direct),
            other => Err(std::io::Error::other(format!("AUTH failed: {other:?}"))),
        }
    }

    /// Sends one command and returns its reply.
    pub fn cmd(&mut self, args: &[&[u8]]) -> std::io::Result<Frame> {
        round_trip(&mut self.stream, &mut self.buf, args)
    }

    /// Sends one command without waiting for its reply.
    pub fn send(&mut self, args: &[&[u8]]) -> std::io::Result<()> {
        let mut out = BytesMut::new();
        resp::write_array_len(&mut out, args.len());
        for a in args {
            resp::write_bulk(&mut out, a);
        }
        self.stream.write_all(&out)?;
        self.stream.flush()
    }

    /// Reads the next reply (after [`Direct::send`]).
    pub fn next_frame(&mut self) -> std::io::Result<Frame> {
        read_frame(&mut self.stream, &mut self.buf)
    }

    /// Reads raw bytes (what was buffered first), for a reader of an endless stream (MONITOR).
    pub fn read_raw(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if !self.buf.is_empty() {
            let n = out.len().min(self.buf.len());
            out[..n].copy_from_slice(&self.buf.split_to(n));
            return Ok(n);
        }
        self.stream.read(out)
    }

    /// Sets the socket's read timeout.
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        let _ = self.stream.sock.set_read_timeout(Some(timeout));
    }

    /// The raw stored bytes of a string key (None when missing).
    pub fn get(&mut self, key: &[u8]) -> Option<Bytes> {
        match self.cmd(&[b"GET", key]).expect("direct GET") {
            Frame::Bulk(b) => Some(b),
            Frame::NullBulk => None,
            other => panic!("direct GET: unexpected {other:?}"),
        }
    }

    /// Writes raw bytes under a key, around the proxy.
    pub fn set(&mut self, key: &[u8], value: &[u8]) {
        let reply = self.cmd(&[b"SET", key, value]).expect("direct SET");
        assert_eq!(reply, Frame::Simple(Bytes::from_static(b"OK")));
    }

    /// Every key in the database (SCAN).
    pub fn keys(&mut self) -> Vec<Bytes> {
        let mut cursor = Bytes::from_static(b"0");
        let mut keys = Vec::new();
        loop {
            let Frame::Array(parts) = self
                .cmd(&[b"SCAN", &cursor, b"COUNT", b"1000"])
                .expect("SCAN")
            else {
                panic!("SCAN reply")
            };
            let [Frame::Bulk(next), Frame::Array(batch)] = &parts[..] else {
                panic!("SCAN reply shape")
            };
            keys.extend(batch.iter().map(|k| match k {
                Frame::Bulk(k) => k.clone(),
                other => panic!("SCAN key {other:?}"),
            }));
            if &next[..] == b"0" {
                return keys;
            }
            cursor = next.clone();
        }
    }
}

/// Sends one command on `stream` and reads its reply (buffering what comes after it).
pub fn round_trip<S: Read + Write>(
    stream: &mut S,
    buf: &mut BytesMut,
    args: &[&[u8]],
) -> std::io::Result<Frame> {
    let mut out = BytesMut::new();
    resp::write_array_len(&mut out, args.len());
    for a in args {
        resp::write_bulk(&mut out, a);
    }
    stream.write_all(&out)?;
    stream.flush()?;
    read_frame(stream, buf)
}

/// Reads the next reply from `stream`.
pub fn read_frame<S: Read>(stream: &mut S, buf: &mut BytesMut) -> std::io::Result<Frame> {
    let limits = Limits {
        max_array_len: 1 << 30,
        ..Limits::default()
    };
    let mut scanner = ReplyScanner::new(limits);
    loop {
        if let Some(len) = scanner.scan(buf).map_err(std::io::Error::other)? {
            let frame = buf.split_to(len).freeze();
            let parsed = Frame::parse(&frame, &limits).map_err(std::io::Error::other)?;
            return Ok(parsed.expect("complete frame").0);
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A plain RESP client for redcloak's listener (raw frames, no client library in between).
pub struct Plain {
    stream: TcpStream,
    buf: BytesMut,
}

impl Plain {
    /// A plain client of the redcloak (or Redis) listening on `addr`.
    pub fn connect(addr: SocketAddr) -> Plain {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Plain {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Sends one command and returns its reply.
    pub fn cmd(&mut self, args: &[&[u8]]) -> std::io::Result<Frame> {
        round_trip(&mut self.stream, &mut self.buf, args)
    }

    /// Reads the next frame (a push, in subscribed mode).
    pub fn next_frame(&mut self) -> std::io::Result<Frame> {
        read_frame(&mut self.stream, &mut self.buf)
    }

    /// Sends one command without reading its reply (pipelining: read with `next_frame`).
    pub fn send(&mut self, args: &[&[u8]]) -> std::io::Result<()> {
        let mut out = BytesMut::new();
        resp::write_array_len(&mut out, args.len());
        for a in args {
            resp::write_bulk(&mut out, a);
        }
        self.stream.write_all(&out)
    }
}

// === Stack ===

/// Redis + redcloak + certificates for one test.
pub struct Stack {
    /// redcloak (dropped first: fields drop in declaration order).
    pub proxy: Redcloak,
    /// Redis.
    pub redis: RedisServer,
    /// Certificates.
    pub pki: Pki,
    /// Redis's password.
    pub password: String,
    /// The encryption key ring string (REDIS_ENCRYPTION_KEY).
    pub keys: String,
    /// The environment redcloak was started with.
    pub env: Vec<(String, String)>,
    /// Temporary directory (removed last).
    pub dir: tempfile::TempDir,
}

impl Stack {
    /// A fresh stack with a new PKI, password and encryption key.
    pub fn start() -> Stack {
        Stack::start_with(&[], &[])
    }

    /// Like [`Stack::start`], with extra redis-server arguments and redcloak environment.
    pub fn start_with(redis_args: &[&str], extra_env: &[(&str, &str)]) -> Stack {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::generate(&dir.path().join("certs"));
        let password = random_secret(40);
        let keys = redcloak_crypto::generate_key().to_string();
        let redis = RedisServer::start(dir.path(), &pki, &password, redis_args);
        let mut env = stack_env(&pki, redis.port, &password, &keys);
        for (k, v) in extra_env {
            env.retain(|(name, _)| name != k);
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
        let proxy = Redcloak::start(dir.path(), &env);
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

    /// `redis://127.0.0.1:<proxy port>` for clients of the proxy.
    pub fn proxy_url(&self) -> String {
        format!("redis://{}", self.proxy.addr)
    }

    /// A `redis` crate connection through redcloak.
    pub fn client(&self) -> redis::Connection {
        let client = redis::Client::open(self.proxy_url()).expect("redis client");
        client
            .get_connection_with_timeout(Duration::from_secs(10))
            .expect("connect through redcloak")
    }

    /// A plain RESP client of redcloak.
    pub fn plain(&self) -> Plain {
        Plain {
            stream: self.raw(),
            buf: BytesMut::new(),
        }
    }

    /// A raw TCP connection to redcloak.
    pub fn raw(&self) -> TcpStream {
        let s = TcpStream::connect(self.proxy.addr).expect("connect to redcloak");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s
    }

    /// Checks that every value Redis holds is ciphertext redcloak can open (see [`audit`]).
    pub fn assert_all_values_encrypted(&self) -> usize {
        audit::assert_all_values_encrypted(&mut self.direct(), &self.key_ring())
    }

    /// A client straight to Redis, around redcloak.
    pub fn direct(&self) -> Direct {
        Direct::connect(&self.pki, self.redis.port, &self.password)
            .expect("direct TLS connection to Redis")
    }

    /// The key ring redcloak uses (for decrypting what Redis stores, in assertions).
    pub fn key_ring(&self) -> redcloak_crypto::KeyRing {
        redcloak_crypto::KeyRing::parse(&self.keys).expect("key ring")
    }

    /// Runs `redis-cli` against redcloak with `args`; returns stdout.
    pub fn redis_cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.proxy.addr.port().to_string()])
            .args(args)
            .output()
            .unwrap_or_else(|_| {
                missing(
                    "redis-cli is not installed",
                    "redis-tools",
                    "sudo apt-get install -y redis-tools",
                )
            });
        assert!(
            out.status.success(),
            "redis-cli {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The environment that points redcloak at a test Redis.
pub fn stack_env(pki: &Pki, port: u16, password: &str, keys: &str) -> Vec<(String, String)> {
    let p = |p: &Path| p.display().to_string();
    vec![
        ("REDIS_URL".into(), format!("rediss://127.0.0.1:{port}")),
        ("REDIS_PASSWORD".into(), password.into()),
        ("REDIS_ENCRYPTION_KEY".into(), keys.into()),
        ("REDIS_TLS_CA_CERT".into(), p(&pki.ca_cert)),
        ("REDIS_TLS_CERT".into(), p(&pki.client_cert)),
        ("REDIS_TLS_KEY".into(), p(&pki.client_key)),
    ]
}

/// Reads from `stream` until EOF or `timeout`, returning everything read.
pub fn read_until_closed(stream: &mut TcpStream, timeout: Duration) -> (Vec<u8>, bool) {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let deadline = Instant::now() + timeout;
    let mut all = Vec::new();
    let mut chunk = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut chunk) {
            Ok(0) => return (all, true),
            Ok(n) => all.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (all, true),
        }
    }
    (all, false)
}

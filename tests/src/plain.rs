//! A plain `redis-server` (no TLS, no password) on a free loopback port: the oracle that
//! redcloak's replies are compared with, side by side. Killed (by PID) on drop.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::BytesMut;
use redcloak_commands::resp::Frame;

use crate::{free_port, missing, round_trip, wait_for, Stack};

/// A plain redis-server.
pub struct PlainRedis {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its password, if any.
    pub password: Option<String>,
}

impl PlainRedis {
    /// Starts one with `extra` arguments, its files in `dir`.
    pub fn start(dir: &Path, extra: &[&str]) -> PlainRedis {
        PlainRedis::launch(dir, None, extra)
    }

    /// Starts one that requires `password` (written to a config file, never on the command
    /// line where `ps` would show it).
    pub fn with_password(dir: &Path, password: &str) -> PlainRedis {
        PlainRedis::launch(dir, Some(password), &[])
    }

    fn launch(dir: &Path, password: Option<&str>, extra: &[&str]) -> PlainRedis {
        for attempt in 0..5 {
            let port = free_port();
            let log = dir.join(format!("plain-redis-{port}.log"));
            let conf = dir.join(format!("plain-redis-{port}.conf"));
            let data = dir.join(format!("plain-redis-{port}"));
            std::fs::create_dir_all(&data).expect("plain redis dir");
            let text = password.map_or(String::new(), |p| format!("requirepass {p}\n"));
            std::fs::write(&conf, text).expect("plain redis conf");
            let mut child = Command::new("redis-server")
                .arg(&conf)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(&data)
                .arg("--logfile")
                .arg(&log)
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|_| {
                    missing(
                        "redis-server is not installed",
                        "a real redis-server for the side-by-side tests",
                        "run `make test` (it installs it) or `sudo apt-get install -y redis-server`",
                    )
                });
            let up = wait_for(Duration::from_secs(10), || {
                matches!(child.try_wait(), Ok(Some(_)))
                    || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Ready to accept"))
            });
            if up && matches!(child.try_wait(), Ok(None)) {
                return PlainRedis {
                    child,
                    port,
                    password: password.map(str::to_owned),
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if attempt < 4 && text.contains("Address already in use") {
                continue;
            }
            panic!("plain redis-server did not start:\n{text}");
        }
        unreachable!()
    }

    /// Where it listens.
    pub fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// A raw socket to it (no delay, a generous read timeout).
    pub fn raw(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to plain redis");
        s.set_nodelay(true).expect("nodelay");
        // Generous: a loaded 2-core machine can stall a reply for seconds.
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        s
    }

    /// A raw RESP connection.
    pub fn conn(&self) -> Conn<TcpStream> {
        Conn {
            stream: self.raw(),
            buf: BytesMut::new(),
        }
    }

    /// `redis://127.0.0.1:<port>/0` (no password: pass it separately).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// A `redis` crate connection, authenticated.
    pub fn client(&self) -> redis::Connection {
        let url = match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/0", self.port),
            None => self.url(),
        };
        redis::Client::open(url)
            .expect("client")
            .get_connection_with_timeout(Duration::from_secs(10))
            .expect("connect to the plain redis")
    }
}

impl Drop for PlainRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw RESP connection (plain Redis or redcloak).
pub struct Conn<S> {
    stream: S,
    buf: BytesMut,
}

impl<S: std::io::Read + std::io::Write> Conn<S> {
    /// Sends one command, returns its reply.
    pub fn cmd(&mut self, args: &[&[u8]]) -> Frame {
        round_trip(&mut self.stream, &mut self.buf, args).expect("round trip")
    }
}

/// Runs the same command sequences against redcloak (in front of its TLS Redis) and a plain
/// Redis, in RESP2 and RESP3, and fails on the first reply that differs. Each sequence starts
/// from an empty database on both sides. Returns how many commands were compared.
pub fn side_by_side(stack: &Stack, plain: &PlainRedis, sequences: &[Vec<Vec<&[u8]>>]) -> usize {
    let mut compared = 0;
    for protocol in [&b"2"[..], b"3"] {
        let mut ours = Conn {
            stream: stack.raw(),
            buf: BytesMut::new(),
        };
        let mut theirs = plain.conn();
        ours.cmd(&[b"HELLO", protocol]);
        theirs.cmd(&[b"HELLO", protocol]);
        for (n, sequence) in sequences.iter().enumerate() {
            theirs.cmd(&[b"FLUSHALL"]);
            stack
                .direct()
                .cmd(&[b"FLUSHALL"])
                .expect("flush the TLS Redis");
            for command in sequence {
                let (a, b) = (ours.cmd(command), theirs.cmd(command));
                assert_eq!(
                    a,
                    b,
                    "RESP{}: sequence #{n}, command {:?}: redcloak and Redis differ",
                    String::from_utf8_lossy(protocol),
                    command
                        .iter()
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect::<Vec<_>>()
                );
                compared += 1;
            }
        }
    }
    compared
}

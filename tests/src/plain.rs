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
}

impl PlainRedis {
    /// Starts one with its data and log in `dir`.
    pub fn start(dir: &Path) -> PlainRedis {
        for _ in 0..5 {
            let port = free_port();
            let log = dir.join(format!("plain-redis-{port}.log"));
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(dir)
                .arg("--logfile")
                .arg(&log)
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
            let mut plain = PlainRedis { child, port };
            if wait_for(Duration::from_secs(10), || {
                TcpStream::connect(("127.0.0.1", port)).is_ok()
            }) {
                return plain;
            }
            let _ = plain.child.kill();
        }
        panic!("a plain redis-server did not start");
    }

    /// A raw RESP connection.
    pub fn conn(&self) -> Conn<TcpStream> {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to plain redis");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Conn {
            stream: s,
            buf: BytesMut::new(),
        }
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

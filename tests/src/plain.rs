//! Side-by-side runs against a plain `redis-server` ([`crate::diff::PlainRedis`]): the
//! oracle that redcloak's replies are compared with.

use std::net::TcpStream;
use std::time::Duration;

use bytes::BytesMut;
use redcloak_commands::resp::Frame;

use crate::{round_trip, Stack};

pub use crate::diff::PlainRedis;

impl PlainRedis {
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

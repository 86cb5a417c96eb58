//! The engine alone, with an in-memory backend: limits, cache, state reuse.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use redcloak_commands::resp::Frame;
use redcloak_script::{Backend, CallContext, CommandInfo, Engine, Limits, LogLevel, RunOptions};

/// A tiny in-memory Redis: GET, SET, INCR, DEL; everything else unknown.
#[derive(Default)]
struct MemBackend {
    data: HashMap<Bytes, Bytes>,
    logs: Vec<(LogLevel, Vec<u8>)>,
}

impl Backend for MemBackend {
    fn command_info(&mut self, args: &[Bytes]) -> Option<CommandInfo> {
        let (arity, write) = match args[0].to_ascii_lowercase().as_slice() {
            b"get" => (2, false),
            b"set" => (-3, true),
            b"incr" => (2, true),
            b"del" => (-2, true),
            _ => return None,
        };
        Some(CommandInfo {
            arity,
            write,
            noscript: false,
        })
    }

    fn call(&mut self, args: &[Bytes], _ctx: &CallContext) -> Frame {
        match args[0].to_ascii_lowercase().as_slice() {
            b"get" => self
                .data
                .get(&args[1])
                .cloned()
                .map_or(Frame::NullBulk, Frame::Bulk),
            b"set" => {
                self.data.insert(args[1].clone(), args[2].clone());
                Frame::Simple(Bytes::from_static(b"OK"))
            }
            b"incr" => {
                let n: i64 = self
                    .data
                    .get(&args[1])
                    .map_or(Some(0), |v| {
                        std::str::from_utf8(v).ok().and_then(|s| s.parse().ok())
                    })
                    .unwrap_or(0)
                    + 1;
                self.data
                    .insert(args[1].clone(), Bytes::from(n.to_string()));
                Frame::Integer(n)
            }
            b"del" => Frame::Integer(
                args[1..]
                    .iter()
                    .filter(|k| self.data.remove(*k).is_some())
                    .count() as i64,
            ),
            _ => Frame::Error(Bytes::from_static(b"ERR unknown command")),
        }
    }

    fn log(&mut self, level: LogLevel, message: &[u8]) {
        self.logs.push((level, message.to_vec()));
    }
}

fn enc(f: &Frame) -> String {
    let mut b = BytesMut::new();
    f.encode(&mut b);
    String::from_utf8_lossy(&b).into_owned()
}

fn eval(e: &mut Engine, b: &mut MemBackend, script: &str) -> String {
    enc(&e.eval(script.as_bytes(), &[], &[], RunOptions::default(), b))
}

#[test]
fn debug_frames() {
    let mut e = Engine::new(Limits::default());
    let mut b = MemBackend::default();
    eprintln!("{}", eval(&mut e, &mut b, "local x = nil; return x.y"));
    eprintln!("{}", eval(&mut e, &mut b, "error('x')"));
}

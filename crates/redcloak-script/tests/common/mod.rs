//! Test harness: real `redis-server` instances and a tiny blocking RESP client.
//!
//! Side by side: the [`Engine`] runs a script with a [`RedisBackend`] that forwards each
//! `redis.call` to Redis A; the same script runs as `EVAL` on Redis B with the same data; the
//! reply bytes must be identical.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use redcloak_commands::resp::{Frame, Limits as RespLimits};
use redcloak_script::{Backend, CallContext, CommandInfo, Engine, Limits, LogLevel, RunOptions};

/// A plain, non-persistent `redis-server` on a free loopback port, killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--loglevel",
                "warning",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "redis-server is required for these tests (what: not found; fix: apt-get install redis-server)",
            );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = Client::connect(port) {
                if c.cmd(&["PING"]) == b"+PONG\r\n" {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisServer { child, port }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port).expect("connect")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking RESP client that returns raw reply bytes.
pub struct Client {
    stream: TcpStream,
    buf: BytesMut,
}

fn resp_limits() -> RespLimits {
    RespLimits {
        max_depth: 512,
        ..RespLimits::default()
    }
}

impl Client {
    pub fn connect(port: u16) -> std::io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Client {
            stream,
            buf: BytesMut::new(),
        })
    }

    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        let mut out = Vec::new();
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            let a = a.as_ref();
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&out).expect("write");
    }

    /// Reads one reply: its raw bytes and the parsed frame.
    pub fn read(&mut self) -> (Vec<u8>, Frame) {
        loop {
            let bytes = Bytes::copy_from_slice(&self.buf);
            if let Some((frame, len)) = Frame::parse(&bytes, &resp_limits()).expect("valid RESP") {
                let raw = self.buf.split_to(len).to_vec();
                return (raw, frame);
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<u8> {
        self.send(args);
        self.read().0
    }

    pub fn frame<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Frame {
        self.send(args);
        self.read().1
    }
}

/// A [`Backend`] forwarding to a real Redis, describing commands with `COMMAND INFO`.
pub struct RedisBackend {
    pub client: Client,
    resp: u8,
    info: HashMap<Vec<u8>, Option<(CommandInfo, bool)>>,
    pub logs: Vec<(LogLevel, Vec<u8>)>,
    pub calls: usize,
}

impl RedisBackend {
    pub fn new(client: Client) -> RedisBackend {
        RedisBackend {
            client,
            resp: 2,
            info: HashMap::new(),
            logs: Vec::new(),
            calls: 0,
        }
    }

    /// (info, has subcommands) of `name` (lowercase; `a|b` for a subcommand).
    fn lookup(&mut self, name: &[u8]) -> Option<(CommandInfo, bool)> {
        if let Some(v) = self.info.get(name) {
            return *v;
        }
        let reply = self.client.frame(&[&b"COMMAND"[..], b"INFO", name]);
        let found = match reply {
            Frame::Array(items) => match items.into_iter().next() {
                Some(Frame::Array(fields)) => {
                    let arity = match fields.get(1) {
                        Some(Frame::Integer(n)) => *n,
                        _ => 0,
                    };
                    let flags: Vec<Vec<u8>> = match fields.get(2) {
                        Some(Frame::Array(f)) | Some(Frame::Set(f)) => f
                            .iter()
                            .filter_map(|x| match x {
                                Frame::Simple(s) | Frame::Bulk(s) => Some(s.to_vec()),
                                _ => None,
                            })
                            .collect(),
                        _ => vec![],
                    };
                    let has_sub = matches!(fields.get(9), Some(Frame::Array(s)) if !s.is_empty());
                    Some((
                        CommandInfo {
                            arity,
                            write: flags.iter().any(|f| f == b"write"),
                            noscript: flags.iter().any(|f| f == b"noscript"),
                        },
                        has_sub,
                    ))
                }
                _ => None,
            },
            _ => None,
        };
        self.info.insert(name.to_vec(), found);
        found
    }
}

impl Backend for RedisBackend {
    fn command_info(&mut self, args: &[Bytes]) -> Option<CommandInfo> {
        let name = args[0].to_ascii_lowercase();
        let (info, has_sub) = self.lookup(&name)?;
        if !has_sub {
            return Some(info);
        }
        let Some(sub) = args.get(1) else {
            return Some(info);
        };
        let mut full = name.clone();
        full.push(b'|');
        full.extend_from_slice(&sub.to_ascii_lowercase());
        self.lookup(&full).map(|(i, _)| i)
    }

    fn call(&mut self, args: &[Bytes], ctx: &CallContext) -> Frame {
        self.calls += 1;
        if ctx.resp != self.resp {
            let v = ctx.resp.to_string();
            self.client.cmd(&["HELLO", v.as_str()]);
            self.resp = ctx.resp;
        }
        self.client.frame(args)
    }

    fn log(&mut self, level: LogLevel, message: &[u8]) {
        self.logs.push((level, message.to_vec()));
    }
}

/// Two Redis servers: A behind the engine, B running EVAL itself.
pub struct SideBySide {
    pub a: RedisServer,
    pub b: RedisServer,
    pub engine: Engine,
    pub backend: RedisBackend,
    pub b2: Client,
    pub b3: Client,
    pub mismatches: Vec<String>,
    pub checked: usize,
}

impl SideBySide {
    pub fn new() -> SideBySide {
        let a = RedisServer::start();
        let b = RedisServer::start();
        let backend = RedisBackend::new(a.client());
        let b2 = b.client();
        let mut b3 = b.client();
        b3.cmd(&["HELLO", "3"]);
        SideBySide {
            a,
            b,
            engine: Engine::new(Limits::default()),
            backend,
            b2,
            b3,
            mismatches: Vec::new(),
            checked: 0,
        }
    }

    /// Runs a command on both servers (test data).
    pub fn both(&mut self, args: &[&str]) {
        let mut ca = self.a.client();
        ca.cmd(args);
        self.b2.cmd(args);
    }

    fn bytes(items: &[&str]) -> Vec<Bytes> {
        items
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    /// EVAL `script` on both sides with `keys`/`argv` in protocol `resp`; records a mismatch.
    pub fn eval_as(&mut self, resp: u8, script: &str, keys: &[&str], argv: &[&str]) {
        self.eval_bytes(resp, script.as_bytes(), keys, argv, false);
    }

    pub fn eval_bytes(&mut self, resp: u8, script: &[u8], keys: &[&str], argv: &[&str], ro: bool) {
        let k = Self::bytes(keys);
        let a = Self::bytes(argv);
        let ours = self.engine.eval(
            script,
            &k,
            &a,
            RunOptions {
                client_resp: resp,
                read_only: ro,
            },
            &mut self.backend,
        );
        let mut ours_bytes = BytesMut::new();
        ours.encode(&mut ours_bytes);
        let numkeys = keys.len().to_string();
        let mut args: Vec<&[u8]> = vec![
            if ro { b"EVAL_RO" } else { b"EVAL" },
            script,
            numkeys.as_bytes(),
        ];
        args.extend(keys.iter().map(|s| s.as_bytes()));
        args.extend(argv.iter().map(|s| s.as_bytes()));
        let theirs = if resp == 3 {
            self.b3.cmd(&args)
        } else {
            self.b2.cmd(&args)
        };
        self.checked += 1;
        if ours_bytes[..] != theirs[..] {
            self.mismatches.push(format!(
                "RESP{resp} {:?}\n   redis:     {:?}\n   redcloak:  {:?}",
                String::from_utf8_lossy(script),
                String::from_utf8_lossy(&theirs),
                String::from_utf8_lossy(&ours_bytes)
            ));
        }
    }

    /// EVAL in RESP2 and then RESP3.
    pub fn eval(&mut self, script: &str, keys: &[&str], argv: &[&str]) {
        self.eval_as(2, script, keys, argv);
        self.eval_as(3, script, keys, argv);
    }

    /// Each script, no keys or arguments, RESP2 and RESP3.
    pub fn scripts(&mut self, scripts: &[&str]) {
        for s in scripts {
            self.eval(s, &[], &[]);
        }
    }

    pub fn assert_clean(&self) {
        assert!(
            self.mismatches.is_empty(),
            "{} of {} replies differ from Redis:\n{}",
            self.mismatches.len(),
            self.checked,
            self.mismatches.join("\n")
        );
        eprintln!("{} replies identical to Redis", self.checked);
    }
}

impl SideBySide {
    /// A FUNCTION subcommand on B (RESP2 or RESP3) next to the engine's answer.
    pub fn compare(
        &mut self,
        what: &str,
        resp: u8,
        ours: &redcloak_commands::resp::Frame,
        args: &[&[u8]],
    ) {
        let mut ours_bytes = BytesMut::new();
        ours.encode(&mut ours_bytes);
        let theirs = if resp == 3 {
            self.b3.cmd(args)
        } else {
            self.b2.cmd(args)
        };
        self.checked += 1;
        if ours_bytes[..] != theirs[..] {
            self.mismatches.push(format!(
                "RESP{resp} {what}\n   redis:     {:?}\n   redcloak:  {:?}",
                String::from_utf8_lossy(&theirs),
                String::from_utf8_lossy(&ours_bytes)
            ));
        }
    }

    /// FUNCTION LOAD [REPLACE] on both sides.
    pub fn load(&mut self, code: &str, replace: bool) {
        let ours = match self.engine.function_load(code.as_bytes(), replace) {
            Ok(name) => Frame::Bulk(Bytes::from(name)),
            Err(e) => e,
        };
        let mut args: Vec<&[u8]> = vec![b"FUNCTION", b"LOAD"];
        if replace {
            args.push(b"REPLACE");
        }
        args.push(code.as_bytes());
        self.compare(&format!("FUNCTION LOAD {code:?}"), 2, &ours, &args);
    }

    /// FCALL / FCALL_RO on both sides, RESP2 and RESP3.
    pub fn fcall(&mut self, name: &str, keys: &[&str], argv: &[&str], ro: bool) {
        for resp in [2u8, 3] {
            let k = Self::bytes(keys);
            let a = Self::bytes(argv);
            let ours = self.engine.fcall(
                name.as_bytes(),
                &k,
                &a,
                RunOptions {
                    client_resp: resp,
                    read_only: ro,
                },
                &mut self.backend,
            );
            let numkeys = keys.len().to_string();
            let mut args: Vec<&[u8]> = vec![
                if ro { b"FCALL_RO" } else { b"FCALL" },
                name.as_bytes(),
                numkeys.as_bytes(),
            ];
            args.extend(keys.iter().map(|s| s.as_bytes()));
            args.extend(argv.iter().map(|s| s.as_bytes()));
            self.compare(
                &format!("FCALL {name} {keys:?} {argv:?}"),
                resp,
                &ours,
                &args,
            );
        }
    }
}

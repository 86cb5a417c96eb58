//! Differential and observation helpers: the same raw command sequence sent to a plain Redis
//! and through redcloak, compared reply by reply; a `MONITOR` reader on a direct TLS
//! connection that shows every command Redis receives; the admin endpoint's metrics.
//!
//! # Layout
//! - [`PlainRedis`]: a `redis-server` without TLS or password (the reference: what Redis itself
//!   answers). Never used for anything but comparisons.
//! - [`Step`], [`converse`], [`assert_same_replies`]: scripted conversations. Each step is a
//!   pipeline written at once; the helper appends `PING <sentinel>` and reads until the
//!   sentinel's answer, so the replies of one step are exactly the frames before it. A step
//!   may also be a command on a *side* connection (a `PUBLISH` from another client), run after
//!   the previous step's replies arrived, so messages land at the same place in both streams.
//! - [`Monitor`]: `MONITOR` on a direct TLS connection to the Redis behind redcloak, read on a
//!   thread; [`Monitor::sync`] waits until everything Redis executed so far has been seen.
//! - [`scrape`] / [`metric`]: `/metrics` from the admin endpoint.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use redcloak_commands::resp::{self, Frame, Limits, ReplyScanner};

use crate::{free_port, wait_for, Direct, Stack};

/// One RESP command as bytes.
pub fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = BytesMut::new();
    resp::write_array_len(&mut out, args.len());
    for a in args {
        resp::write_bulk(&mut out, a);
    }
    out.to_vec()
}

/// Splits a command written as words (`"SET k v"`); `\0` in a word is a NUL byte.
pub fn words(line: &str) -> Vec<Vec<u8>> {
    line.split_whitespace()
        .map(|w| w.replace("\\0", "\0").into_bytes())
        .collect()
}

pub use crate::plain::PlainRedis;

fn connect_raw(addr: impl std::net::ToSocketAddrs) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    // Generous: a loaded 2-core machine can stall a reply for seconds.
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s
}

// === conversations ===

/// One step of a scripted conversation.
#[derive(Debug, Clone)]
pub enum Step {
    /// These commands, written at once (a pipeline), on the conversation's connection.
    Pipeline(Vec<Vec<Vec<u8>>>),
    /// One command on a second connection (another client), after the replies of the
    /// previous step arrived; its own reply is recorded too.
    Side(Vec<Vec<u8>>),
}

impl Step {
    /// A pipeline of commands written as words (see [`words`]).
    pub fn send(lines: &[&str]) -> Step {
        Step::Pipeline(lines.iter().map(|l| words(l)).collect())
    }

    /// A command from another client, written as words.
    pub fn side(line: &str) -> Step {
        Step::Side(words(line))
    }
}

/// A reply as received: its exact bytes and the parsed frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The bytes of this one frame.
    pub raw: Bytes,
    /// Parsed.
    pub frame: Frame,
}

/// Runs `steps` on a fresh connection to `addr` (and a second one for side steps); returns
/// the replies of each step. A step containing QUIT reads until the connection closes.
pub fn converse(addr: std::net::SocketAddr, steps: &[Step]) -> Vec<Vec<Reply>> {
    let mut main = connect_raw(addr);
    let mut side: Option<TcpStream> = None;
    let mut buf = BytesMut::new();
    let mut side_buf = BytesMut::new();
    let mut out = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        match step {
            Step::Pipeline(cmds) => {
                let quits = cmds.iter().any(|c| is_word(c.first(), "QUIT"));
                let sentinel = format!("sentinel-{n}");
                let mut bytes = Vec::new();
                for c in cmds {
                    let args: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
                    bytes.extend(command(&args));
                }
                if !quits {
                    bytes.extend(command(&[b"PING", sentinel.as_bytes()]));
                }
                main.write_all(&bytes).expect("write step");
                let mut replies = Vec::new();
                loop {
                    match read_reply(&mut main, &mut buf) {
                        Some(r) if is_sentinel(&r.frame, &sentinel) => break,
                        Some(r) => replies.push(r),
                        None if quits => break,
                        None => panic!(
                            "step {n} of a conversation with {addr}: the connection closed or went quiet after {replies:?}"
                        ),
                    }
                }
                out.push(replies);
                if quits {
                    break;
                }
            }
            Step::Side(cmd) => {
                let s = side.get_or_insert_with(|| connect_raw(addr));
                let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
                s.write_all(&command(&args)).expect("write side");
                let r = read_reply(s, &mut side_buf).expect("side reply");
                out.push(vec![r]);
            }
        }
    }
    out
}

fn is_word(arg: Option<&Vec<u8>>, word: &str) -> bool {
    arg.is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()))
}

fn is_sentinel(frame: &Frame, sentinel: &str) -> bool {
    let s = sentinel.as_bytes();
    match frame {
        Frame::Bulk(b) => &b[..] == s,
        Frame::Array(items) => {
            items.len() == 2
                && matches!(&items[0], Frame::Bulk(p) if &p[..] == b"pong")
                && matches!(&items[1], Frame::Bulk(b) if &b[..] == s)
        }
        _ => false,
    }
}

/// Reads one reply; `None` on EOF or after 30 s of silence.
pub fn read_reply(stream: &mut TcpStream, buf: &mut BytesMut) -> Option<Reply> {
    let limits = Limits {
        max_array_len: 1 << 30,
        ..Limits::default()
    };
    let mut scanner = ReplyScanner::new(limits);
    loop {
        if let Some(len) = scanner.scan(buf).expect("valid RESP") {
            let raw = buf.split_to(len).freeze();
            let frame = Frame::parse(&raw, &limits)
                .expect("valid RESP")
                .expect("complete")
                .0;
            return Some(Reply { raw, frame });
        }
        let mut chunk = [0u8; 64 * 1024];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// What differs between two runs of the same conversation for reasons that are not
/// redcloak's: the connection id in HELLO's reply, and the order in which Redis lists the
/// subscriptions an (P|S)UNSUBSCRIBE without names ends (its dict order).
pub fn normalize(replies: &[Reply]) -> Vec<Frame> {
    let mut frames: Vec<Frame> = replies.iter().map(|r| hello_id(r.frame.clone())).collect();
    let mut i = 0;
    while i < frames.len() {
        let Some(kind) = confirmation_kind(&frames[i]) else {
            i += 1;
            continue;
        };
        let mut j = i + 1;
        while j < frames.len() && confirmation_kind(&frames[j]).as_deref() == Some(&kind[..]) {
            j += 1;
        }
        let mut names: Vec<Frame> = frames[i..j].iter().map(|f| item(f, 1)).collect();
        names.sort_by_key(encoded);
        for (f, name) in frames[i..j].iter_mut().zip(names) {
            set_item(f, 1, name);
        }
        i = j;
    }
    frames
}

/// A frame's bytes (`Frame`'s `Debug` hides contents).
pub fn encoded(f: &Frame) -> Vec<u8> {
    let mut out = BytesMut::new();
    f.encode(&mut out);
    out.to_vec()
}

fn items_of(f: &Frame) -> Option<&Vec<Frame>> {
    match f {
        Frame::Array(items) | Frame::Push(items) => Some(items),
        _ => None,
    }
}

fn confirmation_kind(f: &Frame) -> Option<Vec<u8>> {
    let items = items_of(f)?;
    match (items.len(), items.first()) {
        (3, Some(Frame::Bulk(k))) if k.ends_with(b"subscribe") => Some(k.to_vec()),
        _ => None,
    }
}

fn item(f: &Frame, i: usize) -> Frame {
    items_of(f)
        .and_then(|it| it.get(i).cloned())
        .unwrap_or(Frame::Null)
}

fn set_item(f: &mut Frame, i: usize, v: Frame) {
    if let Frame::Array(items) | Frame::Push(items) = f {
        items[i] = v;
    }
}

fn hello_id(f: Frame) -> Frame {
    match f {
        Frame::Map(mut pairs) if pairs.iter().any(|(k, _)| *k == bulk("server")) => {
            for (k, v) in &mut pairs {
                if *k == bulk("id") {
                    *v = Frame::Integer(0);
                }
            }
            Frame::Map(pairs)
        }
        Frame::Array(mut items) if items.first() == Some(&bulk("server")) => {
            if let Some(i) = items.iter().position(|k| *k == bulk("id")) {
                if i + 1 < items.len() {
                    items[i + 1] = Frame::Integer(0);
                }
            }
            Frame::Array(items)
        }
        other => other,
    }
}

/// A bulk string frame.
pub fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

/// Runs `steps` against the plain Redis and through redcloak and checks that every step got
/// the same replies — byte for byte, except for what [`normalize`] evens out. Returns
/// redcloak's replies.
#[track_caller]
pub fn assert_same_replies(stack: &Stack, plain: &PlainRedis, steps: &[Step]) -> Vec<Vec<Reply>> {
    let expected = converse(([127, 0, 0, 1], plain.port).into(), steps);
    let got = converse(stack.proxy.addr, steps);
    assert_eq!(
        expected.len(),
        got.len(),
        "steps answered: Redis {expected:?}, redcloak {got:?}"
    );
    for (n, (e, g)) in expected.iter().zip(&got).enumerate() {
        let raw_equal = e.len() == g.len() && e.iter().zip(g).all(|(a, b)| a.raw == b.raw);
        if raw_equal {
            continue;
        }
        let (ne, ng) = (normalize(e), normalize(g));
        assert!(
            ne == ng,
            "step {n} ({}) differs:\n  Redis:    {}\n  redcloak: {}\n  normalized:\n  Redis:    {}\n  redcloak: {}",
            show_step(&steps[n]),
            show(e),
            show(g),
            show_frames(&ne),
            show_frames(&ng)
        );
    }
    got
}

/// Frames, readable.
pub fn show_frames(frames: &[Frame]) -> String {
    frames
        .iter()
        .map(|f| String::from_utf8_lossy(&encoded(f)).replace("\r\n", "⏎"))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// A step, readable.
pub fn show_step(step: &Step) -> String {
    let line = |c: &Vec<Vec<u8>>| {
        c.iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    match step {
        Step::Pipeline(cmds) => cmds.iter().map(line).collect::<Vec<_>>().join("; "),
        Step::Side(cmd) => format!("(another client) {}", line(cmd)),
    }
}

/// The replies' raw bytes, readable.
pub fn show(replies: &[Reply]) -> String {
    replies
        .iter()
        .map(|r| String::from_utf8_lossy(&r.raw).replace("\r\n", "⏎"))
        .collect::<Vec<_>>()
        .join(" | ")
}

// === Monitor ===

/// `MONITOR` on a direct TLS connection to the Redis behind redcloak.
pub struct Monitor {
    seen: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    sync: Direct,
    syncs: u64,
}

impl Monitor {
    /// Starts monitoring (returns once Redis confirmed MONITOR).
    pub fn start(stack: &Stack) -> Monitor {
        let mut direct = stack.direct();
        let ok = direct.cmd(&[b"MONITOR"]).expect("MONITOR");
        assert_eq!(ok, Frame::Simple(Bytes::from_static(b"OK")), "MONITOR");
        direct.set_read_timeout(Duration::from_millis(100));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut chunk = vec![0u8; 64 * 1024];
                while !stop.load(Ordering::Relaxed) {
                    match direct.read_raw(&mut chunk) {
                        Ok(0) => return,
                        Ok(n) => seen
                            .lock()
                            .expect("monitor lock")
                            .extend_from_slice(&chunk[..n]),
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(_) => return,
                    }
                }
            })
        };
        Monitor {
            seen,
            stop,
            thread: Some(thread),
            sync: stack.direct(),
            syncs: 0,
        }
    }

    /// Waits until MONITOR has shown everything Redis executed before this call.
    pub fn sync(&mut self) {
        self.syncs += 1;
        let marker = format!("monitor-sync-{}", self.syncs);
        // EXISTS: a command no test looks for in MONITOR's output.
        self.sync
            .cmd(&[b"EXISTS", marker.as_bytes()])
            .expect("sync EXISTS");
        let seen = self.seen.clone();
        assert!(
            wait_for(Duration::from_secs(10), || {
                let s = seen.lock().expect("monitor lock");
                s.windows(marker.len()).any(|w| w == marker.as_bytes())
            }),
            "MONITOR never showed the sync marker"
        );
    }

    /// Everything MONITOR showed so far (after a [`Monitor::sync`]).
    pub fn text(&mut self) -> String {
        self.sync();
        String::from_utf8_lossy(&self.seen.lock().expect("monitor lock")).into_owned()
    }

    /// The command lines shown so far whose command is `name` (case-insensitive), without
    /// the sync markers.
    pub fn lines_of(&mut self, name: &str) -> Vec<String> {
        let quoted = format!("\"{}\"", name.to_ascii_uppercase());
        self.text()
            .lines()
            .filter(|l| {
                l.split("] ")
                    .nth(1)
                    .and_then(|rest| rest.split(' ').next())
                    .is_some_and(|c| c.to_ascii_uppercase() == quoted)
            })
            .map(str::to_owned)
            .collect()
    }

    /// Fails if any of `needles` appears in what MONITOR showed (Redis escapes non-printable
    /// bytes there, so needles should be printable).
    #[track_caller]
    pub fn assert_never_seen(&mut self, needles: &[&str]) {
        let text = self.text();
        for needle in needles {
            if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                panic!("Redis received {needle:?}: {line}");
            }
        }
    }

    /// Forgets what was seen so far.
    pub fn clear(&mut self) {
        self.sync();
        self.seen.lock().expect("monitor lock").clear();
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// === the admin endpoint ===

/// A free loopback address for `REDCLOAK_ADMIN_LISTEN`.
pub fn admin_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// `GET path` on the admin endpoint: (status, body).
pub fn admin_get(admin: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(admin)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP head"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    Ok((status, body.to_owned()))
}

/// Starts a stack whose admin endpoint listens on a free port; returns it and the address.
pub fn stack_with_admin(redis_args: &[&str], env: &[(&str, &str)]) -> (Stack, String) {
    let admin = admin_addr();
    let mut env = env.to_vec();
    env.push(("REDCLOAK_ADMIN_LISTEN", &admin));
    let stack = Stack::start_with(redis_args, &env);
    assert!(
        wait_for(Duration::from_secs(10), || admin_get(&admin, "/readyz")
            .is_ok_and(|(s, _)| s == 200)),
        "the admin endpoint never became ready:\n{}",
        stack.proxy.log_text()
    );
    (stack, admin)
}

/// The `/metrics` text.
pub fn scrape(admin: &str) -> String {
    let (status, body) = admin_get(admin, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200, "{body}");
    body
}

/// The value of one exact series (`name{labels}` as exposed), if present.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let v = l.strip_prefix(series)?.strip_prefix(' ')?;
        v.split_whitespace().next()?.parse().ok()
    })
}

/// The sum of every labelled series of the metric `name` (`name{…} value` lines).
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix('{')?;
            let (_, v) = rest.split_once("} ")?;
            v.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum()
}

/// Polls `/metrics` until `series` reaches at least `at_least` (up to 10 s); returns its value.
pub fn wait_metric(admin: &str, series: &str, at_least: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = metric(&scrape(admin), series).unwrap_or(0.0);
        if v >= at_least || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// === what Redis holds ===

/// Everything Redis holds in the current database, as one blob to search: key names and the
/// contents of strings, hashes, lists, sets, sorted sets and streams (read around redcloak).
pub fn keyspace_dump(direct: &mut Direct) -> Vec<u8> {
    let mut out = Vec::new();
    for key in direct.keys() {
        out.extend_from_slice(&key);
        out.push(b'\n');
        let kind = match direct.cmd(&[b"TYPE", &key]).expect("TYPE") {
            Frame::Simple(k) => k,
            other => panic!("TYPE: {other:?}"),
        };
        let read: &[&[u8]] = match &kind[..] {
            b"string" => &[b"GET"],
            b"hash" => &[b"HGETALL"],
            b"list" => &[b"LRANGE", b"0", b"-1"],
            b"set" => &[b"SMEMBERS"],
            b"zset" => &[b"ZRANGE", b"0", b"-1", b"WITHSCORES"],
            b"stream" => &[b"XRANGE", b"-", b"+"],
            _ => continue,
        };
        let mut args: Vec<&[u8]> = vec![read[0], &key];
        args.extend_from_slice(&read[1..]);
        let reply = direct.cmd(&args).expect("read key");
        out.extend(encoded(&reply));
        out.push(b'\n');
    }
    out
}

/// Sends one command on a raw connection and reads its reply.
pub fn exchange(stream: &mut TcpStream, buf: &mut BytesMut, args: &[Vec<u8>]) -> Reply {
    let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    stream.write_all(&command(&args)).expect("write");
    read_reply(stream, buf).expect("a reply")
}

/// The text of an error reply, or `None`.
pub fn error_text(frame: &Frame) -> Option<String> {
    match frame {
        Frame::Error(e) | Frame::BulkError(e) => Some(String::from_utf8_lossy(e).into_owned()),
        _ => None,
    }
}

/// Sends raw bytes to `addr` (followed by `PING <sentinel>` unless the bytes end the
/// connection) and returns the replies before the sentinel's, and whether the connection was
/// closed.
pub fn converse_raw(addr: std::net::SocketAddr, bytes: &[u8]) -> (Vec<Reply>, bool) {
    let mut s = connect_raw(addr);
    let mut all = bytes.to_vec();
    all.extend(command(&[b"PING", b"raw-sentinel"]));
    // The peer may close before reading everything (a protocol error): ignore write errors.
    let _ = s.write_all(&all);
    let mut buf = BytesMut::new();
    let mut replies = Vec::new();
    loop {
        match read_reply(&mut s, &mut buf) {
            Some(r) if is_sentinel(&r.frame, "raw-sentinel") => return (replies, false),
            Some(r) => replies.push(r),
            None => return (replies, true),
        }
    }
}

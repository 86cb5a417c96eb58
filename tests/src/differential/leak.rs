//! Plaintext detection around the proxy: a MONITOR connection to the TLS Redis sees every
//! command redcloak makes it execute, and after each sequence the whole keyspace (every
//! database, every type) is read back. A value marker ([`MARK`]) in either is a value that
//! reached Redis unencrypted.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redcloak_commands::resp::Frame;

use crate::{Direct, Stack};

use super::gen::MARK;
use super::wire::escape;

/// A MONITOR connection to Redis, read by a thread into a buffer.
pub struct Monitor {
    seen: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Starts monitoring the stack's Redis.
    pub fn start(stack: &Stack) -> Monitor {
        let mut direct = stack.direct();
        let ok = direct.cmd(&[b"MONITOR"]).expect("MONITOR");
        assert_eq!(ok, Frame::Simple(bytes::Bytes::from_static(b"OK")));
        let seen = Arc::new(Mutex::new(std::mem::take(&mut direct.buf).to_vec()));
        let stop = Arc::new(AtomicBool::new(false));
        let Direct { mut stream, .. } = direct;
        let _ = stream
            .sock
            .set_read_timeout(Some(Duration::from_millis(100)));
        let (s, st) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut chunk = vec![0u8; 64 * 1024];
            while !st.load(Ordering::Relaxed) {
                match stream.read(&mut chunk) {
                    Ok(0) => return,
                    Ok(n) => s
                        .lock()
                        .expect("monitor buffer")
                        .extend_from_slice(&chunk[..n]),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => return,
                }
            }
        });
        Monitor {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits until `token` (sent by `direct` as `PING token`) has been seen, then returns
    /// every monitored line holding a marker, and forgets what was seen.
    pub fn drain(&self, direct: &mut Direct, token: &str) -> Vec<String> {
        let _ = direct.cmd(&[b"PING", token.as_bytes()]);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            {
                let mut seen = self.seen.lock().expect("monitor buffer");
                let found = seen.windows(token.len()).any(|w| w == token.as_bytes());
                if found || Instant::now() > deadline {
                    let text = std::mem::take(&mut *seen);
                    return text
                        .split(|&b| b == b'\n')
                        .filter(|l| contains(l, MARK.as_bytes()))
                        .map(|l| {
                            let e = escape(l);
                            e.chars().take(400).collect()
                        })
                        .collect();
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
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

/// Whether a MONITOR line is a key lookup redcloak makes for SORT's BY/GET patterns (WATCH,
/// GET or HGET): see `sorts_by_pattern`.
pub fn is_key_lookup(line: &str) -> bool {
    let Some(rest) = line.split("] ").nth(1) else {
        return false;
    };
    let command = rest
        .trim_start_matches('\\')
        .trim_start_matches('"')
        .split(['"', '\\'])
        .next()
        .unwrap_or("");
    ["WATCH", "GET", "HGET"]
        .iter()
        .any(|c| command.eq_ignore_ascii_case(c))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn frame_bytes(f: &Frame, out: &mut Vec<Vec<u8>>) {
    match f {
        Frame::Simple(b)
        | Frame::Error(b)
        | Frame::Bulk(b)
        | Frame::Double(b)
        | Frame::BigNumber(b)
        | Frame::BulkError(b) => out.push(b.to_vec()),
        Frame::Verbatim { data, .. } => out.push(data.to_vec()),
        Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => {
            v.iter().for_each(|x| frame_bytes(x, out))
        }
        Frame::Map(p) => p.iter().for_each(|(k, v)| {
            frame_bytes(k, out);
            frame_bytes(v, out);
        }),
        Frame::Attribute { attributes, frame } => {
            attributes.iter().for_each(|(k, v)| {
                frame_bytes(k, out);
                frame_bytes(v, out);
            });
            frame_bytes(frame, out);
        }
        _ => {}
    }
}

/// Reads every key of every database straight from Redis and returns where a marker appears
/// (`db0 hash k:a: "…"`).
pub fn scan_keyspace(direct: &mut Direct) -> Vec<String> {
    let mut found = Vec::new();
    let info = match direct.cmd(&[b"INFO", b"keyspace"]) {
        Ok(Frame::Bulk(b)) => String::from_utf8_lossy(&b).into_owned(),
        _ => return vec!["INFO keyspace failed".into()],
    };
    let dbs: Vec<String> = info
        .lines()
        .filter_map(|l| l.strip_prefix("db")?.split(':').next().map(str::to_owned))
        .collect();
    for db in dbs {
        let _ = direct.cmd(&[b"SELECT", db.as_bytes()]);
        for key in direct.keys() {
            let kind = match direct.cmd(&[b"TYPE", &key]) {
                Ok(Frame::Simple(t)) => String::from_utf8_lossy(&t).into_owned(),
                _ => continue,
            };
            let reply = match kind.as_str() {
                "string" => direct.cmd(&[b"GET", &key]),
                "hash" => direct.cmd(&[b"HGETALL", &key]),
                "list" => direct.cmd(&[b"LRANGE", &key, b"0", b"-1"]),
                "set" => direct.cmd(&[b"SMEMBERS", &key]),
                "zset" => direct.cmd(&[b"ZRANGE", &key, b"0", b"-1"]),
                "stream" => direct.cmd(&[b"XRANGE", &key, b"-", b"+"]),
                _ => continue,
            };
            let mut parts = vec![key.to_vec()];
            if let Ok(reply) = reply {
                frame_bytes(&reply, &mut parts);
            }
            for p in parts {
                if contains(&p, MARK.as_bytes()) {
                    let shown: String = escape(&p).chars().take(200).collect();
                    found.push(format!("db{db} {kind} {}: \"{shown}\"", escape(&key)));
                }
            }
        }
    }
    let _ = direct.cmd(&[b"SELECT", b"0"]);
    found
}

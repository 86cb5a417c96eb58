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

fn limits(ms: u64) -> Limits {
    Limits {
        time_limit: std::time::Duration::from_millis(ms),
        ..Limits::default()
    }
}

#[test]
fn runaway_script_is_killed_and_the_engine_is_usable_again() {
    let mut e = Engine::new(limits(200));
    let mut b = MemBackend::default();
    for script in [
        "while true do end",
        // pcall cannot swallow the kill, nor can a coroutine hide the loop
        "while true do pcall(function() while true do end end) end",
        "local co = coroutine.wrap(function() while true do end end) co()",
        "while true do redis.call('get', 'k') end",
        "while true do xpcall(function() while true do end end, function(e) return e end) end",
    ] {
        let start = std::time::Instant::now();
        let r = eval(&mut e, &mut b, script);
        assert_eq!(
            r, "-ERR Script killed by redcloak: exceeded the script time limit (200 ms)\r\n",
            "{script}"
        );
        assert!(
            start.elapsed() < std::time::Duration::from_secs(3),
            "{script}"
        );
        assert_eq!(eval(&mut e, &mut b, "return 1 + 1"), ":2\r\n");
    }
}

#[test]
fn memory_limit_ends_the_script_with_a_clear_error() {
    let mut e = Engine::new(Limits {
        memory_limit: 32 * 1024 * 1024,
        ..Limits::default()
    });
    let mut b = MemBackend::default();
    let r = eval(
        &mut e,
        &mut b,
        "local t = {} for i = 1, 1e8 do t[i] = string.rep('x', 100) .. i end return #t",
    );
    assert_eq!(
        r,
        "-ERR Script killed by redcloak: exceeded the script memory limit (33554432 bytes)\r\n"
    );
    let r = eval(
        &mut e,
        &mut b,
        "local s = string.rep('x', 64 * 1024 * 1024) return #s",
    );
    assert!(
        r.starts_with("-ERR Script killed by redcloak: exceeded the script memory limit"),
        "{r}"
    );
    // The state is still usable and the garbage is gone.
    assert_eq!(
        eval(&mut e, &mut b, "return #string.rep('x', 1000)"),
        ":1000\r\n"
    );
}

#[test]
fn script_cache_load_exists_flush() {
    let mut e = Engine::new(Limits::default());
    let mut b = MemBackend::default();
    let sha = e.script_load(b"return 'cached'").expect("load");
    assert_eq!(sha.len(), 40);
    let opts = RunOptions::default();
    assert_eq!(
        enc(&e.eval_sha(sha.as_bytes(), &[], &[], opts, &mut b)),
        "$6\r\ncached\r\n"
    );
    assert_eq!(
        enc(&e.eval_sha(sha.to_uppercase().as_bytes(), &[], &[], opts, &mut b)),
        "$6\r\ncached\r\n"
    );
    assert_eq!(
        e.script_exists(&[Bytes::from(sha.clone()), Bytes::from_static(b"nope")]),
        vec![true, false]
    );
    // EVAL caches too, under the SHA1 of the body.
    eval(&mut e, &mut b, "return 2");
    let sha2 = redcloak_sha1("return 2");
    assert_eq!(
        enc(&e.eval_sha(sha2.as_bytes(), &[], &[], opts, &mut b)),
        ":2\r\n"
    );
    e.script_flush();
    assert_eq!(
        enc(&e.eval_sha(sha.as_bytes(), &[], &[], opts, &mut b)),
        "-NOSCRIPT No matching script. Please use EVAL.\r\n"
    );
    assert_eq!(e.script_exists(&[Bytes::from(sha)]), vec![false]);
    assert!(e.script_load(b"return (").is_err());
    assert_eq!(e.script_count(), 0);
}

fn redcloak_sha1(s: &str) -> String {
    let mut e = Engine::new(Limits::default());
    e.script_load(s.as_bytes()).expect("load")
}

#[test]
fn state_is_reused_after_errors() {
    let mut e = Engine::new(Limits::default());
    let mut b = MemBackend::default();
    for _ in 0..3 {
        assert!(eval(&mut e, &mut b, "error('boom')").starts_with("-ERR user_script:1: boom"));
        assert!(
            eval(&mut e, &mut b, "return x").starts_with("-ERR user_script:1: Script attempted")
        );
        assert!(eval(&mut e, &mut b, "return (").starts_with("-ERR Error compiling script"));
        assert!(eval(&mut e, &mut b, "return redis.call('nosuch')")
            .starts_with("-ERR Unknown Redis command"));
        assert_eq!(
            eval(
                &mut e,
                &mut b,
                "redis.setresp(3) return redis.call('incr', 'c')"
            ),
            ":1\r\n".replace(
                '1',
                &b.data
                    .get(&Bytes::from_static(b"c"))
                    .map_or("1".into(), |v| String::from_utf8_lossy(v).into_owned())
            )
        );
    }
    // setresp does not leak from one run into the next
    assert_eq!(
        eval(&mut e, &mut b, "redis.setresp(3) return true"),
        ":1\r\n"
    );
    assert_eq!(eval(&mut e, &mut b, "return true"), ":1\r\n");
    assert_eq!(eval(&mut e, &mut b, "return false"), "$-1\r\n");
}

#[test]
fn keys_argv_and_logs() {
    let mut e = Engine::new(Limits::default());
    let mut b = MemBackend::default();
    let r = e.eval(
        b"redis.log(redis.LOG_NOTICE, 'set', KEYS[1]) return redis.call('set', KEYS[1], ARGV[1])",
        &[Bytes::from_static(b"k")],
        &[Bytes::from_static(b"v")],
        RunOptions::default(),
        &mut b,
    );
    assert_eq!(enc(&r), "+OK\r\n");
    assert_eq!(
        b.data.get(&Bytes::from_static(b"k")),
        Some(&Bytes::from_static(b"v"))
    );
    assert_eq!(b.logs, vec![(LogLevel::Notice, b"set k".to_vec())]);
    // read-only runs refuse writes before they reach the backend
    let r = e.eval(
        b"return redis.call('set', 'k', 'w')",
        &[],
        &[],
        RunOptions {
            client_resp: 2,
            read_only: true,
        },
        &mut b,
    );
    assert!(enc(&r).starts_with("-ERR Write commands are not allowed from read-only scripts."));
    assert_eq!(
        b.data.get(&Bytes::from_static(b"k")),
        Some(&Bytes::from_static(b"v"))
    );
}

#[test]
fn functions_dump_restore_round_trip() {
    use redcloak_script::RestorePolicy;
    let mut e = Engine::new(Limits::default());
    let mut b = MemBackend::default();
    let lib = b"#!lua name=mylib\nredis.register_function('hello', function(keys, args) return 'hi ' .. args[1] end)";
    assert_eq!(e.function_load(lib, false), Ok("mylib".to_owned()));
    let dump = e.function_dump();
    e.function_flush();
    let opts = RunOptions::default();
    assert_eq!(
        enc(&e.fcall(b"hello", &[], &[Bytes::from_static(b"x")], opts, &mut b)),
        "-ERR Function not found\r\n"
    );
    assert_eq!(
        enc(&e.function_restore(&dump, RestorePolicy::Append)),
        "+OK\r\n"
    );
    assert_eq!(
        enc(&e.fcall(b"hello", &[], &[Bytes::from_static(b"x")], opts, &mut b)),
        "$4\r\nhi x\r\n"
    );
    assert_eq!(
        enc(&e.function_restore(&dump, RestorePolicy::Append)),
        "-ERR Library mylib already exists\r\n"
    );
    assert_eq!(
        enc(&e.function_restore(&dump, RestorePolicy::Replace)),
        "+OK\r\n"
    );
    assert_eq!(
        enc(&e.function_restore(&dump, RestorePolicy::Flush)),
        "+OK\r\n"
    );
    assert_eq!(
        enc(&e.function_restore(b"garbage", RestorePolicy::Append)),
        "-ERR DUMP payload version or checksum are wrong\r\n"
    );
    let mut bad = dump.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(
        enc(&e.function_restore(&bad, RestorePolicy::Flush)),
        "-ERR DUMP payload version or checksum are wrong\r\n"
    );
    // nothing changed by the failed restores
    assert_eq!(e.libraries_code(), vec![("mylib".to_owned(), lib.to_vec())]);
}

/// Behaviours that differ from Redis on purpose (docs/scripting.md, "Differences from
/// Redis"): what redcloak answers instead.
#[test]
fn documented_differences() {
    let mut e = Engine::new(Limits::default());
    let mut b = MemBackend::default();
    // Redis 7.0.15 crashes on an error table without `err`.
    assert_eq!(
        eval(&mut e, &mut b, "error({})"),
        "-ERR Error running script: the error object has no 'err' field\r\n"
    );
    // Redis sends a broken reply for a self-referencing table; we stop at 256 levels.
    assert_eq!(
        eval(&mut e, &mut b, "local t = {} t[1] = t return t"),
        "-ERR reached lua stack limit\r\n"
    );
    let deep = eval(
        &mut e,
        &mut b,
        "local t = {} local c = t for i = 1, 255 do c[1] = {} c = c[1] end return t",
    );
    assert!(deep.starts_with("*1\r\n*1\r\n"), "{deep}");
    // A runaway script is ended (Redis only starts accepting SCRIPT KILL).
    let mut short = Engine::new(Limits {
        time_limit: std::time::Duration::from_millis(50),
        ..Limits::default()
    });
    assert_eq!(
        eval(
            &mut short,
            &mut b,
            "local i = 0 while true do i = i + 1 end"
        ),
        "-ERR Script killed by redcloak: exceeded the script time limit (50 ms)\r\n"
    );
    // FUNCTION LOAD's redis.log lines have no backend to go to: accepted and dropped.
    assert_eq!(
        e.function_load(b"#!lua name=logs\nredis.log(redis.LOG_WARNING, 'at load') redis.register_function('f', function() redis.log(redis.LOG_WARNING, 'at run') return 1 end)", false),
        Ok("logs".to_owned())
    );
    assert!(b.logs.is_empty());
    e.fcall(b"f", &[], &[], RunOptions::default(), &mut b);
    assert_eq!(b.logs, vec![(LogLevel::Warning, b"at run".to_vec())]);
    // Library functions return at most 6000 strings or tables at once (Redis: up to its Lua
    // stack, 7999 values), so that mlua's reference stack cannot run out.
    let r = eval(
        &mut e,
        &mut b,
        "return select('#', cmsgpack.unpack(string.rep('\\161a', 7000)))",
    );
    assert!(
        r.starts_with("-ERR user_script:1: stack overflow (too many return values at once;"),
        "{r}"
    );
    let r = eval(
        &mut e,
        &mut b,
        "return select('#', struct.unpack(string.rep('c1', 7000), string.rep('x', 7000)))",
    );
    assert!(
        r.starts_with("-ERR user_script:1: stack overflow (too many results)"),
        "{r}"
    );
    // ... and at most 7900 values of any kind (Redis: 7999 and 7997).
    let r = eval(
        &mut e,
        &mut b,
        "return select('#', cmsgpack.unpack(string.rep('\\1', 7901)))",
    );
    assert!(
        r.starts_with("-ERR user_script:1: stack overflow (too many return values at once;"),
        "{r}"
    );
    let r = eval(
        &mut e,
        &mut b,
        "return select('#', struct.unpack(string.rep('b', 7901), string.rep('x', 7901)))",
    );
    assert!(
        r.starts_with("-ERR user_script:1: stack overflow (too many results)"),
        "{r}"
    );
    assert_eq!(
        eval(
            &mut e,
            &mut b,
            "return select('#', cmsgpack.unpack(string.rep('\\1', 7899)))"
        ),
        ":7899\r\n"
    );
}

#[test]
fn engine_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Engine>();
}

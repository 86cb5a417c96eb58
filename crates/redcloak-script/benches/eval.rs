//! EVAL cost with an in-memory backend: a trivial script, and a 3-call script (the shape of a
//! rate limiter: INCR, EXPIRE-like SET, GET).

use std::collections::HashMap;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use redcloak_commands::resp::Frame;
use redcloak_script::{Backend, CallContext, CommandInfo, Engine, Limits, LogLevel, RunOptions};

#[derive(Default)]
struct Mem {
    data: HashMap<Bytes, i64>,
}

impl Backend for Mem {
    fn command_info(&mut self, args: &[Bytes]) -> Option<CommandInfo> {
        let write = !args[0].eq_ignore_ascii_case(b"get");
        Some(CommandInfo {
            arity: -2,
            write,
            noscript: false,
        })
    }
    fn call(&mut self, args: &[Bytes], _ctx: &CallContext) -> Frame {
        if args[0].eq_ignore_ascii_case(b"incr") {
            let v = self.data.entry(args[1].clone()).or_insert(0);
            *v += 1;
            Frame::Integer(*v)
        } else if args[0].eq_ignore_ascii_case(b"get") {
            match self.data.get(&args[1]) {
                Some(v) => Frame::Bulk(Bytes::from(v.to_string())),
                None => Frame::NullBulk,
            }
        } else {
            Frame::Simple(Bytes::from_static(b"OK"))
        }
    }
    fn log(&mut self, _: LogLevel, _: &[u8]) {}
}

fn bench(c: &mut Criterion) {
    let mut engine = Engine::new(Limits::default());
    let mut backend = Mem::default();
    let opts = RunOptions::default();
    let trivial = b"return 1";
    c.bench_function("eval trivial", |b| {
        b.iter(|| engine.eval(trivial, &[], &[], opts, &mut backend))
    });
    let three = b"local n = redis.call('incr', KEYS[1]) redis.call('set', KEYS[2], ARGV[1]) return {n, redis.call('get', KEYS[1])}";
    let keys = [
        Bytes::from_static(b"rate:user"),
        Bytes::from_static(b"last:user"),
    ];
    let argv = [Bytes::from_static(b"1700000000")];
    c.bench_function("eval 3 calls", |b| {
        b.iter(|| engine.eval(three, &keys, &argv, opts, &mut backend))
    });
    let sha = engine.script_load(three).expect("load");
    c.bench_function("evalsha 3 calls", |b| {
        b.iter(|| engine.eval_sha(sha.as_bytes(), &keys, &argv, opts, &mut backend))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

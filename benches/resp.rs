//! RESP parsing: our bounded parser against redis-protocol 6 on the same bytes.
//!
//! - `request_set_144B`: a 144-byte `SET key:000000000001 <100 bytes>` request.
//! - `reply_bulk_108B`: a 108-byte bulk reply (`$100\r\n<100 bytes>\r\n`): finding its end
//!   ([`ReplyScanner`]), building it ([`Frame::parse`]), and redis-protocol's decoders.
//! - `reply_array_100`: a 100-element array of 10-byte bulks.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use redcloak_commands::resp::{
    write_array_len, write_bulk, Frame, Limits, ReplyScanner, RequestParser,
};

fn set_request() -> Bytes {
    let mut out = BytesMut::new();
    write_array_len(&mut out, 3);
    write_bulk(&mut out, b"SET");
    write_bulk(&mut out, b"key:000000000001");
    write_bulk(&mut out, &[b'v'; 100]);
    let out = out.freeze();
    assert_eq!(out.len(), 144);
    out
}

fn bulk_reply() -> Bytes {
    let mut out = BytesMut::new();
    write_bulk(&mut out, &[b'v'; 100]);
    let out = out.freeze();
    assert_eq!(out.len(), 108);
    out
}

fn array_reply() -> Bytes {
    let mut out = BytesMut::new();
    write_array_len(&mut out, 100);
    for i in 0..100 {
        write_bulk(&mut out, format!("value:{i:04}").as_bytes());
    }
    out.freeze()
}

fn request(c: &mut Criterion) {
    let input = set_request();
    let mut group = c.benchmark_group("request_set_144B");
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("redcloak RequestParser::parse", |b| {
        let mut parser = RequestParser::new(Limits::default());
        b.iter_batched_ref(
            || BytesMut::from(&input[..]),
            |buf| black_box(parser.parse(buf).unwrap().unwrap()),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("redis-protocol resp2 decode_bytes_mut", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&input[..]),
            |buf| {
                black_box(
                    redis_protocol::resp2::decode::decode_bytes_mut(buf)
                        .unwrap()
                        .unwrap(),
                )
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn replies(c: &mut Criterion, name: &str, input: Bytes) {
    let limits = Limits::default();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("redcloak ReplyScanner::scan", |b| {
        let mut scanner = ReplyScanner::new(limits);
        b.iter(|| black_box(scanner.scan(black_box(&input)).unwrap().unwrap()))
    });
    group.bench_function("redcloak Frame::parse", |b| {
        b.iter(|| black_box(Frame::parse(black_box(&input), &limits).unwrap().unwrap()))
    });
    group.bench_function("redis-protocol resp2 decode_bytes", |b| {
        b.iter(|| {
            black_box(
                redis_protocol::resp2::decode::decode_bytes(black_box(&input))
                    .unwrap()
                    .unwrap(),
            )
        })
    });
    group.bench_function("redis-protocol resp3 decode_bytes", |b| {
        b.iter(|| {
            black_box(
                redis_protocol::resp3::decode::complete::decode_bytes(black_box(&input))
                    .unwrap()
                    .unwrap(),
            )
        })
    });
    group.finish();
}

fn reply(c: &mut Criterion) {
    replies(c, "reply_bulk_108B", bulk_reply());
    replies(c, "reply_array_100", array_reply());
}

criterion_group!(benches, request, reply);
criterion_main!(benches);

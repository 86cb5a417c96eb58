//! Fernet encrypt / decrypt cost by value size: this runs on every write
//! (encrypt) and every read (decrypt) of an encrypted value.
//!
//! `decrypt_other/not_a_token` is the worst case for turning away a value that
//! is not a token (shaped like one up to its last characters), and
//! `decrypt_other/rotated` the cost of a token made by the second key of the ring
//! (the first key is tried and fails first).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use redcloak_crypto::KeyRing;

const KEY_A: &str = "CnoFYelOnLLksjp7Te1342ralzvooKpUtxSZFrasGxA=";
const KEY_B: &str = "ApHo_gwPKEDd59lgnwzd-Fy9eNhj6uJlpHxE3xRcXWs=";

const SIZES: [(usize, &str); 4] = [
    (16, "16B"),
    (100, "100B"),
    (1024, "1KiB"),
    (16 * 1024, "16KiB"),
];

fn value(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn encrypt(c: &mut Criterion) {
    let ring = KeyRing::parse(KEY_A).expect("test key");
    let mut group = c.benchmark_group("encrypt");
    for (len, name) in SIZES {
        let plaintext = value(len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &plaintext, |b, p| {
            b.iter(|| ring.encrypt(black_box(p)))
        });
    }
    group.finish();
}

fn decrypt(c: &mut Criterion) {
    let ring = KeyRing::parse(KEY_A).expect("test key");
    let mut group = c.benchmark_group("decrypt");
    for (len, name) in SIZES {
        let token = ring.encrypt(&value(len));
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &token, |b, t| {
            b.iter(|| ring.decrypt(black_box(t)).expect("own token"))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("decrypt_other");
    // Worst case for the shape check: token-like all the way to the end.
    let mut almost = ring.encrypt(&value(1024));
    let last = almost.len() - 5;
    almost[last] = b'!';
    group.bench_function("not_a_token/1KiB", |b| {
        b.iter(|| ring.decrypt(black_box(&almost)).unwrap_err())
    });
    let rotated = KeyRing::parse(&format!("{KEY_B},{KEY_A}")).expect("test keys");
    let old_token = ring.encrypt(&value(100));
    group.bench_function("rotated/100B", |b| {
        b.iter(|| rotated.decrypt(black_box(&old_token)).expect("old token"))
    });
    group.finish();
}

criterion_group!(benches, encrypt, decrypt);
criterion_main!(benches);

//! Quick timing of the hot paths (best of several runs, one thread):
//! `cargo run --release -p redcloak-crypto --example timing`.
//!
//! Not a criterion benchmark on purpose: it builds in seconds and prints one
//! table; the workspace's `benches/crypto.rs` is the criterion suite.

use std::hint::black_box;
use std::time::Instant;

use redcloak_crypto::{Binding, KeyRing, ValueFormat};
const KEY_A: &str = "CnoFYelOnLLksjp7Te1342ralzvooKpUtxSZFrasGxA=";

/// Best-of-15 nanoseconds per call of `f`.
fn ns_per_call(mut f: impl FnMut()) -> f64 {
    let iters = 10_000;
    for _ in 0..iters / 4 {
        f();
    }
    (0..15)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed().as_nanos() as f64 / iters as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn value(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn main() {
    let fernet_ring = KeyRing::parse(KEY_A).expect("test key");
    let gcm_ring = fernet_ring.clone().with_format(ValueFormat::AesGcm);
    let reference = fernet::Fernet::new(KEY_A).expect("test key");
    let binding = Binding::key(0, b"session:5f1c2a9e");
    println!("ns per call, best of 15 x 10k, one thread");
    println!("{:<44} {:>8} {:>8}", "operation", "100 B", "1 KiB");
    let row = |name: &str, f: &dyn Fn(&[u8]) -> f64| {
        println!(
            "{name:<44} {:>8.0} {:>8.0}",
            f(&value(100)),
            f(&value(1024))
        );
    };
    row("fernet crate 0.2.2: encrypt (getrandom IV)", &|p| {
        ns_per_call(|| {
            black_box(reference.encrypt_at_time(black_box(p), 1_700_000_000));
        })
    });
    row("fernet crate 0.2.2: decrypt_at_time", &|p| {
        let t = reference.encrypt_at_time(p, 1_700_000_000);
        ns_per_call(|| {
            black_box(
                reference
                    .decrypt_at_time(black_box(&t), None, 1_700_000_000)
                    .unwrap(),
            );
        })
    });
    row("fernet: encrypt (-> Vec)", &|p| {
        ns_per_call(|| {
            black_box(fernet_ring.encrypt_value(black_box(p), &binding));
        })
    });
    row("fernet: encrypt_value_into (reused buffer)", &|p| {
        let mut out = vec![0u8; fernet_ring.encrypted_len(p.len())];
        ns_per_call(|| {
            fernet_ring.encrypt_value_into(black_box(p), &binding, &mut out);
            black_box(&out);
        })
    });
    row("fernet: decrypt_value", &|p| {
        let t = fernet_ring.encrypt_value(p, &binding);
        ns_per_call(|| {
            black_box(fernet_ring.decrypt_value(black_box(&t), &binding).unwrap());
        })
    });
    row("fernet: decrypt_value, 2nd key of the ring", &|p| {
        let rotated = KeyRing::parse(&format!(
            "{},{KEY_A}",
            "ApHo_gwPKEDd59lgnwzd-Fy9eNhj6uJlpHxE3xRcXWs="
        ))
        .expect("test keys");
        let t = fernet_ring.encrypt_value(p, &binding);
        ns_per_call(|| {
            black_box(rotated.decrypt_value(black_box(&t), &binding).unwrap());
        })
    });
    row("aes-gcm: encrypt (-> Vec)", &|p| {
        ns_per_call(|| {
            black_box(gcm_ring.encrypt_value(black_box(p), &binding));
        })
    });
    row("aes-gcm: encrypt_value_into (reused buffer)", &|p| {
        let mut out = vec![0u8; gcm_ring.encrypted_len(p.len())];
        ns_per_call(|| {
            gcm_ring.encrypt_value_into(black_box(p), &binding, &mut out);
            black_box(&out);
        })
    });
    row("aes-gcm: decrypt_value", &|p| {
        let t = gcm_ring.encrypt_value(p, &binding);
        ns_per_call(|| {
            black_box(gcm_ring.decrypt_value(black_box(&t), &binding).unwrap());
        })
    });
    row("aes-gcm: decrypt_value, wrong binding", &|p| {
        let t = gcm_ring.encrypt_value(p, &binding);
        let elsewhere = Binding::key(0, b"session:other");
        ns_per_call(|| {
            black_box(
                gcm_ring
                    .decrypt_value(black_box(&t), &elsewhere)
                    .unwrap_err(),
            );
        })
    });

    println!();
    println!(
        "{:<44} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "member", "1 B", "8 B", "16 B", "36 B", "64 B"
    );
    let sizes = [1, 8, 16, 36, 64];
    let members: Vec<Vec<u8>> = sizes.iter().map(|&n| value(n)).collect();
    let line = |name: &str, f: &dyn Fn(&[u8]) -> String| {
        let cells: Vec<String> = members.iter().map(|m| format!("{:>8}", f(m))).collect();
        println!("{name:<44} {}", cells.join(" "));
    };
    line("stored bytes", &|m| {
        fernet_ring.encrypt_member(m).len().to_string()
    });
    line("overhead (bytes)", &|m| {
        (fernet_ring.encrypt_member(m).len() - m.len()).to_string()
    });
    line("fernet token of the same, for comparison", &|m| {
        fernet_ring.encrypt(m).len().to_string()
    });
    line("encrypt_member (ns)", &|m| {
        format!(
            "{:.0}",
            ns_per_call(|| {
                black_box(fernet_ring.encrypt_member(black_box(m)));
            })
        )
    });
    line("decrypt_member (ns)", &|m| {
        let c = fernet_ring.encrypt_member(m);
        format!(
            "{:.0}",
            ns_per_call(|| {
                black_box(fernet_ring.decrypt_member(black_box(&c)).unwrap());
            })
        )
    });
}

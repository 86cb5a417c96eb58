//! Helpers shared by the fuzz targets: a fixed test key ring, a small deterministic generator
//! driven by the input, and the table's rows.
#![forbid(unsafe_code)]

use redcloak_commands::table::{self, CommandSpec};
use redcloak_crypto::KeyRing;

/// A fixed ring of two test keys (made from constant bytes at start-up: no key material in
/// the source). The second one only decrypts, as after a rotation.
pub fn ring() -> &'static KeyRing {
    static RING: std::sync::OnceLock<KeyRing> = std::sync::OnceLock::new();
    RING.get_or_init(|| {
        let key = |fill: u8| {
            let raw: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(7) ^ fill).collect();
            base64_url(&raw)
        };
        KeyRing::parse(&format!("{},{}", key(0x5a), key(0xa5))).expect("test key ring")
    })
}

/// Url-safe base64 with padding (enough for 32-byte keys; no dependency).
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Every row of the table, subcommands included, with its container.
pub fn rows() -> &'static [(&'static CommandSpec, Option<&'static CommandSpec>)] {
    static ROWS: std::sync::OnceLock<Vec<(&'static CommandSpec, Option<&'static CommandSpec>)>> =
        std::sync::OnceLock::new();
    ROWS.get_or_init(|| {
        let mut rows = Vec::new();
        for spec in table::all() {
            rows.push((spec, None));
            for sub in spec.subcommands {
                rows.push((sub, Some(spec)));
            }
        }
        rows
    })
}

/// Reads choices off the front of the input.
pub struct Input<'a>(pub &'a [u8]);

impl<'a> Input<'a> {
    /// One byte (0 when the input is used up).
    pub fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    /// A number below `n` (from two bytes).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (usize::from(self.byte()) << 8 | usize::from(self.byte())) % n
    }

    /// Whatever is left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }
}

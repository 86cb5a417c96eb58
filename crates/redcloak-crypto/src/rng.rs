//! Fast random bytes for IVs and nonces: one AES-256-CTR generator per thread
//! with fast key erasure, seeded (and periodically reseeded) from the OS.
//!
//! # Why not the OS for every nonce
//!
//! A `getrandom` syscall costs ~350 ns here, as much as the AES-GCM
//! encryption of a 1 KiB value; every write needs a fresh IV or nonce.
//!
//! # Construction
//!
//! The "fast-key-erasure" generator (D. J. Bernstein, 2017; what OpenBSD's
//! `arc4random` does with ChaCha20), here with AES-256, which has hardware
//! support on every CPU redcloak targets and is already compiled in:
//!
//! - state: one 256-bit key `k` (as an expanded AES key schedule);
//! - refill: `AES_k(0) ‖ AES_k(1) ‖ … ‖ AES_k(31)` (512 bytes); the first
//!   32 bytes become the next key and are wiped at once, the other 480 are
//!   handed out front to back, and each byte is wiped as it is handed out;
//! - so a later compromise of the thread's memory reveals neither the bytes
//!   already handed out nor the keys that produced them (backtracking
//!   resistance);
//! - seeded from `getrandom` on first use in a thread, and reseeded (fresh OS
//!   bytes XORed into the next key) after every [`RESEED_AFTER_BYTES`] bytes,
//!   so a leaked state stops predicting output after at most that much.
//!
//! Output is indistinguishable from random as long as AES-256 is a PRP; each
//! key produces only 32 blocks, far below any distinguishing bound.
//!
//! # Fork safety
//!
//! Not handled, by choice: redcloak is a daemon that does not `fork` after it
//! starts threads, and checking the process id on every call would cost a
//! syscall again. A process that forks and encrypts in both parent and child
//! with a thread state inherited across the fork would repeat nonces: do not
//! embed this crate in such a program without reseeding in the child.

use std::cell::RefCell;

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes256;
use zeroize::Zeroize;

/// Blocks per refill.
const BLOCKS: usize = 32;
/// Bytes per refill.
const BUF_LEN: usize = BLOCKS * 16;
/// The next key's size, taken from the front of each refill.
const KEY_LEN: usize = 32;
/// Fresh OS entropy is mixed in after this many bytes of output.
pub(crate) const RESEED_AFTER_BYTES: u64 = 1 << 20;

struct Generator {
    /// Keyed with the current key; `aes` zeroizes its schedule on drop.
    cipher: Aes256,
    /// Unused output is `buf[pos..]`; everything before `pos` is zero.
    buf: [u8; BUF_LEN],
    pos: usize,
    /// Output since the last (re)seed.
    since_seed: u64,
}

impl Generator {
    fn seeded() -> Generator {
        let mut key = [0u8; KEY_LEN];
        os_random(&mut key);
        let cipher = Aes256::new(GenericArray::from_slice(&key));
        key.zeroize();
        let mut generator = Generator {
            cipher,
            buf: [0; BUF_LEN],
            pos: BUF_LEN,
            since_seed: 0,
        };
        generator.refill();
        generator
    }

    /// Fills the buffer from the current key and moves to the next key.
    fn refill(&mut self) {
        let mut blocks = [GenericArray::default(); BLOCKS];
        for (i, block) in blocks.iter_mut().enumerate() {
            block[..8].copy_from_slice(&(i as u64).to_le_bytes());
        }
        self.cipher.encrypt_blocks(&mut blocks);
        for (chunk, block) in self.buf.chunks_exact_mut(16).zip(blocks.iter_mut()) {
            chunk.copy_from_slice(block);
            block.zeroize();
        }
        let mut next = [0u8; KEY_LEN];
        next.copy_from_slice(&self.buf[..KEY_LEN]);
        self.buf[..KEY_LEN].zeroize();
        if self.since_seed >= RESEED_AFTER_BYTES {
            let mut fresh = [0u8; KEY_LEN];
            os_random(&mut fresh);
            for (k, f) in next.iter_mut().zip(fresh.iter()) {
                *k ^= f;
            }
            fresh.zeroize();
            self.since_seed = 0;
        }
        self.cipher = Aes256::new(GenericArray::from_slice(&next));
        next.zeroize();
        self.pos = KEY_LEN;
    }

    fn fill(&mut self, mut out: &mut [u8]) {
        while !out.is_empty() {
            if self.pos == BUF_LEN {
                self.refill();
            }
            let n = out.len().min(BUF_LEN - self.pos);
            let (now, rest) = out.split_at_mut(n);
            let taken = &mut self.buf[self.pos..self.pos + n];
            now.copy_from_slice(taken);
            taken.zeroize();
            self.pos += n;
            self.since_seed += n as u64;
            out = rest;
        }
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

thread_local! {
    static GENERATOR: RefCell<Option<Generator>> = const { RefCell::new(None) };
}

/// Fills `out` with cryptographically secure random bytes from this thread's
/// generator (seeded from the OS on first use).
///
/// # Panics
///
/// If the operating system's random number generator fails while seeding or
/// reseeding; continuing without randomness would be unsafe.
pub(crate) fn fill(out: &mut [u8]) {
    let filled = GENERATOR.try_with(|cell| {
        let mut generator = cell.borrow_mut();
        generator.get_or_insert_with(Generator::seeded).fill(out);
    });
    if filled.is_err() {
        // Called from another thread-local's destructor after this one was
        // torn down: fall back to the OS.
        os_random(out);
    }
}

/// Bytes straight from the operating system (for keys, and to seed [`fill`]).
///
/// # Panics
///
/// If the operating system's random number generator fails.
pub(crate) fn os_random(out: &mut [u8]) {
    getrandom::getrandom(out).expect("the operating system's random number generator failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_differ_and_look_random() {
        let mut a = [0u8; 4096];
        let mut b = [0u8; 4096];
        fill(&mut a);
        fill(&mut b);
        assert_ne!(a, b);
        // Crude sanity: every byte value shows up, no long runs of zeros.
        let mut seen = [false; 256];
        for &x in a.iter().chain(b.iter()) {
            seen[x as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert!(!a.windows(8).any(|w| w == [0; 8]));
    }

    #[test]
    fn odd_sizes_cross_refills_without_repeating() {
        let mut generator = Generator::seeded();
        let mut seen = std::collections::HashSet::new();
        for len in [1, 12, 16, 479, 480, 481, 1000, 12] {
            let mut out = vec![0u8; len];
            generator.fill(&mut out);
            if len >= 12 {
                assert!(seen.insert(out[..12].to_vec()), "repeat at len {len}");
            }
        }
    }

    #[test]
    fn used_bytes_and_next_key_are_wiped() {
        let mut generator = Generator::seeded();
        let mut out = [0u8; 100];
        generator.fill(&mut out);
        assert!(generator.buf[..generator.pos].iter().all(|&b| b == 0));
        assert_eq!(generator.pos, KEY_LEN + 100);
    }

    #[test]
    fn reseeds_after_the_limit() {
        let mut generator = Generator::seeded();
        let mut sink = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        let mut reseeded = false;
        while total < RESEED_AFTER_BYTES + 2 * BUF_LEN as u64 {
            let before = generator.since_seed;
            generator.fill(&mut sink);
            total += sink.len() as u64;
            reseeded |= generator.since_seed < before;
        }
        assert!(reseeded);
    }

    #[test]
    fn threads_get_distinct_streams() {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    let mut out = [0u8; 16];
                    fill(&mut out);
                    out
                })
            })
            .collect();
        let outs: std::collections::HashSet<_> =
            handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(outs.len(), 4);
    }
}

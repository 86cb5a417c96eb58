//! The key-bound AES-256-GCM value envelope, and the [`Binding`] that ties a
//! value to where it lives.
//!
//! ```text
//! offset  size  field
//! 0       1     version 0xC1 (never valid UTF-8, never base64: no Fernet token starts with it)
//! 1       4     key id (KeyId::to_bytes of the ring key)
//! 5       12    nonce (random)
//! 17      n     AES-256-GCM ciphertext (n = plaintext length)
//! 17+n    16    GCM tag
//! 33+n    4     origin check (below)
//! ```
//!
//! Associated data (never stored; rebuilt from the binding on every read):
//!
//! ```text
//! 0x1d ‖ "redcloak/v1/value/aes-256-gcm"   label, length-prefixed
//! 0xC1 ‖ key id (4)                        the envelope header
//! db (u32 BE)
//! len(key) (u64 BE) ‖ key
//! 0x00                                     no field (a string, a list element)
//!   or 0x01 ‖ len(field) (u64 BE) ‖ field  a hash field's or stream entry field's value
//! ```
//!
//! Every part is fixed-size or length-prefixed and the field is tagged, so
//! two different bindings never encode to the same bytes.
//!
//! # Why the origin check
//!
//! GCM alone cannot tell "opened under the wrong binding" from "modified":
//! both are a tag mismatch. The origin check is a 2-block CBC-MAC (a PRF on
//! fixed-length input) under a key derived from the same ring key:
//!
//! ```text
//! check = AES-256(origin key, AES-256(origin key, tag) XOR (key id ‖ nonce))[0..4]
//! ```
//!
//! When GCM fails but the check holds, the key id, nonce and tag are ones
//! this ring key produced: the envelope is genuine and was bound elsewhere
//! ([`DecryptError::Binding`]); otherwise it was modified
//! ([`DecryptError::Tampered`]). The check does not cover the ciphertext
//! body (that would cost a second pass over the value), so a body modified
//! in place also reads as `Binding`. It is a diagnosis for honest failures,
//! not a defence: GCM, with the binding as associated data, alone decides
//! whether a value opens, and someone who can write to Redis can pick which
//! of the two refusals he gets, never an acceptance.

use std::fmt;

use aes::cipher::generic_array::GenericArray;
use aes::cipher::BlockEncrypt;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use subtle::ConstantTimeEq;

use crate::keys::{RingKey, LABEL_VALUE_GCM};
use crate::{rng, DecryptError, KeyId, Plaintext};

/// First byte of every envelope.
pub(crate) const VERSION: u8 = 0xC1;
const HEADER: usize = 1 + 4;
const NONCE: usize = 12;
const TAG: usize = 16;
const CHECK: usize = 4;
/// Bytes an envelope adds to its plaintext.
pub(crate) const OVERHEAD: usize = HEADER + NONCE + TAG + CHECK;
/// Associated data up to this size is built on the stack.
const AAD_STACK: usize = 256;

/// Where a value lives in Redis: what an AES-GCM envelope is bound to.
///
/// A value written under one binding opens only under the same binding: not
/// under another key name, another database, another hash field, nor as a
/// string when it was a hash field (or the reverse). Fernet tokens ignore it.
///
/// For values that are not in a field (strings, list elements), `field` is
/// `None`; a hash field's or a stream entry field's value has its field.
///
/// # Security
///
/// `Debug` shows the database and lengths, not the key or field names
/// (redcloak logs never carry arguments).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Binding<'a> {
    /// The logical database (`SELECT` index).
    pub db: u32,
    /// The Redis key name.
    pub key: &'a [u8],
    /// The field name, for a hash field's or stream entry field's value.
    pub field: Option<&'a [u8]>,
}

impl<'a> Binding<'a> {
    /// A value stored directly under `key` in database `db`.
    pub fn key(db: u32, key: &'a [u8]) -> Binding<'a> {
        Binding {
            db,
            key,
            field: None,
        }
    }

    /// The value of hash field `field` of `key` in database `db`.
    pub fn field(db: u32, key: &'a [u8], field: &'a [u8]) -> Binding<'a> {
        Binding {
            db,
            key,
            field: Some(field),
        }
    }

    /// Length of the associated data for this binding.
    fn aad_len(&self) -> usize {
        1 + LABEL_VALUE_GCM.len()
            + HEADER
            + 4
            + 8
            + self.key.len()
            + 1
            + self.field.map_or(0, |f| 8 + f.len())
    }

    /// Writes the associated data into `out` (exactly [`Self::aad_len`] long).
    fn encode_aad(&self, header: &[u8; HEADER], out: &mut [u8]) {
        let mut w = Writer(out);
        w.put(&[LABEL_VALUE_GCM.len() as u8]);
        w.put(LABEL_VALUE_GCM);
        w.put(header);
        w.put(&self.db.to_be_bytes());
        w.put(&(self.key.len() as u64).to_be_bytes());
        w.put(self.key);
        match self.field {
            None => w.put(&[0]),
            Some(field) => {
                w.put(&[1]);
                w.put(&(field.len() as u64).to_be_bytes());
                w.put(field);
            }
        }
        debug_assert!(w.0.is_empty());
    }

    /// Runs `f` with the associated data, on the stack when it is small.
    fn with_aad<R>(&self, header: &[u8; HEADER], f: impl FnOnce(&[u8]) -> R) -> R {
        let len = self.aad_len();
        if len <= AAD_STACK {
            let mut buf = [0u8; AAD_STACK];
            self.encode_aad(header, &mut buf[..len]);
            f(&buf[..len])
        } else {
            let mut buf = vec![0u8; len];
            self.encode_aad(header, &mut buf);
            f(&buf)
        }
    }
}

impl fmt::Debug for Binding<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Binding")
            .field("db", &self.db)
            .field("key_len", &self.key.len())
            .field("field_len", &self.field.map(<[u8]>::len))
            .finish()
    }
}

struct Writer<'a>(&'a mut [u8]);

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let (head, tail) = std::mem::take(&mut self.0).split_at_mut(bytes.len());
        head.copy_from_slice(bytes);
        self.0 = tail;
    }
}

fn header(id: KeyId) -> [u8; HEADER] {
    let [a, b, c, d] = id.to_bytes();
    [VERSION, a, b, c, d]
}

/// ring's key for one call (ring does not zeroize its key schedules, so none
/// is kept).
fn gcm_key(key: &RingKey) -> LessSafeKey {
    let unbound =
        UnboundKey::new(&AES_256_GCM, &key.value_key[..]).expect("AES-256-GCM takes 32 bytes");
    LessSafeKey::new(unbound)
}

/// The origin check of an envelope, from its key id and nonce
/// (`stored[1..17]`) and its tag.
fn origin_check(key: &RingKey, id_and_nonce: &[u8], tag: &[u8]) -> [u8; CHECK] {
    let mut block = GenericArray::clone_from_slice(tag);
    key.origin.encrypt_block(&mut block);
    for (b, x) in block.iter_mut().zip(id_and_nonce) {
        *b ^= x;
    }
    key.origin.encrypt_block(&mut block);
    [block[0], block[1], block[2], block[3]]
}

/// Writes the envelope of `plain` into `out`, which must be exactly
/// `plain.len() + OVERHEAD` bytes long.
pub(crate) fn seal_into(key: &RingKey, plain: &[u8], binding: &Binding<'_>, out: &mut [u8]) {
    assert_eq!(out.len(), plain.len() + OVERHEAD, "output size");
    let header = header(key.id);
    let mut nonce = [0u8; NONCE];
    rng::fill(&mut nonce);
    out[..HEADER].copy_from_slice(&header);
    out[HEADER..HEADER + NONCE].copy_from_slice(&nonce);
    let (body, trailer) = out[HEADER + NONCE..].split_at_mut(plain.len());
    body.copy_from_slice(plain);
    let tag = binding.with_aad(&header, |aad| {
        gcm_key(key)
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), body)
            .expect("GCM seals anything under 64 GiB")
    });
    let (tag_out, check_out) = trailer.split_at_mut(TAG);
    tag_out.copy_from_slice(tag.as_ref());
    let mut id_and_nonce = [0u8; 4 + NONCE];
    id_and_nonce[..4].copy_from_slice(&header[1..]);
    id_and_nonce[4..].copy_from_slice(&nonce);
    check_out.copy_from_slice(&origin_check(key, &id_and_nonce, tag.as_ref()));
}

/// The key id of a value shaped like an envelope.
pub(crate) fn key_id(stored: &[u8]) -> Option<KeyId> {
    if stored.len() < OVERHEAD || stored[0] != VERSION {
        return None;
    }
    Some(KeyId::from_bytes([
        stored[1], stored[2], stored[3], stored[4],
    ]))
}

/// Opens an envelope with the ring key(s) its key id names.
pub(crate) fn open(
    keys: &[RingKey],
    stored: &[u8],
    binding: &Binding<'_>,
) -> Result<(Plaintext, KeyId), DecryptError> {
    let id = key_id(stored).ok_or(DecryptError::NotAToken)?;
    let mut header = [0u8; HEADER];
    header.copy_from_slice(&stored[..HEADER]);
    let mut nonce = [0u8; NONCE];
    nonce.copy_from_slice(&stored[HEADER..HEADER + NONCE]);
    let body_end = stored.len() - TAG - CHECK;
    let ciphertext = &stored[HEADER + NONCE..body_end];
    let tag: [u8; TAG] = stored[body_end..body_end + TAG]
        .try_into()
        .expect("TAG bytes");
    let check = &stored[body_end + TAG..];

    let mut candidates = keys.iter().filter(|key| key.id == id).peekable();
    if candidates.peek().is_none() {
        return Err(DecryptError::NoMatchingKey);
    }
    let mut genuine = false;
    let mut plaintext = Plaintext::with_capacity(ciphertext.len());
    for key in candidates {
        let buf = plaintext.vec_mut();
        buf.clear();
        buf.extend_from_slice(ciphertext);
        let opened = binding.with_aad(&header, |aad| {
            gcm_key(key)
                .open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    aead::Tag::from(tag),
                    &mut buf[..],
                    0..,
                )
                .is_ok()
        });
        let check_holds =
            bool::from(origin_check(key, &stored[1..HEADER + NONCE], &tag).ct_eq(check));
        if opened {
            // The check is part of the envelope: one that was altered is
            // refused even though GCM opens it (no malleable bytes).
            return if check_holds {
                Ok((plaintext, key.id))
            } else {
                Err(DecryptError::Tampered)
            };
        }
        genuine |= check_holds;
    }
    Err(if genuine {
        DecryptError::Binding
    } else {
        DecryptError::Tampered
    })
}

/// The id of the ring key that made this envelope, judged by its origin
/// check (no binding needed, nothing decrypted).
pub(crate) fn identify(keys: &[RingKey], stored: &[u8]) -> Option<KeyId> {
    let id = key_id(stored)?;
    let body_end = stored.len() - TAG - CHECK;
    let tag = &stored[body_end..body_end + TAG];
    let check = &stored[body_end + TAG..];
    keys.iter()
        .filter(|key| key.id == id)
        .any(|key| bool::from(origin_check(key, &stored[1..HEADER + NONCE], tag).ct_eq(check)))
        .then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aad(binding: &Binding<'_>) -> Vec<u8> {
        binding.with_aad(&[VERSION, 1, 2, 3, 4], <[u8]>::to_vec)
    }

    #[test]
    fn aad_layout_is_as_documented() {
        let a = aad(&Binding::field(3, b"user:1", b"email"));
        let mut expected = vec![29];
        expected.extend_from_slice(b"redcloak/v1/value/aes-256-gcm");
        expected.extend_from_slice(&[0xC1, 1, 2, 3, 4]);
        expected.extend_from_slice(&[0, 0, 0, 3]);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 6]);
        expected.extend_from_slice(b"user:1");
        expected.push(1);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 5]);
        expected.extend_from_slice(b"email");
        assert_eq!(a, expected);
    }

    #[test]
    fn aad_is_injective_on_tricky_pairs() {
        let pairs = [
            (Binding::key(0, b"ab"), Binding::field(0, b"a", b"b")),
            (
                Binding::field(0, b"a", b"bc"),
                Binding::field(0, b"ab", b"c"),
            ),
            (Binding::key(0, b""), Binding::field(0, b"", b"")),
            (Binding::key(1, b"k"), Binding::key(256, b"k")),
            (Binding::key(0, b"k\x00"), Binding::field(0, b"k", b"")),
        ];
        for (x, y) in pairs {
            assert_ne!(aad(&x), aad(&y), "{x:?} vs {y:?}");
        }
    }

    #[test]
    fn long_bindings_use_the_heap_path() {
        let long = vec![b'k'; 1000];
        let b = Binding::key(0, &long);
        assert!(b.aad_len() > AAD_STACK);
        assert_eq!(aad(&b).len(), b.aad_len());
    }

    #[test]
    fn debug_hides_names() {
        let shown = format!("{:?}", Binding::field(2, b"secret-key", b"secret-field"));
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("db: 2"), "{shown}");
    }
}

//! [`KeyRing`]: the configured keys, newest first, and every way a value is
//! encrypted and decrypted with them.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::envelope::{self, Binding};
use crate::keys::RingKey;
use crate::token::URL_SAFE_ANY_PAD;
use crate::{
    fernet, member, token, DecryptError, KeyId, KeyRingError, ParseFormatError, Plaintext,
};

/// The format new values are written in. Reads accept every format,
/// whatever this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ValueFormat {
    /// Fernet tokens (the default): interoperable with Python's
    /// `cryptography.fernet`; not bound to where the value lives.
    #[default]
    Fernet,
    /// The compact AES-256-GCM envelope, bound to the value's database, key
    /// and hash field (see [`Binding`]).
    AesGcm,
}

impl ValueFormat {
    /// The configuration name: `fernet` or `aes-gcm`.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueFormat::Fernet => "fernet",
            ValueFormat::AesGcm => "aes-gcm",
        }
    }
}

impl fmt::Display for ValueFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ValueFormat {
    type Err = ParseFormatError;

    /// `fernet` or `aes-gcm` (ASCII case-insensitive, surrounding whitespace
    /// ignored).
    fn from_str(s: &str) -> Result<ValueFormat, ParseFormatError> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("fernet") {
            Ok(ValueFormat::Fernet)
        } else if s.eq_ignore_ascii_case("aes-gcm") {
            Ok(ValueFormat::AesGcm)
        } else {
            Err(ParseFormatError)
        }
    }
}

/// A decrypted value and what it says about itself.
///
/// `Debug` shows the plaintext's length, never its bytes.
#[non_exhaustive]
pub struct Opened {
    /// The plaintext; wiped when dropped.
    pub plaintext: Plaintext,
    /// The ring key that opened it.
    pub key_id: KeyId,
    /// The format it was stored in.
    pub format: ValueFormat,
    /// For a Fernet token, its timestamp (Unix seconds, as the writer's clock
    /// had it; authenticated, never checked against this clock).
    pub timestamp: Option<u64>,
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("plaintext_len", &self.plaintext.len())
            .field("key_id", &self.key_id)
            .field("format", &self.format)
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

/// A decrypted member.
///
/// `Debug` shows the plaintext's length, never its bytes.
#[non_exhaustive]
pub struct OpenedMember {
    /// The member; wiped when dropped.
    pub plaintext: Plaintext,
    /// The ring key that opened it (not the primary key: re-encrypt it).
    pub key_id: KeyId,
}

impl fmt::Debug for OpenedMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedMember")
            .field("plaintext_len", &self.plaintext.len())
            .field("key_id", &self.key_id)
            .finish()
    }
}

/// What a stored value's header says, read without any key (see
/// [`inspect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Inspected {
    /// The value's format.
    pub format: ValueFormat,
    /// The key id an AES-GCM envelope names (Fernet tokens carry none; see
    /// [`KeyRing::identify`]). Not authenticated by `inspect`.
    pub key_id: Option<KeyId>,
    /// A Fernet token's timestamp (Unix seconds). Not authenticated by
    /// `inspect`.
    pub timestamp: Option<u64>,
}

/// Sorts a stored value by format from its first bytes, without decrypting:
/// for tooling (`rewrap --dry-run` counts values per format and key id).
/// `None` for anything that is neither a Fernet token nor an AES-GCM
/// envelope (including member ciphertexts: see [`inspect_member`]).
///
/// Nothing it returns is authenticated: anyone can write a value that looks
/// like a token. [`KeyRing::identify`] checks with the keys.
pub fn inspect(stored: &[u8]) -> Option<Inspected> {
    match stored.first()? {
        b'g' => token::classify(stored).ok().map(|timestamp| Inspected {
            format: ValueFormat::Fernet,
            key_id: None,
            timestamp: Some(timestamp),
        }),
        &envelope::VERSION => envelope::key_id(stored).map(|id| Inspected {
            format: ValueFormat::AesGcm,
            key_id: Some(id),
            timestamp: None,
        }),
        _ => None,
    }
}

/// The key id a member ciphertext names, if `stored` is shaped like one
/// (not authenticated).
pub fn inspect_member(stored: &[u8]) -> Option<KeyId> {
    member::key_id(stored)
}

/// The key ring: the first key encrypts, every key decrypts (rotation without
/// downtime), in every format.
///
/// To rotate, put the new key first and keep the old one after it
/// (`NEW,OLD`); once every value has been rewritten, drop `OLD`.
///
/// Cloning is cheap (the keys are shared, not copied).
///
/// # Formats
///
/// - values: [`ValueFormat::Fernet`] tokens (the default) or
///   [`ValueFormat::AesGcm`] envelopes bound to a [`Binding`]; the ring's
///   [`format`](KeyRing::format) is what [`encrypt_value`](KeyRing::encrypt_value)
///   writes, and [`decrypt_value`](KeyRing::decrypt_value) reads both;
/// - members: deterministic AES-SIV ([`encrypt_member`](KeyRing::encrypt_member)).
///
/// `docs/encryption.md` describes every format byte by byte.
///
/// # Security
///
/// - `Debug` prints only [`KeyId`]s, never key material.
/// - Key material zeroizes itself on drop (raw bytes in `Zeroizing`, AES key
///   schedules through the `aes` crate's `zeroize` feature); the decoded
///   bytes used while parsing are zeroized too.
/// - Every read authenticates before it returns anything. Timestamps are not
///   checked against the clock: stored values have no age.
#[derive(Clone)]
pub struct KeyRing {
    keys: Arc<[RingKey]>,
    ids: Arc<[KeyId]>,
    format: ValueFormat,
}

impl KeyRing {
    /// Parses a comma-separated list of Fernet keys (the
    /// `REDIS_ENCRYPTION_KEY` format): whitespace around keys is trimmed,
    /// empty entries (e.g. a trailing comma) are rejected. Each must be a
    /// valid Fernet key: url-safe base64 of 32 bytes, padded as Python's
    /// `Fernet.generate_key()` prints it, or unpadded. Duplicates are
    /// rejected.
    ///
    /// Errors name the key's position (1-based), never its value. The ring
    /// writes [`ValueFormat::Fernet`]; see [`KeyRing::with_format`].
    pub fn parse(list: &str) -> Result<KeyRing, KeyRingError> {
        if list.trim().is_empty() {
            return Err(KeyRingError::Empty);
        }
        let entries = list.split(',').map(str::trim).enumerate().map(|(i, e)| {
            if e.is_empty() {
                Err(KeyRingError::EmptyEntry { position: i + 1 })
            } else {
                Ok(e)
            }
        });
        KeyRing::from_entries(entries)
    }

    /// Parses the contents of a key file (`REDIS_ENCRYPTION_KEY_FILE`): one
    /// key per line, newest first. Blank lines and everything from a `#` to
    /// the end of its line are ignored (`#` is not in the base64 alphabet);
    /// a line may also hold a comma-separated list, and empty entries are
    /// skipped, as `redcloak-config` reads the file today.
    ///
    /// Errors name a key by its position among the keys (1-based), never by
    /// its value.
    pub fn parse_file(contents: &str) -> Result<KeyRing, KeyRingError> {
        let mut entries = contents
            .lines()
            .map(|line| line.split('#').next().unwrap_or_default())
            .flat_map(|line| line.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(Ok)
            .peekable();
        if entries.peek().is_none() {
            return Err(KeyRingError::Empty);
        }
        KeyRing::from_entries(entries)
    }

    fn from_entries<'a>(
        entries: impl Iterator<Item = Result<&'a str, KeyRingError>>,
    ) -> Result<KeyRing, KeyRingError> {
        let mut raws: Vec<Zeroizing<[u8; 32]>> = Vec::new();
        let mut keys = Vec::new();
        for (index, entry) in entries.enumerate() {
            let position = index + 1;
            let raw = decode_key(entry?).ok_or(KeyRingError::Invalid { position })?;
            if let Some(first) = raws.iter().position(|seen| **seen == *raw) {
                return Err(KeyRingError::Duplicate {
                    first: first + 1,
                    second: position,
                });
            }
            keys.push(RingKey::new(&raw));
            raws.push(raw);
        }
        let ids = keys.iter().map(|k| k.id).collect();
        Ok(KeyRing {
            keys: keys.into(),
            ids,
            format: ValueFormat::Fernet,
        })
    }

    /// The same keys, writing new values in `format`.
    #[must_use]
    pub fn with_format(mut self, format: ValueFormat) -> KeyRing {
        self.format = format;
        self
    }

    /// The format [`encrypt_value`](KeyRing::encrypt_value) writes.
    pub fn format(&self) -> ValueFormat {
        self.format
    }

    fn primary(&self) -> &RingKey {
        // `from_entries` is only reached with at least one entry.
        &self.keys[0]
    }

    // === values ===

    /// Encrypts a value with the primary key in the ring's format. Fernet
    /// ignores `binding`; an AES-GCM envelope opens only under the same
    /// binding.
    ///
    /// # Panics
    ///
    /// If the operating system's random number generator fails (see
    /// [`KeyRing::encrypt`]).
    pub fn encrypt_value(&self, plaintext: &[u8], binding: &Binding<'_>) -> Vec<u8> {
        let mut out = vec![0u8; self.encrypted_len(plaintext.len())];
        self.encrypt_value_into(plaintext, binding, &mut out);
        out
    }

    /// Exactly how many bytes [`encrypt_value`](KeyRing::encrypt_value)
    /// writes for `plain_len` bytes in the ring's format: Fernet
    /// `4·⌈(73 + 16·⌊n/16⌋)/3⌉`, AES-GCM `n + 37`.
    pub fn encrypted_len(&self, plain_len: usize) -> usize {
        match self.format {
            ValueFormat::Fernet => fernet::token_len(plain_len),
            ValueFormat::AesGcm => plain_len + envelope::OVERHEAD,
        }
    }

    /// [`encrypt_value`](KeyRing::encrypt_value) into a caller's buffer (e.g.
    /// the tail of the proxy's output `BytesMut`, after `resize`), without
    /// allocating the result.
    ///
    /// # Panics
    ///
    /// If `out.len()` is not [`encrypted_len`](KeyRing::encrypted_len)`(plaintext.len())`,
    /// or if the OS random number generator fails.
    pub fn encrypt_value_into(&self, plaintext: &[u8], binding: &Binding<'_>, out: &mut [u8]) {
        match self.format {
            ValueFormat::Fernet => fernet::encrypt_into(self.primary(), plaintext, unix_now(), out),
            ValueFormat::AesGcm => envelope::seal_into(self.primary(), plaintext, binding, out),
        }
    }

    /// Decrypts a stored value in either format, whatever the ring's write
    /// format: a Fernet token with whichever key authenticates it (primary
    /// first), an AES-GCM envelope with the key its key id names, under
    /// `binding`.
    ///
    /// Errors: [`DecryptError::NotAToken`] (neither format),
    /// [`DecryptError::NoMatchingKey`], [`DecryptError::Binding`] (a genuine
    /// envelope for another location), [`DecryptError::Tampered`].
    pub fn decrypt_value(
        &self,
        stored: &[u8],
        binding: &Binding<'_>,
    ) -> Result<Opened, DecryptError> {
        match stored.first() {
            Some(&envelope::VERSION) => {
                let (plaintext, key_id) = envelope::open(&self.keys, stored, binding)?;
                Ok(Opened {
                    plaintext,
                    key_id,
                    format: ValueFormat::AesGcm,
                    timestamp: None,
                })
            }
            _ => {
                let opened = fernet::decrypt(&self.keys, stored)?;
                Ok(Opened {
                    plaintext: opened.plaintext,
                    key_id: opened.key_id,
                    format: ValueFormat::Fernet,
                    timestamp: Some(opened.timestamp),
                })
            }
        }
    }

    /// Which ring key made a stored value, checked with the keys but without
    /// decrypting or knowing its binding: for a Fernet token, the first key
    /// whose HMAC matches; for an envelope, the key its key id names if the
    /// origin check holds. `None` if no ring key made it (or it is neither
    /// format).
    pub fn identify(&self, stored: &[u8]) -> Option<KeyId> {
        match stored.first()? {
            &envelope::VERSION => envelope::identify(&self.keys, stored),
            _ => fernet::identify(&self.keys, stored),
        }
    }

    // === members ===

    /// Encrypts a set / sorted-set / geo / HyperLogLog member with the
    /// primary key, deterministically: the same member always gives the same
    /// bytes under the same key, and different members give different bytes.
    /// Not bound to a Redis key (members move between keys).
    pub fn encrypt_member(&self, plaintext: &[u8]) -> Vec<u8> {
        member::encrypt(self.primary(), plaintext)
    }

    /// The member's ciphertext under every key of the ring, primary first:
    /// during a rotation a member may be stored under any of them, so look
    /// each up (`SMISMEMBER key c1 c2 …`, `ZMSCORE`) until re-encryption is
    /// done.
    pub fn member_candidates(&self, plaintext: &[u8]) -> Vec<Vec<u8>> {
        self.keys
            .iter()
            .map(|key| member::encrypt(key, plaintext))
            .collect()
    }

    /// Decrypts a member ciphertext with the key its key id names.
    ///
    /// Errors: [`DecryptError::NotAToken`] (not a member ciphertext, e.g. a
    /// Fernet token or a plaintext member), [`DecryptError::NoMatchingKey`],
    /// [`DecryptError::Tampered`].
    pub fn decrypt_member(&self, stored: &[u8]) -> Result<OpenedMember, DecryptError> {
        let (plaintext, key_id) = member::decrypt(&self.keys, stored)?;
        Ok(OpenedMember { plaintext, key_id })
    }

    // === the original Fernet-only API ===

    /// Encrypts `plaintext` as a Fernet token with the primary (first) key,
    /// whatever the ring's format. Returns the token's ASCII bytes, which
    /// Python's `Fernet(key).decrypt` accepts.
    ///
    /// # Panics
    ///
    /// If the operating system's random number generator fails (seeding the
    /// IV generator); continuing without randomness would be unsafe.
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; fernet::token_len(plaintext.len())];
        fernet::encrypt_into(self.primary(), plaintext, unix_now(), &mut out);
        out
    }

    /// Decrypts a stored Fernet token with whichever key opens it, trying the
    /// primary key first. Any timestamp is accepted (stored values have no
    /// age); a forged or modified token is not.
    ///
    /// Values that are not shaped like a token are rejected as
    /// [`DecryptError::NotAToken`] before any key is tried; that includes
    /// AES-GCM envelopes, which need their binding:
    /// use [`decrypt_value`](KeyRing::decrypt_value).
    pub fn decrypt(&self, stored: &[u8]) -> Result<Vec<u8>, DecryptError> {
        Ok(fernet::decrypt(&self.keys, stored)?.plaintext.into_vec())
    }

    /// Non-secret fingerprints of the keys, primary first.
    pub fn key_ids(&self) -> &[KeyId] {
        &self.ids
    }

    /// Number of keys (at least 1).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Always `false`: [`KeyRing::parse`] refuses an empty list.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("keys", &self.ids)
            .field("format", &self.format)
            .finish()
    }
}

/// The raw 32 bytes of one key, or `None` if it is not url-safe base64 of
/// exactly 32 bytes (padding optional, but canonical if present).
fn decode_key(entry: &str) -> Option<Zeroizing<[u8; 32]>> {
    // Room for one byte too many, so an over-long key is an error rather than
    // a truncation. A 32-byte key is at most 44 characters.
    if entry.len() > 44 {
        return None;
    }
    let mut buf = Zeroizing::new([0u8; 33]);
    let len = URL_SAFE_ANY_PAD.decode_slice(entry, &mut buf[..]).ok()?;
    if len != 32 {
        return None;
    }
    let mut raw = Zeroizing::new([0u8; 32]);
    raw.copy_from_slice(&buf[..32]);
    Some(raw)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

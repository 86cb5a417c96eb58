//! The store: a bounded shadow copy of recently written or read string values, and
//! the journal of writes accepted while Redis is unreachable.
//!
//! # Security
//! The shadow cache holds ciphertext exactly as Redis holds it (Fernet tokens), never
//! plaintext; values are decrypted only to answer a client. The journal holds the commands
//! that will be sent to Redis, with their values already encrypted.
//!
//! # Consistency
//! Entries are kept coherent with what *this* redcloak writes: every write through it
//! updates, marks absent or forgets the keys it touches (before it is sent, so an outcome
//! that is never learned cannot leave a stale entry). Writes made to Redis by other clients
//! are not seen; during an outage reads are therefore *stale-if-error*.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use redcloak_config::{FallbackConfig, Recovery};

use super::shadow::{EntryRef, Shadow};

/// When a key expires, as far as redcloak knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ttl {
    /// Learned from a read: Redis may have a TTL redcloak never saw.
    Unknown,
    /// No expiry.
    Persistent,
    /// Expires at this Unix time, in milliseconds.
    At(u64),
}

/// What redcloak knows about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The stored ciphertext; `None` means the key is known not to exist.
    pub value: Option<Bytes>,
    /// Its expiry.
    pub ttl: Ttl,
}

impl Entry {
    /// A key known not to exist.
    pub const ABSENT: Entry = Entry {
        value: None,
        ttl: Ttl::Persistent,
    };

    /// The entry as seen at `now_ms`: a value past its expiry is absent.
    pub fn at(&self, now_ms: u64) -> Option<&Bytes> {
        match self.ttl {
            Ttl::At(at) if at <= now_ms => None,
            _ => self.value.as_ref(),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A write accepted during an outage, as it will be sent to Redis.
#[derive(Debug, Clone)]
pub(crate) struct JournalEntry {
    pub db: u32,
    pub args: Vec<Bytes>,
    bytes: usize,
}

/// Why a write was not journaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JournalError {
    /// The journal holds as many entries or bytes as configured.
    Full { entries: usize },
    /// Redis is back: the write must go to Redis instead.
    Recovered,
    /// Journaling is turned off (`journal_max_entries = 0`).
    Disabled,
}

#[derive(Debug, Default)]
struct Journal {
    entries: VecDeque<JournalEntry>,
    bytes: usize,
    /// Set while the outage lasts; cleared (under the same lock) when the journal has been
    /// drained into Redis, so no write can slip in between the last replay and the switch.
    open: bool,
}

/// The shadow cache and the journal.
pub(crate) struct Fallback {
    shadow: Option<Shadow>,
    journal: Mutex<Journal>,
    config: FallbackConfig,
}

impl std::fmt::Debug for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fallback")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Fallback {
    pub fn new(config: FallbackConfig) -> Fallback {
        let shadow = (config.cache_bytes > 0).then(|| Shadow::new(config.cache_bytes));
        Fallback {
            shadow,
            journal: Mutex::new(Journal::default()),
            config,
        }
    }

    pub fn config(&self) -> &FallbackConfig {
        &self.config
    }

    // === shadow ===

    /// What is known about a key (`None`: nothing), copied out of the cache.
    pub fn lookup(&self, db: u32, key: &[u8]) -> Option<Entry> {
        self.shadow.as_ref()?.get(db, key, now_ms())
    }

    /// Records what a key holds now (key and value are copied into the cache: they may be
    /// slices of a connection's buffer, which the cache must not keep alive).
    pub fn record(&self, db: u32, key: &[u8], entry: &Entry) {
        if let Some(shadow) = &self.shadow {
            shadow.insert(db, key, EntryRef::of(entry), now_ms());
        }
    }

    /// Records a value read from Redis (TTL unknown unless the same value was known).
    pub fn record_read(&self, db: u32, key: &[u8], value: Option<&[u8]>) {
        let Some(shadow) = &self.shadow else { return };
        // One step under the key's lock: a concurrent write cannot slip in between.
        shadow.update(db, key, now_ms(), |old| {
            let ttl = match (old, value) {
                // Already known: nothing to write (the common case of repeated reads).
                (Some(old), v) if old.value == v => return None,
                (_, None) => Ttl::Persistent,
                _ => Ttl::Unknown,
            };
            Some(EntryRef { value, ttl })
        });
    }

    /// Changes the expiry of a key known to hold a value.
    pub fn set_ttl(&self, db: u32, key: &[u8], ttl: Ttl) {
        if let Some(shadow) = &self.shadow {
            shadow.set_ttl(db, key, ttl, now_ms());
        }
    }

    /// Forgets a key.
    pub fn forget(&self, db: u32, key: &[u8]) {
        if let Some(shadow) = &self.shadow {
            shadow.remove(db, key);
        }
    }

    /// Forgets everything (FLUSHDB, FLUSHALL, SWAPDB, writes whose keys are unknown).
    pub fn forget_all(&self) {
        if let Some(shadow) = &self.shadow {
            shadow.clear();
        }
    }

    /// Bytes the shadow cache holds against its budget.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn shadow_bytes(&self) -> u64 {
        self.shadow.as_ref().map_or(0, |s| s.bytes() as u64)
    }

    // === journal ===

    /// Opens the journal for an outage (idempotent).
    pub fn open_journal(&self) {
        self.lock().open = true;
    }

    /// Appends a write made during the outage.
    pub fn journal(&self, db: u32, args: Vec<Bytes>) -> Result<(), JournalError> {
        if self.config.journal_max_entries == 0 {
            return Err(JournalError::Disabled);
        }
        let bytes = args.iter().map(Bytes::len).sum::<usize>() + 16 * args.len();
        let mut j = self.lock();
        if !j.open {
            return Err(JournalError::Recovered);
        }
        if j.entries.len() >= self.config.journal_max_entries
            || j.bytes + bytes > self.config.journal_max_bytes
        {
            return Err(JournalError::Full {
                entries: j.entries.len(),
            });
        }
        j.bytes += bytes;
        j.entries.push_back(JournalEntry { db, args, bytes });
        Ok(())
    }

    /// Entries waiting to be replayed.
    pub fn journal_len(&self) -> usize {
        self.lock().entries.len()
    }

    /// The oldest `max` entries, without removing them (they go only once Redis acknowledged).
    pub fn peek_journal(&self, max: usize) -> Vec<JournalEntry> {
        self.lock().entries.iter().take(max).cloned().collect()
    }

    /// Removes the `n` oldest entries (acknowledged by Redis).
    pub fn ack_journal(&self, n: usize) {
        let mut j = self.lock();
        for _ in 0..n {
            if let Some(e) = j.entries.pop_front() {
                j.bytes -= e.bytes;
            }
        }
    }

    /// Closes the journal if it is empty (atomically with the check). Returns whether it did.
    pub fn close_journal_if_empty(&self) -> bool {
        let mut j = self.lock();
        if j.entries.is_empty() {
            j.open = false;
            true
        } else {
            false
        }
    }

    /// The `invalidate` recovery: drops every journaled write and forgets the keys they
    /// touched. Returns how many writes were dropped.
    pub fn discard_journal(&self) -> usize {
        let mut j = self.lock();
        let dropped = j.entries.len();
        for e in j.entries.drain(..) {
            if let Some(key) = e.args.get(1) {
                self.forget(e.db, key);
            }
        }
        j.bytes = 0;
        dropped
    }

    pub fn recovery(&self) -> Recovery {
        self.config.recovery
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Journal> {
        // A panic while holding the lock leaves plain data behind; keep going with it.
        self.journal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn expired_entries_read_as_absent_and_ttl_follows_the_value() {
        let f = Fallback::new(FallbackConfig::default());
        let now = now_ms();
        f.record(
            0,
            b"k",
            &Entry {
                value: Some(b("t1")),
                ttl: Ttl::At(now + 60_000),
            },
        );
        assert_eq!(f.lookup(0, &b("k")).unwrap().at(now), Some(&b("t1")));
        assert_eq!(f.lookup(0, &b("k")).unwrap().at(now + 60_000), None);
        assert!(f.lookup(1, &b("k")).is_none(), "databases are separate");
        f.record_read(0, b"k", Some(b"t1"));
        assert_eq!(
            f.lookup(0, &b("k")).unwrap().ttl,
            Ttl::At(now + 60_000),
            "same value keeps its TTL"
        );
        f.record_read(0, b"k", Some(b"t2"));
        assert_eq!(f.lookup(0, &b("k")).unwrap().ttl, Ttl::Unknown);
        f.forget(0, &b("k"));
        assert!(f.lookup(0, &b("k")).is_none());
    }

    #[test]
    fn the_shadow_is_bounded_by_bytes() {
        let f = Fallback::new(FallbackConfig {
            cache_bytes: 64 * 1024,
            ..FallbackConfig::default()
        });
        for i in 0..1000 {
            f.record(
                0,
                format!("key{i}").as_bytes(),
                &Entry {
                    value: Some(Bytes::from(vec![b'x'; 1000])),
                    ttl: Ttl::Persistent,
                },
            );
        }
        assert!(f.shadow_bytes() <= 64 * 1024, "{} bytes", f.shadow_bytes());
    }

    #[test]
    fn the_journal_is_bounded_ordered_and_closes_only_when_empty() {
        let f = Fallback::new(FallbackConfig {
            journal_max_entries: 3,
            ..FallbackConfig::default()
        });
        assert_eq!(
            f.journal(0, vec![b("DEL"), b("a")]),
            Err(JournalError::Recovered),
            "closed outside outages"
        );
        f.open_journal();
        for k in ["a", "b", "c"] {
            f.journal(0, vec![b("DEL"), b(k)]).unwrap();
        }
        assert_eq!(
            f.journal(0, vec![b("DEL"), b("d")]),
            Err(JournalError::Full { entries: 3 })
        );
        assert!(!f.close_journal_if_empty());
        let first = f.peek_journal(2);
        assert_eq!(
            first.iter().map(|e| e.args[1].clone()).collect::<Vec<_>>(),
            vec![b("a"), b("b")]
        );
        f.ack_journal(2);
        assert_eq!(f.journal_len(), 1);
        f.ack_journal(1);
        assert!(f.close_journal_if_empty());
        assert_eq!(
            f.journal(0, vec![b("DEL"), b("a")]),
            Err(JournalError::Recovered)
        );
    }
}

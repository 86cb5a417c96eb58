//! The shadow cache's map: bounded in bytes, sharded, cheap enough to update on every SET and
//! every GET.
//!
//! # Why not a general-purpose cache
//! Every SET and every first GET through redcloak updates this map, so its cost is paid on
//! the hot path of every client. moka (the cache used before) spent ~1.2 µs per insert and
//! ~0.9 µs per read on its concurrent bookkeeping (write-op channels, deques, timer wheels)
//! — measured as a quarter of redcloak's pipelined throughput (docs/performance.md). What the
//! fallback needs is much less: a byte bound, an eviction that keeps what was recently used,
//! and expiry that only has to be *correct on read*. So each shard is a `HashMap` behind a
//! `Mutex` held for a few hundred nanoseconds, with SIEVE eviction (Zhang et al., NSDI '24: a
//! CLOCK-like hand; an entry used since the hand last passed survives one more pass), which
//! keeps recently used entries as well as LRU does without moving anything on a hit.
//!
//! # Consistency
//! Every operation on a key happens under its shard's lock, so a read never sees half of an
//! update. An entry that cannot be kept (larger than a shard) removes the key's old entry:
//! the map may forget, never answer with an older value.
//!
//! # Expiry
//! Expiry is checked when an entry is read: a value past its TTL reads as absent
//! ([`Entry::at`]), and an entry [`EXPIRED_GRACE`] past it is dropped (the key becomes
//! unknown, as if never seen). The eviction hand drops such entries first. Memory stays
//! bounded by the byte budget whatever expires.

use std::collections::hash_map::{HashMap, RandomState};
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;

use super::store::{Entry, ShadowKey, Ttl};

/// How long an expired entry is kept (as "known absent") before it is dropped.
pub(crate) const EXPIRED_GRACE: Duration = Duration::from_secs(300);
/// Bookkeeping bytes counted per entry on top of key and value (map slot, slot, `Bytes`
/// headers and the two allocations' rounding).
pub(crate) const ENTRY_OVERHEAD: usize = 160;
/// Most shards; fewer for a small budget, so that one shard still holds a large value.
const MAX_SHARDS: usize = 16;
/// The smallest budget of one shard (when there is more than one).
const MIN_SHARD_BYTES: usize = 4 * 1024 * 1024;

/// A byte-bounded map from keys to [`Entry`]s.
pub(crate) struct Shadow {
    shards: Box<[Mutex<Shard>]>,
    /// Picks a key's shard (random per process: keys are chosen by applications).
    hasher: RandomState,
}

struct Shard {
    index: HashMap<ShadowKey, usize>,
    slots: Vec<Slot>,
    /// Empty slots, reused before the vector grows.
    free: Vec<usize>,
    /// The eviction hand: the slot it looks at next.
    hand: usize,
    bytes: usize,
    budget: usize,
}

#[derive(Default)]
struct Slot {
    /// `None`: an empty slot.
    key: Option<ShadowKey>,
    entry: Option<Entry>,
    weight: usize,
    /// Used since the hand last passed.
    visited: bool,
}

/// What an entry costs against the budget.
fn weight(key: &ShadowKey, entry: &Entry) -> usize {
    key.key.len() + entry.value.as_ref().map_or(0, Bytes::len) + ENTRY_OVERHEAD
}

/// Whether an entry is past its expiry by more than the grace (to be dropped).
fn stale(entry: &Entry, now_ms: u64) -> bool {
    match entry.ttl {
        Ttl::At(at) => at.saturating_add(EXPIRED_GRACE.as_millis() as u64) <= now_ms,
        _ => false,
    }
}

impl Shadow {
    /// A map holding at most `budget` bytes (keys, values and [`ENTRY_OVERHEAD`] each).
    pub fn new(budget: usize) -> Shadow {
        let n = (budget / MIN_SHARD_BYTES).clamp(1, MAX_SHARDS);
        let shards = (0..n)
            .map(|_| {
                Mutex::new(Shard {
                    index: HashMap::new(),
                    slots: Vec::new(),
                    free: Vec::new(),
                    hand: 0,
                    bytes: 0,
                    budget: budget / n,
                })
            })
            .collect();
        Shadow {
            shards,
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &ShadowKey) -> MutexGuard<'_, Shard> {
        let i = if self.shards.len() == 1 {
            0
        } else {
            (self.hasher.hash_one(key) as usize) % self.shards.len()
        };
        // A panic while holding the lock leaves a consistent map (every change is completed
        // before anything that could panic); keep going with it.
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// What is known about `key` at `now_ms` (`None`: nothing). Marks it used.
    pub fn get(&self, key: &ShadowKey, now_ms: u64) -> Option<Entry> {
        self.shard(key).get(key, now_ms).cloned()
    }

    /// Stores `entry` for `key`, replacing what was there. The key is copied into an
    /// allocation of its own only when it is new to the map (it usually is a slice of a
    /// connection's read buffer, which the map must not keep alive); the entry's value is
    /// stored as it is, so it must be its own allocation already.
    pub fn insert(&self, key: &ShadowKey, entry: Entry, now_ms: u64) {
        self.shard(key).insert(key, entry, now_ms);
    }

    /// Changes what is known about `key` in one step under its lock: `change` gets the
    /// current entry (`None`: unknown) and returns the entry to store (`None`: leave it as it
    /// is), stored as [`Shadow::insert`] stores it.
    pub fn update(
        &self,
        key: &ShadowKey,
        now_ms: u64,
        change: impl FnOnce(Option<&Entry>) -> Option<Entry>,
    ) {
        let mut shard = self.shard(key);
        if let Some(new) = change(shard.get(key, now_ms)) {
            shard.insert(key, new, now_ms);
        }
    }

    /// Forgets `key`.
    pub fn remove(&self, key: &ShadowKey) {
        self.shard(key).remove(key);
    }

    /// Forgets everything.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            let mut s = shard.lock().unwrap_or_else(PoisonError::into_inner);
            let budget = s.budget;
            *s = Shard {
                index: HashMap::new(),
                slots: Vec::new(),
                free: Vec::new(),
                hand: 0,
                bytes: 0,
                budget,
            };
        }
    }

    /// Bytes held, as counted against the budget.
    pub fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).bytes)
            .sum()
    }

    /// Entries held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).index.len())
            .sum()
    }
}

impl Shard {
    fn get(&mut self, key: &ShadowKey, now_ms: u64) -> Option<&Entry> {
        let i = *self.index.get(key)?;
        if self.slots[i]
            .entry
            .as_ref()
            .is_some_and(|e| stale(e, now_ms))
        {
            self.take(i);
            return None;
        }
        let slot = &mut self.slots[i];
        slot.visited = true;
        slot.entry.as_ref()
    }

    fn insert(&mut self, key: &ShadowKey, entry: Entry, now_ms: u64) {
        let w = weight(key, &entry);
        if w > self.budget {
            // Cannot be kept: the old entry must not stay behind as if it were current.
            self.remove(key);
            return;
        }
        if let Some(&i) = self.index.get(key) {
            // Known key (the common case of a SET): no copy of the key, no map change.
            let slot = &mut self.slots[i];
            self.bytes = self.bytes - slot.weight + w;
            slot.entry = Some(entry);
            slot.weight = w;
            slot.visited = true;
        } else {
            let key = ShadowKey {
                db: key.db,
                key: Bytes::copy_from_slice(&key.key),
            };
            let i = match self.free.pop() {
                Some(i) => i,
                None => {
                    self.slots.push(Slot::default());
                    self.slots.len() - 1
                }
            };
            self.slots[i] = Slot {
                key: Some(key.clone()),
                entry: Some(entry),
                weight: w,
                visited: false,
            };
            self.index.insert(key, i);
            self.bytes += w;
        }
        while self.bytes > self.budget {
            self.evict_one(now_ms);
        }
    }

    fn remove(&mut self, key: &ShadowKey) {
        if let Some(&i) = self.index.get(key) {
            self.take(i);
        }
    }

    /// Empties slot `i` (which holds an entry).
    fn take(&mut self, i: usize) {
        let slot = std::mem::take(&mut self.slots[i]);
        if let Some(key) = slot.key {
            self.index.remove(&key);
            self.bytes -= slot.weight;
            self.free.push(i);
        }
    }

    /// Moves the hand to the first entry not used since it last passed (clearing the marks it
    /// passes) or past its expiry, and drops it. Ends: after one turn every mark is clear.
    fn evict_one(&mut self, now_ms: u64) {
        loop {
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            let i = self.hand;
            self.hand += 1;
            let slot = &mut self.slots[i];
            let Some(entry) = &slot.entry else { continue };
            if slot.visited && !stale(entry, now_ms) {
                slot.visited = false;
                continue;
            }
            self.take(i);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> ShadowKey {
        ShadowKey {
            db: 0,
            key: Bytes::copy_from_slice(s.as_bytes()),
        }
    }

    fn value(n: usize) -> Entry {
        Entry {
            value: Some(Bytes::from(vec![b'v'; n])),
            ttl: Ttl::Persistent,
        }
    }

    #[test]
    fn the_budget_holds_whatever_is_written() {
        // One shard (a small budget) and sixteen (a large one); values of many sizes.
        for budget in [64 * 1024, 80 * 1024 * 1024] {
            let s = Shadow::new(budget);
            for i in 0..20_000usize {
                s.insert(&key(&format!("k{i}")), value(i % 5000), 0);
                assert!(s.bytes() <= budget || i % 1000 != 0);
            }
            assert!(s.bytes() <= budget, "{} > {budget}", s.bytes());
            assert!(s.len() > 0);
        }
    }

    #[test]
    fn recently_used_entries_survive_eviction() {
        // Room for about 40 entries of 1000 bytes.
        let s = Shadow::new(40 * (1000 + 3 + ENTRY_OVERHEAD));
        for i in 0..40 {
            s.insert(&key(&format!("k{i:02}")), value(1000), 0);
        }
        // Ten of them are read again and again while 400 new keys stream through.
        for i in 0..400 {
            for hot in 0..10 {
                assert!(
                    s.get(&key(&format!("k{hot:02}")), 0).is_some(),
                    "hot key k{hot:02} evicted after {i} inserts"
                );
            }
            s.insert(&key(&format!("n{i:03}")), value(1000), 0);
        }
        assert!(s.get(&key("k39"), 0).is_none(), "cold keys go first");
    }

    #[test]
    fn an_entry_too_large_to_keep_forgets_the_old_one() {
        let s = Shadow::new(4096);
        s.insert(&key("k"), value(10), 0);
        s.insert(&key("k"), value(5000), 0);
        assert_eq!(s.get(&key("k"), 0), None, "not the old value");
        assert_eq!(s.bytes(), 0);
    }

    #[test]
    fn expired_entries_are_dropped_after_the_grace_and_evicted_first() {
        let s = Shadow::new(3 * (1000 + 1 + ENTRY_OVERHEAD));
        let grace = EXPIRED_GRACE.as_millis() as u64;
        let expiring = Entry {
            ttl: Ttl::At(1000),
            ..value(1000)
        };
        s.insert(&key("e"), expiring.clone(), 0);
        // Past its TTL but within the grace: still known (as absent, by Entry::at).
        assert_eq!(s.get(&key("e"), 1000), Some(expiring.clone()));
        assert_eq!(
            s.get(&key("e"), 1000 + grace),
            None,
            "dropped after the grace"
        );
        assert_eq!(s.len(), 0);

        s.insert(&key("e"), expiring, 0);
        s.insert(&key("a"), value(1000), 0);
        s.insert(&key("b"), value(1000), 0);
        // Both used, "e" used too but stale: the next insert evicts "e".
        for k in ["a", "b", "e"] {
            s.get(&key(k), 0);
        }
        s.insert(&key("c"), value(1000), 1000 + grace);
        assert!(s.get(&key("a"), 0).is_some() && s.get(&key("b"), 0).is_some());
        assert!(s.get(&key("c"), 0).is_some());
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn updates_remove_and_clear_keep_the_count_exact() {
        let s = Shadow::new(1 << 20);
        s.insert(&key("a"), value(100), 0);
        s.insert(&key("a"), value(10), 0);
        assert_eq!(s.bytes(), 1 + 10 + ENTRY_OVERHEAD);
        s.update(&key("a"), 0, |old| {
            assert_eq!(old.and_then(|e| e.value.clone()).map(|v| v.len()), Some(10));
            Some(value(20))
        });
        assert_eq!(s.bytes(), 1 + 20 + ENTRY_OVERHEAD);
        s.update(&key("b"), 0, |old| {
            assert!(old.is_none());
            None
        });
        assert_eq!(s.len(), 1);
        s.remove(&key("a"));
        assert_eq!((s.len(), s.bytes()), (0, 0));
        s.insert(&key("a"), value(1), 0);
        s.insert(
            &ShadowKey {
                db: 1,
                key: Bytes::from_static(b"a"),
            },
            value(1),
            0,
        );
        assert_eq!(s.len(), 2, "databases are separate");
        s.clear();
        assert_eq!((s.len(), s.bytes()), (0, 0));
        assert!(s.get(&key("a"), 0).is_none());
    }

    #[test]
    fn a_new_key_is_copied_out_of_the_callers_buffer() {
        // The key arrives as a slice of a connection's read buffer: the map keeps its own copy
        // (the buffer may be reused and must not be kept alive by the cache).
        let s = Shadow::new(1 << 20);
        let buffer = Bytes::from(b"*2\r\n$3\r\nGET\r\n$4\r\nuser\r\n".to_vec());
        let k = ShadowKey {
            db: 0,
            key: buffer.slice(17..21),
        };
        s.insert(&k, value(5), 0);
        let shard = s.shard(&k);
        let stored = shard
            .slots
            .iter()
            .find_map(|slot| slot.key.as_ref())
            .unwrap();
        assert_eq!(&stored.key[..], b"user");
        let inside = buffer.as_ptr_range();
        assert!(
            !inside.contains(&stored.key.as_ptr()),
            "the key points into the buffer"
        );
    }
}

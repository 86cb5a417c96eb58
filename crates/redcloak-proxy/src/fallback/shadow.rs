//! The shadow cache's map: bounded in bytes, sharded, cheap enough to update on every SET and
//! every GET.
//!
//! # Why not a general-purpose cache
//! Every SET and every first GET through redcloak updates this map, so its cost is paid on
//! the hot path of every client. moka (the cache used before) spent ~1.2 µs per insert and
//! ~0.9 µs per read on its concurrent bookkeeping (write-op channels, deques, timer wheels)
//! — measured as a quarter of redcloak's pipelined throughput (docs/performance.md). A map of
//! `Bytes` entries (the next design) still paid the allocator for every new key and value:
//! long-lived allocations freed in random order are where glibc's malloc is slow
//! (docs/performance.md, "Where that cost is"). What the fallback needs is much less: a byte
//! bound, an eviction that keeps what was recently used, and expiry that only has to be
//! *correct on read*.
//!
//! # Layout
//! Each shard is one preallocated ring of bytes (a log) and a hash table of offsets into it,
//! behind one `Mutex`. An entry is one *record* in the ring — a 32-byte header (hash, TTL,
//! database, lengths, flags), the key and the value, padded to 8 bytes — appended at the
//! tail; nothing is allocated per entry. Eviction takes records from the head, first in,
//! first out, with SIEVE's second chance (Zhang et al., NSDI '24: an entry used since it was
//! last passed survives one more pass — here by moving its record to the tail), which keeps
//! recently used entries as well as LRU does without moving anything on a hit. An update of
//! the same size (a SET of a known key: Fernet tokens of equal-length values are equally
//! long) is written in place; any other update leaves the old record behind as dead bytes,
//! reclaimed when the head passes them.
//!
//! # Memory bound
//! The budget is the whole cost, not an estimate: each shard's ring takes 7/8 of the shard's
//! budget and the table at most the rest (the number of records is capped so that it cannot
//! grow past it). The ring is allocated zeroed and untouched, so the kernel gives it pages only
//! as records reach them: an idle cache costs no resident memory.
//!
//! # Consistency
//! Every operation on a key happens under its shard's lock, so a read never sees half of an
//! update. An entry that cannot be kept (larger than a shard's ring) removes the key's old
//! entry: the map may forget, never answer with an older value.
//!
//! # Expiry
//! Expiry is checked when an entry is read: a value past its TTL reads as absent
//! ([`Entry::at`]), and an entry [`EXPIRED_GRACE`] past it is dropped (the key becomes
//! unknown, as if never seen). Eviction drops such entries instead of giving them a second
//! chance. Memory stays bounded by the budget whatever expires.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use hashbrown::HashTable;

use super::store::{Entry, Ttl};

/// How long an expired entry is kept (as "known absent") before it is dropped.
pub(crate) const EXPIRED_GRACE: Duration = Duration::from_secs(300);
/// Most shards; fewer for a small budget, so that one shard still holds a large value.
const MAX_SHARDS: usize = 16;
/// The smallest budget of one shard (when there is more than one).
const MIN_SHARD_BYTES: usize = 4 * 1024 * 1024;
/// Records are 8-byte aligned; the table stores offsets in these units (a `u32` reaches
/// 32 GiB of ring).
const ALIGN: usize = 8;
/// The largest ring of one shard (what a `u32` offset in [`ALIGN`] units reaches).
const MAX_RING: usize = (u32::MAX as usize) * ALIGN;
/// Bytes of the table per record, at most: a `u32` and a control byte per bucket. hashbrown
/// keeps the bucket count a power of two and grows it while the records (not counting the
/// tombstones that removals leave) fill more than 7/16 of it, so there are fewer than 32/7
/// buckets per record: under 23 bytes.
const TABLE_BYTES_PER_RECORD: usize = 24;

/// The record header: where each field is.
const H_HASH: usize = 0;
const H_TTL: usize = 8;
const H_DB: usize = 16;
const H_KEY_LEN: usize = 20;
const H_VALUE_LEN: usize = 24;
const H_LIVE: usize = 28;
const H_TTL_KIND: usize = 29;
const H_VISITED: usize = 30;
const HEADER: usize = 32;
/// `H_VALUE_LEN` of a key known not to exist.
const ABSENT: u32 = u32::MAX;

/// What is known about a key, as the map holds it (borrowed from the ring).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryRef<'a> {
    /// The stored ciphertext; `None`: the key is known not to exist.
    pub value: Option<&'a [u8]>,
    pub ttl: Ttl,
}

impl<'a> EntryRef<'a> {
    /// A view of an owned entry.
    pub fn of(entry: &'a Entry) -> EntryRef<'a> {
        EntryRef {
            value: entry.value.as_deref(),
            ttl: entry.ttl,
        }
    }

    /// An owned copy.
    pub fn to_entry(self) -> Entry {
        Entry {
            value: self.value.map(Bytes::copy_from_slice),
            ttl: self.ttl,
        }
    }
}

/// Whether an entry is past its expiry by more than the grace (to be dropped).
fn stale(ttl: Ttl, now_ms: u64) -> bool {
    match ttl {
        Ttl::At(at) => at.saturating_add(EXPIRED_GRACE.as_millis() as u64) <= now_ms,
        _ => false,
    }
}

/// A record's size in the ring (`None`: a key or value too long to describe).
fn record_size(key: &[u8], value: Option<&[u8]>) -> Option<usize> {
    let value_len = value.map_or(0, <[u8]>::len);
    if key.len() >= ABSENT as usize || value_len >= ABSENT as usize {
        return None;
    }
    Some((HEADER + key.len() + value_len).next_multiple_of(ALIGN))
}

/// A byte-bounded map from (database, key) to entries.
pub(crate) struct Shadow {
    shards: Box<[Mutex<Shard>]>,
    /// Hashes keys (random per process: keys are chosen by applications). One hash per
    /// operation picks the shard (from its high half) and the table slot.
    hasher: RandomState,
}

impl Shadow {
    /// A map costing at most `budget` bytes (rings and tables).
    pub fn new(budget: usize) -> Shadow {
        let n = (budget / MIN_SHARD_BYTES).clamp(1, MAX_SHARDS);
        let shards = (0..n).map(|_| Mutex::new(Shard::new(budget / n))).collect();
        Shadow {
            shards,
            hasher: RandomState::new(),
        }
    }

    fn hash(&self, db: u32, key: &[u8]) -> u64 {
        self.hasher.hash_one((db, key))
    }

    fn shard(&self, hash: u64) -> MutexGuard<'_, Shard> {
        let i = ((hash >> 32) as usize) % self.shards.len();
        // A panic while holding the lock leaves a consistent map (every change is completed
        // before anything that could panic); keep going with it.
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// What is known about `key` at `now_ms` (`None`: nothing), copied out. Marks it used.
    pub fn get(&self, db: u32, key: &[u8], now_ms: u64) -> Option<Entry> {
        let hash = self.hash(db, key);
        let mut shard = self.shard(hash);
        let at = shard.get(hash, db, key, now_ms)?;
        Some(shard.entry(at).to_entry())
    }

    /// Stores `entry` for `key`, replacing what was there (both are copied into the ring).
    pub fn insert(&self, db: u32, key: &[u8], entry: EntryRef<'_>, now_ms: u64) {
        let hash = self.hash(db, key);
        self.shard(hash).insert(hash, db, key, entry, now_ms);
    }

    /// Changes what is known about `key` in one step under its lock: `change` gets the
    /// current entry (`None`: unknown) and returns the entry to store (`None`: leave it as it
    /// is).
    pub fn update<'v>(
        &self,
        db: u32,
        key: &[u8],
        now_ms: u64,
        change: impl FnOnce(Option<EntryRef<'_>>) -> Option<EntryRef<'v>>,
    ) {
        let hash = self.hash(db, key);
        let mut shard = self.shard(hash);
        let old = shard.get(hash, db, key, now_ms).map(|at| shard.entry(at));
        if let Some(new) = change(old) {
            shard.insert(hash, db, key, new, now_ms);
        }
    }

    /// Sets the expiry of a key known to hold a value (nothing otherwise).
    pub fn set_ttl(&self, db: u32, key: &[u8], ttl: Ttl, now_ms: u64) {
        let hash = self.hash(db, key);
        let mut shard = self.shard(hash);
        if let Some(at) = shard.get(hash, db, key, now_ms) {
            if shard.entry(at).value.is_some() {
                shard.write_ttl(at, ttl);
            }
        }
    }

    /// Forgets `key`.
    pub fn remove(&self, db: u32, key: &[u8]) {
        let hash = self.hash(db, key);
        let mut shard = self.shard(hash);
        if let Some(at) = shard.find(hash, db, key) {
            shard.kill(at);
        }
    }

    /// Forgets everything (the rings keep their pages: they are the budget).
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            shard.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }

    /// Bytes held against the budget: the rings' occupied part (records, dead records not yet
    /// reclaimed, the unused end of a wrapped ring) and the tables' allocations.
    pub fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(PoisonError::into_inner);
                s.used + s.table.allocation_size()
            })
            .sum()
    }

    /// Entries held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).table.len())
            .sum()
    }
}

/// One shard: a ring of records and a table of where they are.
struct Shard {
    /// Offsets of the live records, in [`ALIGN`] units, by their keys' hashes.
    table: HashTable<u32>,
    ring: Box<[u8]>,
    /// The oldest record (the next to be evicted).
    head: usize,
    /// Where the next record goes.
    tail: usize,
    /// Where the records before a wrap end (`ring.len()` when the ring has not wrapped).
    end: usize,
    /// Bytes from `head` to `tail`: records (live and dead) and the unused end of a wrap.
    used: usize,
    /// The most live records, so that the table stays within its share of the budget.
    max_records: usize,
}

fn read_u32(ring: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(ring[at..at + 4].try_into().expect("4 bytes"))
}

fn read_u64(ring: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(ring[at..at + 8].try_into().expect("8 bytes"))
}

/// The size of the record at `at`.
fn stored_size(ring: &[u8], at: usize) -> usize {
    let value_len = match read_u32(ring, at + H_VALUE_LEN) {
        ABSENT => 0,
        n => n as usize,
    };
    (HEADER + read_u32(ring, at + H_KEY_LEN) as usize + value_len).next_multiple_of(ALIGN)
}

/// Whether the record at `at` is the entry of `key` in `db`.
fn holds(ring: &[u8], at: usize, db: u32, key: &[u8]) -> bool {
    read_u32(ring, at + H_DB) == db
        && read_u32(ring, at + H_KEY_LEN) as usize == key.len()
        && &ring[at + HEADER..at + HEADER + key.len()] == key
}

impl Shard {
    fn new(budget: usize) -> Shard {
        let table_share = budget / 8;
        let ring_len = (budget - table_share).min(MAX_RING) / ALIGN * ALIGN;
        Shard {
            table: HashTable::new(),
            // Zeroed memory from the allocator is not touched until written: resident only
            // as far as records have reached.
            ring: vec![0; ring_len].into_boxed_slice(),
            head: 0,
            tail: 0,
            end: ring_len,
            used: 0,
            max_records: (table_share / TABLE_BYTES_PER_RECORD).max(1),
        }
    }

    fn find(&self, hash: u64, db: u32, key: &[u8]) -> Option<usize> {
        let ring = &self.ring;
        self.table
            .find(hash, |&slot| holds(ring, slot as usize * ALIGN, db, key))
            .map(|&slot| slot as usize * ALIGN)
    }

    fn ttl(&self, at: usize) -> Ttl {
        match self.ring[at + H_TTL_KIND] {
            0 => Ttl::Unknown,
            1 => Ttl::Persistent,
            _ => Ttl::At(read_u64(&self.ring, at + H_TTL)),
        }
    }

    /// The entry of the record at `at`.
    fn entry(&self, at: usize) -> EntryRef<'_> {
        let key_len = read_u32(&self.ring, at + H_KEY_LEN) as usize;
        let value = match read_u32(&self.ring, at + H_VALUE_LEN) {
            ABSENT => None,
            n => {
                let from = at + HEADER + key_len;
                Some(&self.ring[from..from + n as usize])
            }
        };
        EntryRef {
            value,
            ttl: self.ttl(at),
        }
    }

    /// The live record of `key`, if any and not stale; marks it used.
    fn get(&mut self, hash: u64, db: u32, key: &[u8], now_ms: u64) -> Option<usize> {
        let at = self.find(hash, db, key)?;
        if stale(self.ttl(at), now_ms) {
            self.kill(at);
            return None;
        }
        self.ring[at + H_VISITED] = 1;
        Some(at)
    }

    fn write_ttl(&mut self, at: usize, ttl: Ttl) {
        let (kind, at_ms) = match ttl {
            Ttl::Unknown => (0, 0),
            Ttl::Persistent => (1, 0),
            Ttl::At(ms) => (2, ms),
        };
        self.ring[at + H_TTL_KIND] = kind;
        self.ring[at + H_TTL..at + H_TTL + 8].copy_from_slice(&at_ms.to_le_bytes());
    }

    /// Writes a whole record at `at`.
    fn write(&mut self, at: usize, hash: u64, db: u32, key: &[u8], entry: EntryRef<'_>) {
        let r = &mut self.ring;
        r[at + H_HASH..at + H_HASH + 8].copy_from_slice(&hash.to_le_bytes());
        r[at + H_DB..at + H_DB + 4].copy_from_slice(&db.to_le_bytes());
        r[at + H_KEY_LEN..at + H_KEY_LEN + 4].copy_from_slice(&(key.len() as u32).to_le_bytes());
        let value_len = entry.value.map_or(ABSENT, |v| v.len() as u32);
        r[at + H_VALUE_LEN..at + H_VALUE_LEN + 4].copy_from_slice(&value_len.to_le_bytes());
        r[at + H_LIVE] = 1;
        r[at + H_VISITED] = 0;
        r[at + HEADER..at + HEADER + key.len()].copy_from_slice(key);
        if let Some(value) = entry.value {
            let from = at + HEADER + key.len();
            r[from..from + value.len()].copy_from_slice(value);
        }
        self.write_ttl(at, entry.ttl);
    }

    /// Drops the live record at `at` from the table; its bytes become dead until the head
    /// passes them.
    fn kill(&mut self, at: usize) {
        let hash = read_u64(&self.ring, at + H_HASH);
        if let Ok(found) = self
            .table
            .find_entry(hash, |&slot| slot as usize * ALIGN == at)
        {
            found.remove();
        }
        self.ring[at + H_LIVE] = 0;
    }

    fn insert(&mut self, hash: u64, db: u32, key: &[u8], entry: EntryRef<'_>, now_ms: u64) {
        let old = self.find(hash, db, key);
        let Some(size) = record_size(key, entry.value).filter(|&s| s <= self.ring.len()) else {
            // Cannot be kept: the old entry must not stay behind as if it were current.
            if let Some(at) = old {
                self.kill(at);
            }
            return;
        };
        if let Some(at) = old {
            if stored_size(&self.ring, at) == size {
                // The common case of a SET of a known key: in place, and it counts as a use.
                self.write(at, hash, db, key, entry);
                self.ring[at + H_VISITED] = 1;
                return;
            }
            self.kill(at);
        }
        self.make_room(size, now_ms);
        let at = self.tail;
        self.write(at, hash, db, key, entry);
        self.tail += size;
        self.used += size;
        let Shard { table, ring, .. } = self;
        table.insert_unique(hash, (at / ALIGN) as u32, |&slot| {
            read_u64(ring, slot as usize * ALIGN + H_HASH)
        });
    }

    /// Evicts from the head until `size` contiguous bytes are free at the tail and a record
    /// more fits in the table.
    fn make_room(&mut self, size: usize, now_ms: u64) {
        loop {
            if self.used == 0 {
                (self.head, self.tail, self.end) = (0, 0, self.ring.len());
            }
            let room = if self.tail > self.head || self.used == 0 {
                // Records in [head, tail): the room is the ring's end.
                let room = self.ring.len() - self.tail;
                if room < size {
                    // Wrap: the end stays unused until the head passes it.
                    self.end = self.tail;
                    self.used += room;
                    self.tail = 0;
                    continue;
                }
                room
            } else {
                // Records in [head, end) and [0, tail): the room is between.
                self.head - self.tail
            };
            if room >= size && self.table.len() < self.max_records {
                return;
            }
            self.evict_head(now_ms);
        }
    }

    /// Takes the record at the head out: a dead one is reclaimed, a live one used since it
    /// last passed here gets a second chance at the tail (unless stale), any other is dropped.
    fn evict_head(&mut self, now_ms: u64) {
        let at = self.head;
        let size = stored_size(&self.ring, at);
        self.head += size;
        self.used -= size;
        if self.head == self.end {
            self.used -= self.ring.len() - self.end;
            (self.head, self.end) = (0, self.ring.len());
        }
        if self.ring[at + H_LIVE] == 0 {
            return;
        }
        let second_chance = self.ring[at + H_VISITED] != 0 && !stale(self.ttl(at), now_ms);
        // Wrapped (tail before the record): the record's own bytes are free now, so it fits
        // at the tail; otherwise only if the ring's end has room.
        let fits = self.tail <= at || self.ring.len() - self.tail >= size;
        if !(second_chance && fits) {
            self.kill(at);
            return;
        }
        let to = self.tail;
        self.ring.copy_within(at..at + size, to);
        self.ring[to + H_VISITED] = 0;
        let hash = read_u64(&self.ring, to + H_HASH);
        if let Some(slot) = self
            .table
            .find_mut(hash, |&slot| slot as usize * ALIGN == at)
        {
            *slot = (to / ALIGN) as u32;
        }
        self.tail += size;
        self.used += size;
    }

    fn clear(&mut self) {
        self.table.clear();
        (self.head, self.tail, self.end, self.used) = (0, 0, self.ring.len(), 0);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn value(n: usize) -> Entry {
        Entry {
            value: Some(Bytes::from(vec![b'v'; n])),
            ttl: Ttl::Persistent,
        }
    }

    fn put(s: &Shadow, key: &str, entry: &Entry, now_ms: u64) {
        s.insert(0, key.as_bytes(), EntryRef::of(entry), now_ms);
    }

    fn get(s: &Shadow, key: &str, now_ms: u64) -> Option<Entry> {
        s.get(0, key.as_bytes(), now_ms)
    }

    /// A budget whose ring holds `n` records of a `key_len`-byte key and `value_len`-byte
    /// value.
    fn budget_for(n: usize, key_len: usize, value_len: usize) -> usize {
        let record = (HEADER + key_len + value_len).next_multiple_of(ALIGN);
        (n * record * 8).div_ceil(7) + ALIGN
    }

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
        }
    }

    #[test]
    fn the_budget_holds_whatever_is_written() {
        // One shard (a small budget) and sixteen (a large one); values of many sizes.
        for budget in [4096, 64 * 1024, 80 * 1024 * 1024] {
            let s = Shadow::new(budget);
            for i in 0..20_000usize {
                put(&s, &format!("k{i}"), &value(i % 5000), 0);
                assert!(s.bytes() <= budget || i % 1000 != 0);
            }
            assert!(s.bytes() <= budget, "{} > {budget}", s.bytes());
            assert!(s.len() > 0);
        }
        // The table's share holds with the smallest records (the count cap binds).
        let budget = 256 * 1024;
        let s = Shadow::new(budget);
        for i in 0..100_000usize {
            s.insert(0, &i.to_le_bytes(), EntryRef::of(&Entry::ABSENT), 0);
        }
        assert!(s.bytes() <= budget, "{} > {budget}", s.bytes());
    }

    #[test]
    fn it_answers_like_a_map_or_forgets_never_with_another_value() {
        // Random inserts, updates of every size, removals, expiries, reads and clears against
        // a plain map: what the shadow answers is the map's entry or nothing.
        for (seed, budget) in [(1u64, 8 * 1024), (2, 64 * 1024), (3, 32 * 1024 * 1024)] {
            let s = Shadow::new(budget);
            let mut model: HashMap<(u32, Vec<u8>), Entry> = HashMap::new();
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
            let mut hits = 0;
            for step in 0..60_000u64 {
                let db = rng.below(2) as u32;
                let key = format!("key:{}", rng.below(300)).into_bytes();
                let now = step;
                match rng.below(100) {
                    0..=39 => {
                        let len = match rng.below(10) {
                            0 => 0,
                            1 => rng.below(3000) as usize,
                            _ => rng.below(200) as usize,
                        };
                        // Each value's bytes are its own: a wrong or shifted copy shows.
                        let fill = |n: usize| {
                            (0..n)
                                .map(|j| (step as u8).wrapping_add((j as u8).wrapping_mul(7)))
                                .collect::<Vec<u8>>()
                        };
                        let entry = match rng.below(8) {
                            0 => Entry::ABSENT,
                            1 => Entry {
                                ttl: Ttl::At(now + rng.below(400_000)),
                                ..value(len)
                            },
                            2 => Entry {
                                ttl: Ttl::Unknown,
                                ..value(len)
                            },
                            _ => value(len),
                        };
                        let entry = Entry {
                            value: entry.value.map(|v| Bytes::from(fill(v.len()))),
                            ..entry
                        };
                        s.insert(db, &key, EntryRef::of(&entry), now);
                        model.insert((db, key), entry);
                    }
                    40..=44 => {
                        s.remove(db, &key);
                        model.remove(&(db, key));
                    }
                    45..=49 => {
                        let ttl = Ttl::At(now + 1000);
                        s.set_ttl(db, &key, ttl, now);
                        if let Some(e) = model.get_mut(&(db, key)) {
                            if e.value.is_some() && !stale(e.ttl, now) {
                                e.ttl = ttl;
                            }
                        }
                    }
                    50 if step % 10_000 == 50 => {
                        s.clear();
                        model.clear();
                    }
                    _ => {
                        let got = s.get(db, &key, now);
                        let known = model
                            .get(&(db, key.clone()))
                            .is_some_and(|e| !stale(e.ttl, now));
                        if budget > 1 << 20 && known {
                            // Everything fits: nothing may have been evicted.
                            assert!(got.is_some(), "seed {seed} step {step}: forgotten");
                        }
                        if let Some(got) = &got {
                            hits += 1;
                            let want = model.get(&(db, key.clone()));
                            assert_eq!(Some(got), want, "seed {seed} step {step}");
                            assert!(!stale(got.ttl, now), "a stale entry answered");
                        }
                    }
                }
                assert!(s.bytes() <= budget, "{} > {budget}", s.bytes());
            }
            assert!(hits > 0, "seed {seed}: no read hit");
        }
    }

    #[test]
    fn recently_used_entries_survive_eviction() {
        // Room for about 40 entries of 1000 bytes.
        let s = Shadow::new(budget_for(40, 3, 1000));
        for i in 0..40 {
            put(&s, &format!("k{i:02}"), &value(1000), 0);
        }
        // Ten of them are read again and again while 400 new keys stream through.
        for i in 0..400 {
            for hot in 0..10 {
                assert!(
                    get(&s, &format!("k{hot:02}"), 0).is_some(),
                    "hot key k{hot:02} evicted after {i} inserts"
                );
            }
            put(&s, &format!("n{i:03}"), &value(1000), 0);
        }
        assert!(get(&s, "k39", 0).is_none(), "cold keys go first");
        assert!(get(&s, "n399", 0).is_some(), "the newest stays");
    }

    #[test]
    fn an_entry_too_large_to_keep_forgets_the_old_one() {
        let s = Shadow::new(4096);
        put(&s, "k", &value(10), 0);
        put(&s, "k", &value(5000), 0);
        assert_eq!(get(&s, "k", 0), None, "not the old value");
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn expired_entries_are_dropped_after_the_grace_and_evicted_first() {
        let s = Shadow::new(budget_for(3, 1, 1000));
        let grace = EXPIRED_GRACE.as_millis() as u64;
        let expiring = Entry {
            ttl: Ttl::At(1000),
            ..value(1000)
        };
        put(&s, "e", &expiring, 0);
        // Past its TTL but within the grace: still known (as absent, by Entry::at).
        assert_eq!(get(&s, "e", 1000), Some(expiring.clone()));
        assert_eq!(get(&s, "e", 1000 + grace), None, "dropped after the grace");
        assert_eq!(s.len(), 0);

        put(&s, "e", &expiring, 0);
        put(&s, "a", &value(1000), 0);
        put(&s, "b", &value(1000), 0);
        // All used, but "e" is stale: the next insert evicts "e", not "a" or "b".
        for k in ["a", "b", "e"] {
            get(&s, k, 0);
        }
        put(&s, "c", &value(1000), 1000 + grace);
        assert!(get(&s, "a", 0).is_some() && get(&s, "b", 0).is_some());
        assert!(get(&s, "c", 0).is_some());
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn updates_ttls_removes_and_clears() {
        let s = Shadow::new(1 << 20);
        put(&s, "a", &value(100), 0);
        put(&s, "a", &value(10), 0);
        assert_eq!(get(&s, "a", 0), Some(value(10)));
        s.update(0, b"a", 0, |old| {
            assert_eq!(old.and_then(|e| e.value).map(<[u8]>::len), Some(10));
            Some(EntryRef {
                value: Some(b"twenty bytes, twenty"),
                ttl: Ttl::Unknown,
            })
        });
        assert_eq!(
            get(&s, "a", 0).and_then(|e| e.value),
            Some(Bytes::from_static(b"twenty bytes, twenty"))
        );
        s.update(0, b"b", 0, |old| {
            assert!(old.is_none());
            None
        });
        assert_eq!(s.len(), 1);
        s.set_ttl(0, b"a", Ttl::At(5), 0);
        assert_eq!(get(&s, "a", 0).map(|e| e.ttl), Some(Ttl::At(5)));
        put(&s, "gone", &Entry::ABSENT, 0);
        s.set_ttl(0, b"gone", Ttl::At(5), 0);
        assert_eq!(
            get(&s, "gone", 0),
            Some(Entry::ABSENT),
            "no TTL on an absent key"
        );
        s.remove(0, b"a");
        assert_eq!(get(&s, "a", 0), None);
        s.insert(1, b"gone", EntryRef::of(&value(1)), 0);
        assert_eq!(s.len(), 2, "databases are separate");
        s.clear();
        assert_eq!(s.len(), 0);
        assert!(get(&s, "gone", 0).is_none());
        assert!(s.bytes() <= s.shards[0].lock().unwrap().table.allocation_size());
    }
}

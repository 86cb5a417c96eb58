//! A byte-bounded LRU map in shards, each behind its own mutex: the shadow cache's storage.
//!
//! # Why not moka
//! Every SET and every GET of an unknown value through redcloak writes into the cache, so an
//! insert sits on the hot path of every session. moka's concurrent cache measured ~0.9 M
//! inserts/s on one thread and ~0.45 M/s in total from two (its write buffers and maintenance
//! contend), and cost about a third of pipelined throughput (docs/performance.md). An insert
//! here is one hash, one uncontended lock (shards make two workers rarely meet) and a few
//! index updates in a slab: no allocation beyond the map's own growth.
//!
//! # Bounds
//! Each shard holds at most `capacity / shards` bytes by the caller's weight (least recently
//! used entries go first); an entry heavier than a shard is not kept. Expiry is the caller's
//! business at lookup ([`Lru::get`] takes a predicate that drops stale entries).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};

const NIL: u32 = u32::MAX;

struct Node<K, V> {
    key: K,
    value: V,
    weight: usize,
    prev: u32,
    next: u32,
}

/// One shard: a map from key to slab index, and a doubly linked recency list in the slab.
struct Shard<K, V> {
    index: HashMap<K, u32, RandomState>,
    slab: Vec<Option<Node<K, V>>>,
    free: Vec<u32>,
    /// Most recently used.
    head: u32,
    /// Least recently used: evicted first.
    tail: u32,
    bytes: usize,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> Shard<K, V> {
    fn new(capacity: usize, hasher: RandomState) -> Self {
        Shard {
            index: HashMap::with_hasher(hasher),
            slab: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            bytes: 0,
            capacity,
        }
    }

    fn node(&mut self, i: u32) -> &mut Node<K, V> {
        // Invariant: every index in the map and in the list points at an occupied slot.
        self.slab[i as usize].as_mut().expect("linked slot")
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let n = self.node(i);
            (n.prev, n.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.node(prev).next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.node(next).prev = prev;
        }
    }

    fn push_front(&mut self, i: u32) {
        let head = self.head;
        {
            let n = self.node(i);
            n.prev = NIL;
            n.next = head;
        }
        if head == NIL {
            self.tail = i;
        } else {
            self.node(head).prev = i;
        }
        self.head = i;
    }

    fn remove_at(&mut self, i: u32) -> Node<K, V> {
        self.unlink(i);
        let node = self.slab[i as usize].take().expect("linked slot");
        self.index.remove(&node.key);
        self.free.push(i);
        self.bytes -= node.weight;
        node
    }

    fn get(&mut self, key: &K, keep: impl Fn(&V) -> bool) -> Option<V> {
        let i = *self.index.get(key)?;
        if !keep(&self.node(i).value) {
            self.remove_at(i);
            return None;
        }
        self.unlink(i);
        self.push_front(i);
        Some(self.node(i).value.clone())
    }

    fn insert(&mut self, key: K, value: V, weight: usize) {
        if let Some(&i) = self.index.get(&key) {
            self.remove_at(i);
        }
        if weight > self.capacity {
            return;
        }
        let node = Node {
            key: key.clone(),
            value,
            weight,
            prev: NIL,
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = Some(node);
                i
            }
            None => {
                self.slab.push(Some(node));
                (self.slab.len() - 1) as u32
            }
        };
        self.index.insert(key, i);
        self.push_front(i);
        self.bytes += weight;
        while self.bytes > self.capacity && self.tail != NIL {
            let tail = self.tail;
            self.remove_at(tail);
        }
    }

    fn remove(&mut self, key: &K) {
        if let Some(&i) = self.index.get(key) {
            self.remove_at(i);
        }
    }

    fn clear(&mut self) {
        self.index = HashMap::with_hasher(self.index.hasher().clone());
        self.slab = Vec::new();
        self.free = Vec::new();
        self.head = NIL;
        self.tail = NIL;
        self.bytes = 0;
    }
}

/// A sharded, byte-bounded LRU map.
pub(crate) struct Lru<K, V> {
    shards: Box<[Mutex<Shard<K, V>>]>,
    /// Picks the shard (independent of the shards' own hashers, so keys spread within them).
    hasher: RandomState,
}

impl<K: Hash + Eq + Clone, V: Clone> Lru<K, V> {
    /// A map of at most `capacity` bytes in `shards` shards (at least one).
    pub fn new(capacity: usize, shards: usize) -> Self {
        let shards = shards.max(1);
        Lru {
            shards: (0..shards)
                .map(|_| Mutex::new(Shard::new(capacity / shards, RandomState::new())))
                .collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &K) -> MutexGuard<'_, Shard<K, V>> {
        let i = (self.hasher.hash_one(key) % self.shards.len() as u64) as usize;
        // A panic while holding the lock leaves a consistent map (every mutation completes
        // before anything that can panic); keep going with it.
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of `key`, marked as recently used, if `keep` accepts it (else it is dropped).
    pub fn get(&self, key: &K, keep: impl Fn(&V) -> bool) -> Option<V> {
        self.shard(key).get(key, keep)
    }

    /// Whether `key` is present (without changing its recency).
    #[cfg(test)]
    pub fn contains(&self, key: &K) -> bool {
        self.shard(key).index.contains_key(key)
    }

    /// Inserts or replaces `key`, evicting the least recently used entries of its shard.
    pub fn insert(&self, key: K, value: V, weight: usize) {
        self.shard(&key).insert(key, value, weight);
    }

    /// Applies `f` to the current value of `key` (under the shard's lock) and stores what it
    /// returns: `Some((key, value, weight))` replaces (`key` must equal the one given: it lets
    /// the caller copy the key only when it stores), `None` leaves the entry as it is.
    pub fn update(&self, key: &K, f: impl FnOnce(Option<&V>) -> Option<(K, V, usize)>) {
        let mut shard = self.shard(key);
        let current = shard.index.get(key).copied();
        let old = current.map(|i| &shard.slab[i as usize].as_ref().expect("linked slot").value);
        if let Some((key, value, weight)) = f(old) {
            shard.insert(key, value, weight);
        }
    }

    pub fn remove(&self, key: &K) {
        self.shard(key).remove(key);
    }

    pub fn clear(&self) {
        for s in self.shards.iter() {
            s.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }

    /// Bytes held, by the callers' weights.
    pub fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).bytes)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_recently_used_goes_first_and_bytes_stay_bounded() {
        let lru = Lru::new(30, 1);
        lru.insert(1, "a", 10);
        lru.insert(2, "b", 10);
        lru.insert(3, "c", 10);
        assert_eq!(lru.get(&1, |_| true), Some("a"), "1 is now the most recent");
        lru.insert(4, "d", 10);
        assert!(!lru.contains(&2), "2 was the least recently used");
        assert!(lru.contains(&1) && lru.contains(&3) && lru.contains(&4));
        assert_eq!(lru.bytes(), 30);
        lru.insert(3, "C", 25);
        assert_eq!(lru.bytes(), 25, "replacing re-weighs and evicts the others");
        assert_eq!(lru.get(&3, |_| true), Some("C"));
        lru.insert(5, "too big", 31);
        assert!(!lru.contains(&5));
        assert_eq!(
            lru.get(&3, |v| *v != "C"),
            None,
            "a rejected value is dropped"
        );
        assert!(!lru.contains(&3));
        assert_eq!(lru.bytes(), 0);
    }

    #[test]
    fn slots_are_reused_and_the_list_stays_consistent() {
        let lru = Lru::new(1000, 4);
        for round in 0..50u32 {
            for k in 0..40u32 {
                lru.insert(k, round, 7);
            }
            for k in (0..40u32).step_by(3) {
                lru.remove(&k);
            }
            lru.update(&1, |old| Some((1, old.copied().unwrap_or(0) + 1, 7)));
        }
        assert!(lru.bytes() <= 1000);
        for s in lru.shards.iter() {
            let s = s.lock().unwrap();
            assert!(s.slab.len() <= 40, "slots are reused: {}", s.slab.len());
            // Walk the list both ways: it holds exactly the map's entries.
            let (mut n, mut i) = (0, s.head);
            while i != NIL {
                n += 1;
                i = s.slab[i as usize].as_ref().unwrap().next;
            }
            assert_eq!(n, s.index.len());
            let (mut m, mut i) = (0, s.tail);
            while i != NIL {
                m += 1;
                i = s.slab[i as usize].as_ref().unwrap().prev;
            }
            assert_eq!(m, s.index.len());
        }
        lru.clear();
        assert_eq!(lru.bytes(), 0);
    }
}

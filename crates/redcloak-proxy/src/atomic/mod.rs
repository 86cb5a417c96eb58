//! Computing on encrypted data without weakening Redis's atomicity (DESIGN.md §4a).
//!
//! Redis cannot compute on ciphertext, so redcloak computes instead — with Redis's own
//! optimistic concurrency, never with a lock in Redis that a crash could leave behind:
//!
//! - [`rmw`]: one emulated command (INCR, HINCRBY, APPEND, LREM…): WATCH its keys, read and
//!   decrypt, compute exactly what Redis would (`redcloak_commands::emulate`), then MULTI /
//!   the encrypted writes / EXEC; when EXEC reports that a watched key changed, do it again
//!   (bounded, backed off). Clients of the same redcloak take turns per key ([`KeyLocks`]),
//!   so they do not make each other retry; other sidecars are kept out by WATCH.
//!
//! All of it talks to Redis through an [`Exchange`]: round trips of whole commands, either
//! on the client's own connection (in order with its pipeline) or on a connection of its
//! own (when the client holds a WATCH that redcloak's own EXEC must not clear).
//!
//! # Security
//! Values are decrypted only in redcloak's memory and written back encrypted; Redis never
//! receives a plaintext value. Nothing here logs values or arguments.

pub(crate) mod exchange;
pub(crate) mod janitor;
pub(crate) mod rmw;
pub(crate) mod scratch;

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytes::Bytes;

/// Why an exchange with Redis failed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// The connection to Redis broke (or the session is ending).
    #[error("the connection to Redis was lost")]
    Lost,
    /// Redis answered something redcloak cannot read.
    #[error("Redis sent a reply redcloak cannot parse")]
    Malformed,
    /// The connection is in RESP2 pub/sub mode, where Redis refuses the commands redcloak
    /// would need (as it would refuse the client's).
    #[error("the connection is in pub/sub mode")]
    PubSub,
}

/// What redcloak knows about the connection an exchange runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LinkState {
    /// RESP3: replies (and the client's reply) are in RESP3.
    pub resp3: bool,
    /// RESP2 pub/sub mode: Redis refuses everything but (un)subscribing and PING.
    pub pubsub: bool,
}

/// Round trips with Redis: whole commands out, one raw reply frame back per command.
pub(crate) trait Exchange: Send {
    /// Sends `commands` (arguments as Redis must receive them: values already encrypted) in
    /// one write and returns their replies, in order.
    fn call(
        &mut self,
        commands: Vec<Vec<Bytes>>,
    ) -> impl Future<Output = Result<Vec<Bytes>, ExchangeError>> + Send;

    /// The connection's state as of the last reply.
    fn state(&self) -> LinkState;

    /// Switches the connection's protocol (RESP3 or RESP2) for the replies that follow, when
    /// the exchange can (a connection of redcloak's own). False: it cannot (the client's
    /// connection, whose protocol is the client's).
    fn switch_protocol(
        &mut self,
        resp3: bool,
    ) -> impl Future<Output = Result<bool, ExchangeError>> + Send {
        let _ = resp3;
        async { Ok(false) }
    }
}

/// Clients of this redcloak take turns on a key while one of them updates it, so that they
/// do not make each other's EXEC fail (WATCH still guards against other sidecars). A fixed
/// number of shards: no map to grow or clean; unrelated keys rarely share a shard.
#[derive(Debug)]
pub(crate) struct KeyLocks {
    shards: Vec<Arc<tokio::sync::Mutex<()>>>,
}

impl Default for KeyLocks {
    fn default() -> Self {
        KeyLocks {
            shards: (0..1024)
                .map(|_| Arc::new(tokio::sync::Mutex::new(())))
                .collect(),
        }
    }
}

impl KeyLocks {
    fn shard(&self, db: u32, key: &[u8]) -> usize {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (db, key).hash(&mut h);
        (h.finish() as usize) % self.shards.len()
    }

    /// Takes the locks of `keys` in database `db`, always in the same order (no deadlock).
    pub(crate) async fn lock(
        &self,
        db: u32,
        keys: impl Iterator<Item = &[u8]>,
    ) -> Vec<tokio::sync::OwnedMutexGuard<()>> {
        let mut shards: Vec<usize> = keys.map(|k| self.shard(db, k)).collect();
        shards.sort_unstable();
        shards.dedup();
        let mut guards = Vec::with_capacity(shards.len());
        for s in shards {
            guards.push(self.shards[s].clone().lock_owned().await);
        }
        guards
    }
}

/// A RESP command from its parts.
pub(crate) fn command(parts: &[&[u8]]) -> Vec<Bytes> {
    parts.iter().map(|p| Bytes::copy_from_slice(p)).collect()
}

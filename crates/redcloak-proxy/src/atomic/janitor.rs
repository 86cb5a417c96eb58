//! Deletes scratch keys that an execution left behind when its redcloak died mid-way (a
//! crash, a kill -9): every scratch key is named with the time it was made, and one older
//! than [`MAX_AGE`] cannot belong to a running execution (those end within seconds: scripts
//! have a time limit, retries are bounded). Runs at start and every [`EVERY`], in every
//! database that has keys.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use redcloak_commands::resp::Frame;
use tracing::{debug, info};

use super::exchange::Side;
use super::scratch::PREFIX;
use super::{Exchange, LinkState};
use crate::fallback::now_ms;
use crate::health::Mode;
use crate::Shared;

/// Scratch keys older than this are left over from a dead execution.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(60);
/// How often the janitor looks.
const EVERY: Duration = Duration::from_secs(60);

/// The janitor's loop (a background task).
pub(crate) async fn run(shared: Arc<Shared>) {
    loop {
        if shared.health.mode() == Mode::Healthy {
            match sweep(&shared, now_ms()).await {
                Ok(0) => {}
                Ok(n) => info!(
                    deleted = n,
                    "deleted scratch keys left behind by an execution that did not finish"
                ),
                Err(e) => debug!(error = %e, "the scratch janitor could not run this time"),
            }
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// One sweep at time `now` (Unix ms): deletes the old scratch keys; returns how many.
pub(crate) async fn sweep(shared: &Arc<Shared>, now: u64) -> Result<usize, super::ExchangeError> {
    let default_db = shared.connector().default_db();
    let mut side = Side::open(shared, default_db, LinkState::default()).await?;
    let mut deleted = 0;
    for db in databases(&mut side).await?.into_iter().chain([default_db]) {
        side.call(vec![vec![
            Bytes::from_static(b"SELECT"),
            Bytes::from(db.to_string()),
        ]])
        .await?;
        let mut cursor = Bytes::from_static(b"0");
        loop {
            let mut pattern = PREFIX.to_vec();
            pattern.push(b'*');
            let reply = side
                .call(vec![vec![
                    Bytes::from_static(b"SCAN"),
                    cursor.clone(),
                    Bytes::from_static(b"MATCH"),
                    Bytes::from(pattern),
                    Bytes::from_static(b"COUNT"),
                    Bytes::from_static(b"1000"),
                ]])
                .await?;
            let Some(Ok(Some((Frame::Array(parts), _)))) =
                reply.first().map(|r| Frame::parse(r, &shared.reply_limits))
            else {
                break;
            };
            let [Frame::Bulk(next), Frame::Array(keys)] = &parts[..] else {
                break;
            };
            let old: Vec<Bytes> = keys
                .iter()
                .filter_map(|k| match k {
                    Frame::Bulk(k)
                        if made_at(k).is_some_and(|at| at + MAX_AGE.as_millis() as u64 <= now) =>
                    {
                        Some(k.clone())
                    }
                    _ => None,
                })
                .collect();
            if !old.is_empty() {
                deleted += old.len();
                let mut unlink = vec![Bytes::from_static(b"UNLINK")];
                unlink.extend(old);
                side.call(vec![unlink]).await?;
            }
            if &next[..] == b"0" {
                break;
            }
            cursor = next.clone();
        }
    }
    Ok(deleted)
}

/// When a scratch key was made (Unix ms), from its name.
fn made_at(key: &[u8]) -> Option<u64> {
    let rest = key.strip_prefix(PREFIX)?;
    let ms = rest.split(|&b| b == b':').next()?;
    std::str::from_utf8(ms).ok()?.parse().ok()
}

/// The databases that hold keys (`INFO keyspace`: `db3:keys=…`).
async fn databases(side: &mut Side) -> Result<Vec<u32>, super::ExchangeError> {
    let reply = side
        .call(vec![vec![
            Bytes::from_static(b"INFO"),
            Bytes::from_static(b"keyspace"),
        ]])
        .await?;
    let text = reply
        .first()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .unwrap_or_default();
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("db")?.split(':').next()?.parse().ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_keys_carry_their_age() {
        assert_eq!(
            made_at(b"redcloak:scratch:1700000000000:00ff:3"),
            Some(1_700_000_000_000)
        );
        assert_eq!(made_at(b"redcloak:scratch:x:1"), None);
        assert_eq!(made_at(b"user:1"), None);
    }
}

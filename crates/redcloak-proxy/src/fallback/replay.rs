//! Applying the outage journal when Redis is back: in order, in batches, each entry removed
//! only once Redis has answered it; or dropped, with `REDCLOAK_RECOVERY=invalidate`.

use bytes::BytesMut;
use redcloak_commands::resp::{self, ReplyScanner};
use redcloak_config::Recovery;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{info, warn};

use crate::upstream::UpstreamConn;
use crate::Shared;

/// Journal entries sent per round trip while replaying.
const REPLAY_BATCH: usize = 256;

/// Applies the journal in order (or drops it, with `Recovery::Invalidate`), until it is empty
/// and closed. Entries are removed only once Redis has answered them.
pub(crate) async fn drain_journal(
    shared: &Shared,
    conn: &mut UpstreamConn,
) -> std::io::Result<usize> {
    let fallback = &shared.fallback;
    if fallback.recovery() == Recovery::Invalidate {
        let mut dropped = 0;
        loop {
            dropped += fallback.discard_journal();
            if fallback.close_journal_if_empty() {
                if dropped > 0 {
                    warn!(dropped, "REDCLOAK_RECOVERY=invalidate: writes accepted during the outage were dropped");
                }
                return Ok(0);
            }
        }
    }
    let mut applied = 0;
    let mut db = shared.connector().default_db();
    let mut scanner = ReplyScanner::new(shared.reply_limits);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        let batch = fallback.peek_journal(REPLAY_BATCH);
        if batch.is_empty() {
            if fallback.close_journal_if_empty() {
                return Ok(applied);
            }
            continue;
        }
        let mut out = BytesMut::new();
        let mut replies = 0;
        for entry in &batch {
            if entry.db != db {
                resp::write_array_len(&mut out, 2);
                resp::write_bulk(&mut out, b"SELECT");
                resp::write_bulk(&mut out, entry.db.to_string().as_bytes());
                db = entry.db;
                replies += 1;
            }
            resp::write_array_len(&mut out, entry.args.len());
            for a in &entry.args {
                resp::write_bulk(&mut out, a);
            }
            replies += 1;
        }
        conn.write_all(&out).await?;
        let mut seen = 0;
        while seen < replies {
            match scanner.scan(&buf).map_err(std::io::Error::other)? {
                Some(len) => {
                    let reply = buf.split_to(len);
                    if reply.first() == Some(&b'-') {
                        // Redis refused one write (e.g. the key changed type meanwhile): it
                        // cannot be applied later either. Say so; keep going.
                        warn!(
                            "Redis refused a write from the outage journal: {}",
                            String::from_utf8_lossy(&reply).trim_end()
                        );
                    }
                    seen += 1;
                }
                None => {
                    if conn.read_buf(&mut buf).await? == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                }
            }
        }
        fallback.ack_journal(batch.len());
        applied += batch.len();
        info!(
            applied,
            left = fallback.journal_len(),
            "applying the outage journal"
        );
    }
}

//! The client listener: loopback TCP or a Unix socket, one task per client, a connection
//! limit taken *before* accept.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redcloak_config::{ListenAddr, SocketMode};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{info, info_span, warn, Instrument};

use crate::{session, Shared};

/// A bound listener, ready to serve.
#[derive(Debug)]
pub enum Listener {
    /// Loopback TCP.
    Tcp(TcpListener),
    /// Unix socket; the file is removed when the listener is dropped.
    Unix(UnixListener, UnixSocketFile),
}

/// Removes the socket file on drop.
#[derive(Debug)]
pub struct UnixSocketFile(PathBuf);

impl Drop for UnixSocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Listener {
    /// Binds the configured address; a Unix socket gets mode 0600 (only redcloak's user may
    /// connect). See [`Listener::bind_with_mode`].
    pub async fn bind(addr: &ListenAddr) -> std::io::Result<Listener> {
        Listener::bind_with_mode(addr, SocketMode::DEFAULT).await
    }

    /// Binds the configured address. A Unix socket is created with `mode` (which never
    /// grants access to other users): it is bound under a temporary name, restricted, then
    /// renamed into place, so it is never reachable with wider permissions.
    pub async fn bind_with_mode(addr: &ListenAddr, mode: SocketMode) -> std::io::Result<Listener> {
        match addr {
            ListenAddr::Tcp(addr) => Ok(Listener::Tcp(TcpListener::bind(addr).await?)),
            ListenAddr::Unix(path) => bind_unix(path, mode),
        }
    }

    /// The bound address, for logs (the real port when 0 was asked for).
    pub fn local_addr(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map_or_else(|e| e.to_string(), |a| a.to_string()),
            Listener::Unix(_, file) => format!("unix:{}", file.0.display()),
        }
    }

    /// Accepts clients until `shutdown` completes, then waits up to `grace` for open sessions.
    /// Accepts clients until `shutdown` completes; then stops accepting, lets every session
    /// answer the commands it has already read, applies the outage journal if Redis is
    /// reachable, and returns — within the configured grace period.
    pub async fn serve(self, shared: Arc<Shared>, shutdown: impl Future<Output = ()>) {
        shared.start();
        let limit = Arc::new(Semaphore::new(shared.limits.max_connections));
        let mut sessions = JoinSet::new();
        let ids = AtomicU64::new(1);
        tokio::pin!(shutdown);
        shared.lifecycle.listening.store(true, Ordering::Release);
        loop {
            // Take a permit before accepting: past the limit, clients wait in the kernel's
            // accept queue instead of costing an upstream connection each.
            let permit = tokio::select! {
                permit = limit.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
                _ = &mut shutdown => break,
            };
            let accepted = tokio::select! {
                accepted = self.accept() => accepted,
                _ = &mut shutdown => break,
            };
            // Reap finished sessions so the set does not grow.
            while sessions.try_join_next().is_some() {}
            match accepted {
                Ok((client, peer)) => {
                    let id = ids.fetch_add(1, Ordering::Relaxed);
                    let span = info_span!("conn", id, client.addr = %peer);
                    let shared = shared.clone();
                    shared.metrics.connection_opened();
                    sessions.spawn(
                        async move {
                            match client {
                                Client::Tcp(s) => session::run(s, shared.clone()).await,
                                Client::Unix(s) => session::run(s, shared.clone()).await,
                            }
                            shared.metrics.connection_closed();
                            drop(permit);
                        }
                        .instrument(span),
                    );
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        // Stop accepting (the socket closes; a Unix socket file is removed) and drain.
        shared.lifecycle.listening.store(false, Ordering::Release);
        drop(self);
        drain(sessions, &shared).await;
    }

    async fn accept(&self) -> std::io::Result<(Client, String)> {
        match self {
            Listener::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                s.set_nodelay(true)?;
                Ok((Client::Tcp(s), peer.to_string()))
            }
            Listener::Unix(l, _) => {
                let (s, _) = l.accept().await?;
                Ok((Client::Unix(s), "unix".to_owned()))
            }
        }
    }
}

enum Client {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

fn bind_unix(path: &Path, mode: SocketMode) -> std::io::Result<Listener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            // A stale socket from an earlier run; anything else at that path is left alone.
            std::fs::remove_file(path)?;
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp)?;
    // SocketMode cannot hold o+rwx bits; chmod follows no symlink here (bind just created
    // the socket at `tmp`).
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode.bits()))?;
    std::fs::rename(&tmp, path)?;
    Ok(Listener::Unix(listener, UnixSocketFile(path.to_owned())))
}

/// Lets every session answer what it has read, within the grace period, then applies the
/// outage journal if Redis is reachable.
async fn drain(mut sessions: JoinSet<()>, shared: &Arc<Shared>) {
    let grace = shared.operations.shutdown_grace;
    let deadline = tokio::time::Instant::now() + grace;
    shared.begin_shutdown();
    info!(
        open = sessions.len(),
        grace_secs = grace.as_secs_f64(),
        "stopped accepting clients; draining"
    );
    let drained = tokio::time::timeout_at(deadline, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            open = sessions.len(),
            "grace period over; closing the remaining sessions"
        );
        sessions.shutdown().await;
    }
    let journaled = shared.journal_len();
    if journaled > 0 {
        match tokio::time::timeout_at(deadline + Duration::from_secs(1), shared.flush_journal())
            .await
        {
            Ok(0) => info!(applied = journaled, "outage journal applied before exit"),
            Ok(left) => tracing::error!(
                lost = left,
                "Redis is unreachable: writes accepted during the outage are lost at exit"
            ),
            Err(_) => tracing::error!(
                lost = shared.journal_len(),
                "grace period over: writes accepted during the outage are lost at exit"
            ),
        }
    }
}

//! The admin endpoint: health, status and metrics over HTTP/1.1 (hyper).
//!
//! | path | answers |
//! |---|---|
//! | `GET /livez` | 200 while the process runs and its runtime answers |
//! | `GET /readyz` | 200 whenever clients can be served, **including degraded mode**; 503 before the client listener accepts and while shutting down. The body names the mode |
//! | `GET /status` | JSON: mode, upstream, TLS version, key ids, certificate expiry, journal, version |
//! | `GET /metrics` | Prometheus text (OpenMetrics when the `Accept` header asks for it) |
//!
//! Readiness stays 200 in degraded mode on purpose: a sidecar's readiness gates its whole
//! pod, and pulling every pod out of service because Redis blinked would turn a cache outage
//! into an application outage. The mode is in the body, the metrics and `/status`.
//!
//! # Security
//! The endpoint listens where the data listener may ([`ListenAddr`]: loopback or a Unix
//! socket, created 0600), serves only `GET`/`HEAD`, answers one request per connection with a
//! 10 s deadline and at most [`MAX_CONNECTIONS`] connections at a time. Nothing it serves
//! holds a key name, a value or a secret: keys appear by their ids (`k:1a2b3c4d`), the
//! upstream by `host:port`.
//!
//! [`get`] is the client side, for `redcloak probe` (Kubernetes exec probes: the kubelet's
//! httpGet cannot reach a loopback-only endpoint, and the runtime image has no curl).

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use redcloak_config::x509::UtcTime;
use redcloak_config::ListenAddr;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tracing::{debug, error, info, warn};

use crate::health::Mode;
use crate::listener::Listener;
use crate::metrics::{Format, State};
use crate::Shared;

/// Admin connections served at once; more wait in the accept queue.
pub const MAX_CONNECTIONS: usize = 32;
/// A connection's whole life: read the request, answer, close.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
/// Largest body [`get`] reads.
const MAX_PROBE_BODY: usize = 64 * 1024;

/// Binds `shared.operations.admin_listen` (unless it is `off`) and serves it in the
/// background; `data` is the client listener's address. A bind failure is logged and does
/// not stop the proxy: the data path matters more than its health endpoint (a readiness probe
/// that cannot connect makes the failure visible).
pub async fn start(shared: &Arc<Shared>, data: &ListenAddr) {
    let Some(addr) = shared.operations.admin_listen.clone() else {
        info!("admin endpoint off (REDCLOAK_ADMIN_LISTEN=off): no /livez, /readyz, /status or /metrics");
        return;
    };
    if addr == *data {
        // Binding a Unix socket replaces a stale one at the same path: it would take the
        // clients' socket over.
        error!(
            admin = %addr,
            "REDCLOAK_ADMIN_LISTEN is the client listener's address; the admin endpoint is not served \
             (give it its own port or socket path)"
        );
        return;
    }
    match Listener::bind(&addr).await {
        Ok(listener) => {
            info!(
                admin = %listener.local_addr(),
                "admin endpoint: /livez, /readyz, /status, /metrics"
            );
            tokio::spawn(serve(listener, shared.clone()));
        }
        Err(e) => error!(
            admin = %addr,
            error = %e,
            "cannot listen for the admin endpoint; health and metrics are not served \
             (set REDCLOAK_ADMIN_LISTEN to a free loopback port or a socket path, or to off)"
        ),
    }
}

/// Accepts admin connections until the process exits (it keeps answering during the
/// shutdown drain, so that readiness can say 503).
pub async fn serve(listener: Listener, shared: Arc<Shared>) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let shared = shared.clone();
        match &listener {
            Listener::Tcp(l) => match l.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(async move {
                        answer(stream, shared).await;
                        drop(permit);
                    });
                }
                Err(e) => accept_failed(e).await,
            },
            Listener::Unix(l, _) => match l.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(async move {
                        answer(stream, shared).await;
                        drop(permit);
                    });
                }
                Err(e) => accept_failed(e).await,
            },
        }
    }
}

async fn accept_failed(e: std::io::Error) {
    // EMFILE and friends: back off instead of spinning.
    warn!(error = %e, "admin endpoint: accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// One connection, one request.
async fn answer<S>(stream: S, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let response = route(&req, &shared);
        async move { Ok::<_, Infallible>(response) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(CONNECTION_DEADLINE, conn).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => debug!(error = %e, "admin connection failed"),
        Err(_) => debug!("admin connection closed: deadline passed"),
    }
}

fn route(req: &Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET (and HEAD) are served\n".to_owned(),
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match req.uri().path() {
        "/livez" => text(StatusCode::OK, "ok\n".to_owned()),
        "/readyz" => readiness(shared),
        "/status" => {
            let mut body = status(shared).to_string();
            body.push('\n');
            with_type(StatusCode::OK, body, "application/json")
        }
        "/metrics" => {
            let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
            let format = Format::from_accept(accept);
            let material = shared.material();
            let state = State {
                mode: shared.health.mode(),
                journal_entries: shared.journal_len(),
                fallback_hits: shared.health.served_from_fallback.load(Ordering::Relaxed),
                cert_expiry: &material.cert_expiry,
            };
            with_type(
                StatusCode::OK,
                shared.metrics.encode(&state, format),
                format.content_type(),
            )
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; the admin endpoint serves /livez, /readyz, /status and /metrics\n"
                .to_owned(),
        ),
    }
}

/// Whether the process is ready, and why (the second part goes in the body).
fn lifecycle(shared: &Shared) -> (bool, &'static str) {
    if shared.lifecycle.shutting_down.load(Ordering::Acquire) {
        (false, "shutting down (draining clients)")
    } else if !shared.lifecycle.listening.load(Ordering::Acquire) {
        // Before the listener accepts, and from the moment it stops accepting at shutdown.
        (false, "not accepting clients (starting or shutting down)")
    } else {
        (true, "serving")
    }
}

fn readiness(shared: &Shared) -> Response<Full<Bytes>> {
    match lifecycle(shared) {
        (false, why) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
        (true, _) => {
            let body = match shared.health.mode() {
                Mode::Healthy => "ready: healthy\n".to_owned(),
                Mode::Degraded => format!(
                    "ready: degraded (Redis is unreachable; serving from the local cache, \
                     journaling writes: {} so far)\n",
                    shared.journal_len()
                ),
                Mode::Recovering => format!(
                    "ready: recovering (Redis is back; applying the outage journal: {} left)\n",
                    shared.journal_len()
                ),
            };
            text(StatusCode::OK, body)
        }
    }
}

/// The `/status` document. Only ids, names, addresses and times: no secret, key or value.
fn status(shared: &Shared) -> serde_json::Value {
    let material = shared.material();
    let mode = shared.health.mode();
    let (ready, lifecycle) = lifecycle(shared);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let certificates: serde_json::Map<String, serde_json::Value> = material
        .cert_expiry
        .iter()
        .map(|&(name, not_after)| {
            (
                name.to_owned(),
                serde_json::json!({
                    "not_after": UtcTime(not_after).to_string(),
                    "not_after_unix": not_after,
                    "days_left": (not_after - now).div_euclid(86_400),
                }),
            )
        })
        .collect();
    let keys: Vec<String> = material
        .key_ring
        .key_ids()
        .iter()
        .map(ToString::to_string)
        .collect();
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "ready": ready,
        "lifecycle": lifecycle,
        "mode": mode.as_str(),
        "upstream": {
            "address": material.connector.addr(),
            "reachable": mode != Mode::Degraded,
            "last_error": shared.health.last_error(),
            "tls_version": shared.metrics.tls_version_in_use().unwrap_or("unknown"),
        },
        "key_ring": {
            "ids": keys,
            "encrypts_with": keys.first(),
            "value_format": material.key_ring.format().as_str(),
        },
        "certificates": certificates,
        "journal_entries": shared.journal_len(),
        "fallback_hits": shared.health.served_from_fallback.load(Ordering::Relaxed),
        "connections_open": shared.metrics.connections_open(),
    })
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    with_type(status, body, "text/plain; charset=utf-8")
}

fn with_type(
    status: StatusCode,
    body: String,
    content_type: &'static str,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

// === client (redcloak probe) ===

/// Why [`get`] got no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// Nothing listens there (or the socket file is missing).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The admin address.
        addr: String,
        /// The connect error.
        source: std::io::Error,
    },
    /// Connected, but the HTTP exchange failed.
    #[error("{addr} did not answer over HTTP: {reason}")]
    Http {
        /// The admin address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// No complete answer within the timeout.
    #[error("{addr} did not answer within {} s", timeout.as_secs_f64())]
    Timeout {
        /// The admin address.
        addr: String,
        /// The timeout.
        timeout: Duration,
    },
}

/// `GET path` on the admin endpoint at `addr`, within `timeout`: the status code and body.
pub async fn get(
    addr: &ListenAddr,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String), ProbeError> {
    let shown = addr.to_string();
    let exchange = async {
        let connect_error = |source| ProbeError::Connect {
            addr: shown.clone(),
            source,
        };
        match addr {
            ListenAddr::Tcp(a) => {
                let s = tokio::net::TcpStream::connect(a)
                    .await
                    .map_err(connect_error)?;
                request(s, path, &shown).await
            }
            ListenAddr::Unix(p) => {
                let s = tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(connect_error)?;
                request(s, path, &shown).await
            }
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(ProbeError::Timeout {
            addr: shown,
            timeout,
        }),
    }
}

async fn request<S>(stream: S, path: &str, addr: &str) -> Result<(u16, String), ProbeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http = |e: &dyn std::fmt::Display| ProbeError::Http {
        addr: addr.to_owned(),
        reason: e.to_string(),
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| http(&e))?;
    let driver = tokio::spawn(conn);
    let req = Request::get(path)
        .header(HOST, "localhost")
        .body(Empty::<Bytes>::new())
        .map_err(|e| http(&e))?;
    let response = sender.send_request(req).await.map_err(|e| http(&e))?;
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), MAX_PROBE_BODY)
        .collect()
        .await
        .map_err(|e| http(&*e))?
        .to_bytes();
    driver.abort();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

//! The upstream: TCP + TLS (mutual) + AUTH (+ SELECT) to the real Redis.
//!
//! # Layout
//! - [`Connector`] (this file): opens authenticated connections; [`UpstreamError`] says why
//!   one could not be opened, and whether that means "Redis is down" or "the security
//!   configuration is wrong".
//! - `link`: the seam DESIGN.md §2 describes — the one trait through which a session sends
//!   requests and receives reply frames. Today every session has a dedicated connection
//!   behind it; shared, pipelined connections plug in behind the same trait without touching
//!   the command table or the session's reply bookkeeping.
//! - `pool`: a few pre-established connections, and the limiter that queues connection
//!   establishment so that a storm of new clients is served, not mistaken for an outage.
//!
//! # Security
//! The AUTH command is built once from the configured secret directly into a zeroizing
//! buffer (never copied into one that is freed unwiped) and is never logged. Errors carry
//! Redis's reply text (which never contains the password) or the TLS alert, never the
//! request.

mod link;
pub(crate) mod pool;
pub(crate) mod shared;

pub(crate) use link::{Dedicated, FrameReader, LinkError, LinkRx, LinkTx};
pub(crate) use shared::{SharedLinks, SharedRx, SharedTx};

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use redcloak_commands::resp::{self, ReplyScanner};
use redcloak_config::{Config, Host};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use zeroize::Zeroizing;

/// An authenticated TLS connection to Redis.
pub type UpstreamConn = TlsStream<TcpStream>;

/// Opens upstream connections. Cheap to share (`Arc`).
pub struct Connector {
    tls: TlsConnector,
    server_name: ServerName<'static>,
    host: String,
    port: u16,
    /// `AUTH [user] password` and, for a non-zero database, `SELECT db`, pipelined.
    hello: Zeroizing<Vec<u8>>,
    hello_replies: usize,
    timeout: Duration,
    display: String,
    /// The database every connection starts in (`REDIS_URL`'s `/db`).
    db: u32,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("upstream", &self.display)
            .finish_non_exhaustive()
    }
}

/// Why an upstream connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// TCP connect failed (refused, no route, DNS): Redis is down or unreachable.
    #[error("cannot reach Redis at {addr}: {source}")]
    Unreachable {
        /// host:port
        addr: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// Connecting, the handshake or AUTH took longer than the connect timeout.
    #[error("Redis at {addr} did not complete the connection within {timeout:?}")]
    Timeout {
        /// host:port
        addr: String,
        /// The limit.
        timeout: Duration,
    },
    /// The TLS handshake failed: certificate verification, protocol version or client
    /// certificate rejected. A security error, not an outage.
    #[error("TLS handshake with Redis at {addr} failed: {reason}")]
    Tls {
        /// host:port
        addr: String,
        /// What rustls reported.
        reason: String,
        /// Which kind of failure, for the message that says how to fix it.
        failure: TlsFailure,
    },
    /// Redis refused AUTH or SELECT. A security (or configuration) error.
    #[error("Redis at {addr} refused redcloak's {step}: {reply}")]
    Rejected {
        /// host:port
        addr: String,
        /// "AUTH" or "SELECT".
        step: &'static str,
        /// Redis's error reply.
        reply: String,
    },
    /// The connection broke or answered something that is not RESP.
    #[error("connection to Redis at {addr} failed: {reason}")]
    Broken {
        /// host:port
        addr: String,
        /// What happened.
        reason: String,
    },
}

/// What went wrong in a failed TLS handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFailure {
    /// Redis's certificate does not chain to a trusted CA (or its signature is bad).
    UntrustedServer,
    /// Redis's certificate does not name the host in `REDIS_URL`.
    NameMismatch,
    /// Redis's certificate (or a CA in its chain) has expired.
    ServerExpired,
    /// Redis's certificate is not valid yet.
    ServerNotYetValid,
    /// No protocol version in common (e.g. Redis offers only TLS 1.2 where 1.3 is required).
    ProtocolVersion,
    /// Redis refused redcloak's client certificate.
    ClientRejected,
    /// Anything else.
    Other,
}

impl TlsFailure {
    fn of(e: &rustls::Error) -> TlsFailure {
        use rustls::{
            AlertDescription as A, CertificateError as C, Error as E, PeerIncompatible as P,
        };
        match e {
            E::InvalidCertificate(c) => match c {
                C::UnknownIssuer | C::BadSignature => TlsFailure::UntrustedServer,
                C::NotValidForName | C::NotValidForNameContext { .. } => TlsFailure::NameMismatch,
                C::Expired | C::ExpiredContext { .. } => TlsFailure::ServerExpired,
                C::NotValidYet | C::NotValidYetContext { .. } => TlsFailure::ServerNotYetValid,
                _ => TlsFailure::Other,
            },
            E::PeerIncompatible(
                P::ServerTlsVersionIsDisabledByOurConfig
                | P::ServerDoesNotSupportTls12Or13
                | P::SupportedVersionsExtensionRequired
                | P::Tls12NotOffered
                | P::Tls12NotOfferedOrEnabled,
            )
            | E::AlertReceived(A::ProtocolVersion) => TlsFailure::ProtocolVersion,
            E::AlertReceived(
                A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::CertificateUnknown
                | A::UnknownCA
                | A::AccessDenied
                | A::CertificateRequired,
            ) => TlsFailure::ClientRejected,
            _ => TlsFailure::Other,
        }
    }
}

impl UpstreamError {
    /// Whether the failure means "Redis is down" (retry later) rather than "the security
    /// configuration is wrong" (stop and tell the operator).
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            UpstreamError::Unreachable { .. }
                | UpstreamError::Timeout { .. }
                | UpstreamError::Broken { .. }
        )
    }
}

impl UpstreamError {
    /// Whether the failure is evidence that Redis cannot be used now (refused or reset, a TLS
    /// or AUTH refusal), as opposed to a sign that it is slow (a timeout, a connection that
    /// broke mid-handshake), which is only a reason to probe (see `health::suspect`).
    pub fn is_evidence(&self) -> bool {
        !matches!(
            self,
            UpstreamError::Timeout { .. } | UpstreamError::Broken { .. }
        )
    }
}

/// What a successful probe saw.
#[derive(Debug, Clone)]
pub struct ProbeInfo {
    /// Negotiated TLS version, e.g. "TLS 1.3".
    pub tls_version: String,
    /// Time for TCP + TLS + AUTH + PING.
    pub elapsed: Duration,
}

impl Connector {
    /// Prepares a connector from a validated configuration and a TLS client configuration.
    pub fn new(config: &Config, tls: Arc<rustls::ClientConfig>) -> Connector {
        let url = &config.upstream;
        let server_name = match &url.host {
            Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
            // The URL parser only admits letters, digits, '-' and '.', which rustls accepts;
            // a name it still rejects cannot match any certificate, so fall back to an IP
            // name that will fail verification rather than skip it.
            Host::Dns(name) => ServerName::try_from(name.clone()).unwrap_or(ServerName::IpAddress(
                std::net::Ipv4Addr::UNSPECIFIED.into(),
            )),
        };
        let host = match &url.host {
            Host::Ip(ip) => ip.to_string(),
            Host::Dns(name) => name.clone(),
        };
        let mut auth: Vec<&[u8]> = vec![b"AUTH"];
        if let Some(user) = &config.username {
            auth.push(user.as_bytes());
        }
        auth.push(config.password.expose().as_bytes());
        let db = url.db.to_string();
        let mut commands = vec![auth];
        if url.db != 0 {
            commands.push(vec![b"SELECT", db.as_bytes()]);
        }
        let hello_replies = commands.len();
        let hello = encode_secret(&commands);
        Connector {
            tls: TlsConnector::from(tls),
            server_name,
            display: format!("{}:{}", url.host, url.port),
            host,
            port: url.port,
            hello,
            hello_replies,
            timeout: config.limits.connect_timeout,
            db: url.db,
            metrics: None,
        }
    }

    /// Records connection failures and handshake times in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Connector {
        self.metrics = Some(metrics);
        self
    }

    /// The database a new connection is in.
    pub fn default_db(&self) -> u32 {
        self.db
    }

    /// `host:port` of the upstream, for messages.
    pub fn addr(&self) -> &str {
        &self.display
    }

    /// Opens a new authenticated connection (TCP, TLS, AUTH, SELECT) within the timeout.
    pub async fn connect(&self) -> Result<UpstreamConn, UpstreamError> {
        let result = self.connect_untracked().await;
        if let (Err(e), Some(metrics)) = (&result, &self.metrics) {
            use crate::metrics::ConnectFailure as F;
            metrics.connect_failure(match e {
                UpstreamError::Unreachable { .. } => F::Unreachable,
                UpstreamError::Timeout { .. } => F::Timeout,
                UpstreamError::Tls { .. } => F::Tls,
                UpstreamError::Rejected { .. } => F::Auth,
                _ => F::Broken,
            });
        }
        result
    }

    async fn connect_untracked(&self) -> Result<UpstreamConn, UpstreamError> {
        match tokio::time::timeout(self.timeout, self.connect_inner()).await {
            Ok(result) => result,
            Err(_) => Err(UpstreamError::Timeout {
                addr: self.display.clone(),
                timeout: self.timeout,
            }),
        }
    }

    /// Connects and sends one PING: the startup and `redcloak check` handshake.
    pub async fn probe(&self) -> Result<ProbeInfo, UpstreamError> {
        let started = Instant::now();
        let mut conn = self.connect().await?;
        let tls_version = conn.get_ref().1.protocol_version().map_or_else(
            || "unknown".to_owned(),
            |v| match v {
                rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".to_owned(),
                rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".to_owned(),
                other => format!("{other:?}"),
            },
        );
        let ping = async {
            conn.write_all(b"*1\r\n$4\r\nPING\r\n").await?;
            let mut buf = BytesMut::with_capacity(64);
            read_replies(&mut conn, &mut buf, 1).await
        };
        match tokio::time::timeout(self.timeout, ping).await {
            Ok(Ok(replies))
                if replies
                    .first()
                    .is_some_and(|r| r.as_slice() == b"+PONG\r\n") =>
            {
                Ok(ProbeInfo {
                    tls_version,
                    elapsed: started.elapsed(),
                })
            }
            Ok(Ok(replies)) => Err(self.broken(format!(
                "PING was answered with {}",
                String::from_utf8_lossy(replies.first().map_or(&b""[..], |r| r.as_slice()))
                    .trim_end()
            ))),
            Ok(Err(e)) => Err(self.broken(e.to_string())),
            Err(_) => Err(UpstreamError::Timeout {
                addr: self.display.clone(),
                timeout: self.timeout,
            }),
        }
    }

    async fn connect_inner(&self) -> Result<UpstreamConn, UpstreamError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|source| UpstreamError::Unreachable {
                addr: self.display.clone(),
                source,
            })?;
        // Without TCP_NODELAY, Nagle + delayed ACK add ~40 ms to small writes.
        tcp.set_nodelay(true)
            .map_err(|e| self.broken(e.to_string()))?;
        let handshake = Instant::now();
        let mut conn = self
            .tls
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| self.tls_error(e))?;
        if let Some(metrics) = &self.metrics {
            metrics.tls_handshake(handshake.elapsed());
            metrics.tls_version(conn.get_ref().1.protocol_version());
        }
        conn.write_all(&self.hello)
            .await
            .map_err(|e| self.broken(e.to_string()))?;
        let mut buf = BytesMut::with_capacity(256);
        let replies = read_replies(&mut conn, &mut buf, self.hello_replies)
            .await
            .map_err(|e| self.tls_error(e))?;
        for (reply, step) in replies.iter().zip(["AUTH", "SELECT"]) {
            if reply.as_slice() != b"+OK\r\n" {
                let text = String::from_utf8_lossy(reply.strip_prefix(b"-").unwrap_or(reply))
                    .trim_end()
                    .to_owned();
                return Err(UpstreamError::Rejected {
                    addr: self.display.clone(),
                    step,
                    reply: text,
                });
            }
        }
        if !buf.is_empty() {
            return Err(self.broken("Redis sent more replies than requests".to_owned()));
        }
        Ok(conn)
    }

    /// Appends the authentication commands (`AUTH`, and `SELECT` for a non-zero database) to
    /// `out`, for re-authenticating a connection after `RESET`; returns how many replies they
    /// produce.
    pub(crate) fn write_hello(&self, out: &mut BytesMut) -> usize {
        out.extend_from_slice(&self.hello);
        self.hello_replies
    }

    fn broken(&self, reason: String) -> UpstreamError {
        UpstreamError::Broken {
            addr: self.display.clone(),
            reason,
        }
    }

    /// rustls reports handshake failures as `io::Error` wrapping a `rustls::Error`; a server
    /// rejecting our certificate shows up as an alert or, with TLS 1.3, as a reset/EOF on the
    /// first read after the handshake.
    fn tls_error(&self, e: std::io::Error) -> UpstreamError {
        use std::io::ErrorKind;
        let (reason, failure) =
            match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                Some(tls) => (tls.to_string(), TlsFailure::of(tls)),
                None if matches!(e.kind(), ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset) => (
                    "Redis closed the connection during the handshake (it may have rejected redcloak's client \
                     certificate: is REDIS_TLS_CERT signed by a CA in Redis's tls-ca-cert-file?)"
                        .to_owned(),
                    TlsFailure::ClientRejected,
                ),
                None => return self.broken(e.to_string()),
            };
        UpstreamError::Tls {
            addr: self.display.clone(),
            reason,
            failure,
        }
    }
}

/// RESP for `commands`, written straight into a zeroizing buffer sized up front, so the
/// secret inside is never left behind in a grown-and-freed allocation.
fn encode_secret(commands: &[Vec<&[u8]>]) -> Zeroizing<Vec<u8>> {
    let header = |n: usize| 1 + n.to_string().len() + 2;
    let len: usize = commands
        .iter()
        .map(|parts| {
            header(parts.len())
                + parts
                    .iter()
                    .map(|p| header(p.len()) + p.len() + 2)
                    .sum::<usize>()
        })
        .sum();
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    for parts in commands {
        out.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
        for part in parts {
            out.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
            out.extend_from_slice(part);
            out.extend_from_slice(b"\r\n");
        }
    }
    debug_assert_eq!(out.len(), len, "the capacity was computed exactly");
    out
}

/// Reads exactly `n` replies, returning each one's bytes.
async fn read_replies(
    conn: &mut UpstreamConn,
    buf: &mut BytesMut,
    n: usize,
) -> std::io::Result<Vec<Vec<u8>>> {
    let mut scanner = ReplyScanner::new(resp::Limits::default());
    let mut replies = Vec::with_capacity(n);
    while replies.len() < n {
        match scanner
            .scan(buf)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?
        {
            Some(len) => replies.push(buf.split_to(len).to_vec()),
            None => {
                if conn.read_buf(buf).await? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            }
        }
    }
    Ok(replies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_buffer_is_exact_and_parses_as_resp() {
        let hello = encode_secret(&[
            vec![&b"AUTH"[..], b"user", b"p\r\nss"],
            vec![&b"SELECT"[..], b"12"],
        ]);
        assert_eq!(hello.capacity(), hello.len(), "no growth, no unwiped copy");
        let mut parser = redcloak_commands::resp::RequestParser::new(resp::Limits::default());
        let mut buf = bytes::BytesMut::from(&hello[..]);
        let auth = parser.parse(&mut buf).unwrap().unwrap();
        assert_eq!(auth.args[2].as_ref(), b"p\r\nss");
        let select = parser.parse(&mut buf).unwrap().unwrap();
        assert_eq!(select.args[1].as_ref(), b"12");
        assert!(buf.is_empty());
    }

    #[test]
    fn slow_is_not_evidence_of_an_outage() {
        let addr = "127.0.0.1:1".to_owned();
        assert!(!UpstreamError::Timeout {
            addr: addr.clone(),
            timeout: Duration::from_secs(5)
        }
        .is_evidence());
        assert!(UpstreamError::Unreachable {
            addr,
            source: std::io::ErrorKind::ConnectionRefused.into()
        }
        .is_evidence());
    }
}

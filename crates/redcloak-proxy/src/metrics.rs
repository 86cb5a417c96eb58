//! Metrics: what redcloak did, for Prometheus (`GET /metrics` on the admin endpoint).
//!
//! Names follow shared/STYLE.md: the `redcloak_` prefix, counters end in `_total`, units in
//! `_seconds`. Labels come only from the command table (command names) or fixed sets
//! (outcomes, reasons, certificate names): never a key, a value or a secret.
//!
//! Two kinds of metrics:
//! - **events**, recorded where they happen (sessions, the listener, the upstream) through the
//!   methods below: atomics, cheap from any task;
//! - **state** (`redcloak_upstream_up`, `redcloak_fallback_mode`, `redcloak_journal_entries`,
//!   `redcloak_fallback_hits_total`, certificate expiry), read from [`crate::Shared`] when
//!   Prometheus scrapes ([`Metrics::encode`]), so no hot path pushes them.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use redcloak_crypto::DecryptError;

use crate::health::Mode;

/// How a command ended, for `redcloak_commands_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Redis (or redcloak, for local commands) answered with a non-error reply.
    Ok,
    /// Redis answered with an error reply.
    Error,
    /// redcloak refused it (unknown, not supported on encrypted values, operator-only, arity).
    Refused,
    /// Answered from the fallback while Redis was unreachable.
    Fallback,
    /// Could not be served while Redis was unreachable (`TRYAGAIN`).
    Unavailable,
    /// The connection to Redis broke before its reply came: outcome unknown.
    Lost,
}

impl Outcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Refused => "refused",
            Outcome::Fallback => "fallback",
            Outcome::Unavailable => "unavailable",
            Outcome::Lost => "lost",
        }
    }
}

/// Why an upstream connection failed, for `redcloak_upstream_connect_failures_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectFailure {
    /// TCP connect failed.
    Unreachable,
    /// Took longer than the connect timeout.
    Timeout,
    /// TLS handshake failed.
    Tls,
    /// AUTH or SELECT refused.
    Auth,
    /// Broken connection or unexpected reply.
    Broken,
}

impl ConnectFailure {
    /// Every reason (each series exists from the start, at 0, so `rate()` works at once).
    pub const ALL: [ConnectFailure; 5] = [
        ConnectFailure::Unreachable,
        ConnectFailure::Timeout,
        ConnectFailure::Tls,
        ConnectFailure::Auth,
        ConnectFailure::Broken,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectFailure::Unreachable => "unreachable",
            ConnectFailure::Timeout => "timeout",
            ConnectFailure::Tls => "tls",
            ConnectFailure::Auth => "auth",
            ConnectFailure::Broken => "broken",
        }
    }
}

/// The text format a scrape asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text exposition format 0.0.4 (what `curl` and most scrapers get).
    Prometheus,
    /// OpenMetrics 1.0 text (when the scraper's `Accept` header asks for it).
    OpenMetrics,
}

impl Format {
    /// Picks the format from an `Accept` header.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    /// The response's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The state read when Prometheus scrapes (see [`Metrics::encode`]).
#[derive(Debug, Clone, Copy)]
pub struct State<'a> {
    /// The upstream's mode.
    pub mode: Mode,
    /// Writes journaled during the current outage, not yet applied to Redis.
    pub journal_entries: usize,
    /// Commands answered from the fallback since start.
    pub fallback_hits: u64,
    /// Expiry (Unix seconds) of each certificate in use (`client`, `ca`).
    pub cert_expiry: &'a [(&'static str, i64)],
}

type Labels1 = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];
type HistogramFamily = Family<Labels1, Histogram, fn() -> Histogram>;

/// Command latency buckets (seconds): 100 µs to 5 s. A proxied command on loopback takes
/// a few hundred microseconds; seconds mean a slow Redis or a blocking command.
const COMMAND_BUCKETS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// TLS handshake buckets (seconds): a full TLS 1.3 handshake with mTLS is ~0.4 ms on loopback.
const HANDSHAKE_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

fn command_histogram() -> Histogram {
    Histogram::new(COMMAND_BUCKETS)
}

/// The metrics registry (cheap to update from any task).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    connections_open: Gauge,
    connections: Counter,
    commands: Family<Labels2, Counter>,
    command_duration: HistogramFamily,
    encrypted: Counter,
    decrypt_failures: Family<Labels1, Counter>,
    pubsub_dropped: Counter,
    connect_failures: Family<Labels1, Counter>,
    errors: Family<Labels1, Counter>,
    emulation_retries: Family<Labels1, Counter>,
    sessions_pinned: Family<Labels1, Counter>,
    emulation_gave_up: Family<Labels1, Counter>,
    tls_handshake: Histogram,
    /// The TLS version of the last handshake with Redis (`u16` wire value; 0: none yet).
    tls_version: AtomicU16,
    // State, set from `State` at scrape time.
    upstream_up: Gauge,
    fallback_mode: Gauge,
    journal_entries: Gauge,
    fallback_hits: Counter,
    cert_expiry: Family<Labels1, Gauge>,
    /// One scrape at a time: each sets the state metrics, then encodes them.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Registers `metric` under `name` and hands it back.
fn register<M>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M
where
    M: prometheus_client::registry::Metric + Clone,
{
    registry.register(name, help, metric.clone());
    metric
}

impl Metrics {
    /// A new registry, every metric registered (and every fixed-label series at 0).
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("redcloak");
        let connections_open = register(
            &mut registry,
            "connections_open",
            "Client connections open now",
            Gauge::default(),
        );
        let connections = register(
            &mut registry,
            "connections",
            "Client connections accepted",
            Counter::default(),
        );
        let commands = register(
            &mut registry,
            "commands",
            "Commands answered, by command (a name from the command table, or unknown) and \
             outcome (ok, error, refused, fallback, unavailable, lost)",
            Family::<Labels2, Counter>::default(),
        );
        let command_duration: HistogramFamily =
            Family::new_with_constructor(command_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "command_duration",
            "Time from reading a command to answering it, for commands sent to Redis \
             (commands answered by redcloak itself are not counted)",
            Unit::Seconds,
            command_duration.clone(),
        );
        let upstream_up = register(
            &mut registry,
            "upstream_up",
            "1 when Redis is reachable (healthy or recovering), 0 during an outage",
            Gauge::default(),
        );
        let errors = Family::<Labels1, Counter>::default();
        for source in ["client", "upstream", "internal"] {
            drop(errors.get_or_create(&[("source", source)]));
        }
        registry.register(
            "errors",
            "Error replies redcloak made itself, by where the problem came from (client, upstream, internal)",
            errors.clone(),
        );
        let sessions_pinned = register(
            &mut registry,
            "sessions_pinned",
            "Clients moved from a shared upstream connection to one of their own, by the command that needed it (REDCLOAK_SHARED_CONNECTIONS)",
            Family::<Labels1, Counter>::default(),
        );
        let emulation_retries = register(
            &mut registry,
            "emulation_retries",
            "Emulated commands (INCR, HINCRBY, LREM…) run again because a watched key changed under them",
            Family::<Labels1, Counter>::default(),
        );
        let emulation_gave_up = register(
            &mut registry,
            "emulation_gave_up",
            "Emulated commands given up (answered with an error, nothing written) because their key kept changing",
            Family::<Labels1, Counter>::default(),
        );
        let connect_failures = Family::<Labels1, Counter>::default();
        for reason in ConnectFailure::ALL {
            drop(connect_failures.get_or_create(&[("reason", reason.as_str())]));
        }
        registry.register(
            "upstream_connect_failures",
            "Failed connection attempts to Redis, by reason (unreachable, timeout, tls, auth, broken)",
            connect_failures.clone(),
        );
        let tls_handshake = Histogram::new(HANDSHAKE_BUCKETS);
        registry.register_with_unit(
            "tls_handshake",
            "Duration of TLS handshakes with Redis",
            Unit::Seconds,
            tls_handshake.clone(),
        );
        let encrypted = Counter::default();
        registry.register("encrypt", "Values encrypted", encrypted.clone());
        let decrypt_failures = register(&mut registry, "decrypt_failures", "Stored values that could not be decrypted, by reason: not_encrypted (written around redcloak), no_key (a key no longer in the ring), binding (an aes-gcm value moved or copied to another key, database or field), tampered", Family::<Labels1, Counter>::default());
        let pubsub_dropped = register(&mut registry, "pubsub_messages_dropped", "Pub/sub messages not delivered because their payload could not be decrypted (also counted in decrypt_failures)", Counter::default());
        let fallback_mode = register(
            &mut registry,
            "fallback_mode",
            "1 while commands are served from the local cache (degraded or recovering), else 0",
            Gauge::default(),
        );
        let fallback_hits = register(
            &mut registry,
            "fallback_hits",
            "Commands answered from the local cache while Redis was unreachable",
            Counter::default(),
        );
        let journal_entries = register(
            &mut registry,
            "journal_entries",
            "Writes accepted during the current outage and not yet applied to Redis",
            Gauge::default(),
        );
        let cert_expiry = Family::<Labels1, Gauge>::default();
        registry.register_with_unit(
            "cert_expiry_timestamp",
            "Expiry (Unix time) of the certificates in use: client (redcloak's) and ca",
            Unit::Seconds,
            cert_expiry.clone(),
        );
        registry.register(
            "build",
            "redcloak's version",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        Metrics {
            registry,
            connections_open,
            connections,
            commands,
            command_duration,
            encrypted,
            decrypt_failures,
            pubsub_dropped,
            connect_failures,
            errors,
            emulation_retries,
            sessions_pinned,
            emulation_gave_up,
            tls_handshake,
            tls_version: AtomicU16::new(0),
            upstream_up,
            fallback_mode,
            journal_entries,
            fallback_hits,
            cert_expiry,
            scrape: Mutex::new(()),
        }
    }

    /// A client connected (`redcloak_connections_total`, `redcloak_connections_open`).
    pub fn connection_opened(&self) {
        self.connections.inc();
        self.connections_open.inc();
    }

    /// A client disconnected (`redcloak_connections_open`).
    pub fn connection_closed(&self) {
        self.connections_open.dec();
    }

    /// One command answered (`redcloak_commands_total{command,outcome}`,
    /// `redcloak_command_duration_seconds`). `command` is a name from the command table, or
    /// `"unknown"`. A zero `elapsed` means "not timed" (answered by redcloak itself): such
    /// commands are counted but stay out of the latency histogram.
    pub fn command(&self, command: &'static str, outcome: Outcome, elapsed: Duration) {
        self.commands
            .get_or_create(&[("command", command), ("outcome", outcome.as_str())])
            .inc();
        if !elapsed.is_zero() {
            self.command_duration
                .get_or_create(&[("command", command)])
                .observe(elapsed.as_secs_f64());
        }
    }

    /// Values encrypted (`redcloak_encrypt_total`).
    pub fn encrypted(&self, n: u64) {
        self.encrypted.inc_by(n);
    }

    /// A stored value that did not decrypt (`redcloak_decrypt_failures_total{reason}`); for a
    /// pub/sub message, which is then dropped, also `redcloak_pubsub_messages_dropped_total`.
    pub fn decrypt_failure(&self, error: DecryptError, pubsub: bool) {
        let reason = match error {
            DecryptError::NotAToken => "not_encrypted",
            DecryptError::Binding => "binding",
            DecryptError::Tampered => "tampered",
            _ => "no_key",
        };
        self.decrypt_failures
            .get_or_create(&[("reason", reason)])
            .inc();
        if pubsub {
            self.pubsub_dropped.inc();
        }
    }

    /// redcloak answered an error of its own (`redcloak_errors_total{source}`): `client`,
    /// `upstream` or `internal`.
    pub fn error(&self, source: &'static str) {
        self.errors.get_or_create(&[("source", source)]).inc();
    }

    /// A client moved to a connection of its own (`redcloak_sessions_pinned_total{command}`).
    pub fn session_pinned(&self, command: &'static str) {
        self.sessions_pinned
            .get_or_create(&[("command", command)])
            .inc();
    }

    /// An emulated command had to run again (`redcloak_emulation_retries_total{command}`).
    pub fn emulation_retry(&self, command: &'static str) {
        self.emulation_retries
            .get_or_create(&[("command", command)])
            .inc();
    }

    /// An emulated command was given up (`redcloak_emulation_gave_up_total{command}`).
    pub fn emulation_gave_up(&self, command: &'static str) {
        self.emulation_gave_up
            .get_or_create(&[("command", command)])
            .inc();
    }

    /// An upstream connection attempt failed (`redcloak_upstream_connect_failures_total`).
    pub fn connect_failure(&self, reason: ConnectFailure) {
        self.connect_failures
            .get_or_create(&[("reason", reason.as_str())])
            .inc();
    }

    /// A TLS handshake with Redis completed (`redcloak_tls_handshake_seconds`).
    pub fn tls_handshake(&self, elapsed: Duration) {
        self.tls_handshake.observe(elapsed.as_secs_f64());
    }

    /// The TLS version a handshake with Redis negotiated (shown by `/status`).
    pub fn tls_version(&self, version: Option<rustls::ProtocolVersion>) {
        if let Some(v) = version {
            self.tls_version.store(u16::from(v), Ordering::Relaxed);
        }
    }

    /// The TLS version of the last handshake with Redis, if one was recorded.
    pub fn tls_version_in_use(&self) -> Option<&'static str> {
        match rustls::ProtocolVersion::from(self.tls_version.load(Ordering::Relaxed)) {
            rustls::ProtocolVersion::TLSv1_3 => Some("TLS 1.3"),
            rustls::ProtocolVersion::TLSv1_2 => Some("TLS 1.2"),
            _ => None,
        }
    }

    /// Client connections open now.
    pub fn connections_open(&self) -> i64 {
        self.connections_open.get()
    }

    /// Sets the state metrics from `state`, then encodes everything in `format`.
    pub fn encode(&self, state: &State<'_>, format: Format) -> String {
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        self.upstream_up
            .set(i64::from(state.mode != Mode::Degraded));
        self.fallback_mode
            .set(i64::from(state.mode != Mode::Healthy));
        self.journal_entries
            .set(i64::try_from(state.journal_entries).unwrap_or(i64::MAX));
        self.fallback_hits
            .inner()
            .store(state.fallback_hits, Ordering::Relaxed);
        // Certificates are replaced on reload (and the CA may not be known): rebuild.
        self.cert_expiry.clear();
        for &(cert, not_after) in state.cert_expiry {
            self.cert_expiry
                .get_or_create(&[("cert", cert)])
                .set(not_after);
        }
        let mut out = String::with_capacity(8 * 1024);
        // Writing to a String cannot fail; the encoders only fail on a failing writer.
        let _ = match format {
            Format::Prometheus => prometheus_text::encode(&mut out, &self.registry),
            Format::OpenMetrics => text::encode(&mut out, &self.registry),
        };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> State<'static> {
        State {
            mode: Mode::Healthy,
            journal_entries: 0,
            fallback_hits: 0,
            cert_expiry: &[("client", 1_900_000_000), ("ca", 2_000_000_000)],
        }
    }

    /// The value of one exact series (name and labels as encoded).
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn events_are_counted_under_the_documented_names() {
        let m = Metrics::new();
        m.connection_opened();
        m.connection_opened();
        m.connection_closed();
        m.command("GET", Outcome::Ok, Duration::from_micros(300));
        m.command("GET", Outcome::Ok, Duration::from_micros(300));
        m.command("PING", Outcome::Ok, Duration::ZERO);
        m.command("unknown", Outcome::Refused, Duration::ZERO);
        m.encrypted(3);
        m.decrypt_failure(DecryptError::Binding, false);
        m.connect_failure(ConnectFailure::Timeout);
        m.tls_handshake(Duration::from_millis(1));
        let t = m.encode(&healthy(), Format::Prometheus);
        for (series, expected) in [
            ("redcloak_connections_open", 1.0),
            ("redcloak_connections_total", 2.0),
            (
                r#"redcloak_commands_total{command="GET",outcome="ok"}"#,
                2.0,
            ),
            (
                r#"redcloak_commands_total{command="PING",outcome="ok"}"#,
                1.0,
            ),
            (
                r#"redcloak_commands_total{command="unknown",outcome="refused"}"#,
                1.0,
            ),
            (
                r#"redcloak_command_duration_seconds_count{command="GET"}"#,
                2.0,
            ),
            ("redcloak_encrypt_total", 3.0),
            (r#"redcloak_decrypt_failures_total{reason="binding"}"#, 1.0),
            (
                r#"redcloak_upstream_connect_failures_total{reason="timeout"}"#,
                1.0,
            ),
            (
                r#"redcloak_upstream_connect_failures_total{reason="tls"}"#,
                0.0,
            ),
            ("redcloak_tls_handshake_seconds_count", 1.0),
            ("redcloak_upstream_up", 1.0),
            ("redcloak_fallback_mode", 0.0),
            ("redcloak_journal_entries", 0.0),
            ("redcloak_fallback_hits_total", 0.0),
            (
                r#"redcloak_cert_expiry_timestamp_seconds{cert="client"}"#,
                1.9e9,
            ),
            (r#"redcloak_cert_expiry_timestamp_seconds{cert="ca"}"#, 2e9),
            (
                &format!(
                    r#"redcloak_build_info{{version="{}"}}"#,
                    env!("CARGO_PKG_VERSION")
                ),
                1.0,
            ),
        ] {
            assert_eq!(value(&t, series), Some(expected), "{series} in:\n{t}");
        }
        // Locally answered commands are not timed.
        assert!(
            !t.contains(r#"command_duration_seconds_count{command="PING"}"#),
            "{t}"
        );
    }

    #[test]
    fn state_is_read_at_scrape_time() {
        let m = Metrics::new();
        let degraded = State {
            mode: Mode::Degraded,
            journal_entries: 7,
            fallback_hits: 12,
            cert_expiry: &[("client", 5)],
        };
        let t = m.encode(&degraded, Format::Prometheus);
        assert_eq!(value(&t, "redcloak_upstream_up"), Some(0.0), "{t}");
        assert_eq!(value(&t, "redcloak_fallback_mode"), Some(1.0), "{t}");
        assert_eq!(value(&t, "redcloak_journal_entries"), Some(7.0), "{t}");
        assert_eq!(value(&t, "redcloak_fallback_hits_total"), Some(12.0), "{t}");
        assert!(!t.contains(r#"cert="ca""#), "{t}");
        let recovering = State {
            mode: Mode::Recovering,
            ..degraded
        };
        let t = m.encode(&recovering, Format::Prometheus);
        assert_eq!(value(&t, "redcloak_upstream_up"), Some(1.0), "{t}");
        assert_eq!(value(&t, "redcloak_fallback_mode"), Some(1.0), "{t}");
    }

    #[test]
    fn openmetrics_on_request() {
        let m = Metrics::new();
        let format = Format::from_accept(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        ));
        assert_eq!(format, Format::OpenMetrics);
        let t = m.encode(&healthy(), format);
        assert!(t.ends_with("# EOF\n"), "{t}");
        assert!(t.contains("# TYPE redcloak_connections counter"), "{t}");
        assert_eq!(Format::from_accept(Some("*/*")), Format::Prometheus);
        assert_eq!(Format::from_accept(None), Format::Prometheus);
    }

    #[test]
    fn tls_version_is_remembered() {
        let m = Metrics::new();
        assert_eq!(m.tls_version_in_use(), None);
        m.tls_version(Some(rustls::ProtocolVersion::TLSv1_3));
        assert_eq!(m.tls_version_in_use(), Some("TLS 1.3"));
    }
}

//! Hot reload: certificates, CA, password and key ring are re-read on SIGHUP and when their
//! files change (Kubernetes rotates mounted Secrets in place), and swapped into [`Shared`]
//! only when the new configuration passes every rule.
//!
//! How the configuration is read is not decided here: [`watch`] calls back into the binary
//! (flags, configuration file, process environment, then the TLS builder), so `redcloak run`
//! and a reload read it the same way, and this module stays free of argument handling.
//!
//! # Security
//! A configuration that fails the policy is never applied: the previous credentials stay in
//! use and the problems are reported in full. Connections already open keep the material
//! they were made with.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use redcloak_config::{Config, Problem};
use rustls::ClientConfig;
use tracing::{error, info};

use crate::Shared;

/// How often the certificate, key and secret files are checked for changes (Kubernetes
/// rotates mounted Secrets in place).
pub const RELOAD_POLL: Duration = Duration::from_secs(2);

/// What re-reading the configuration gave: a configuration that passed every rule with its
/// TLS client configuration, or every failure (reported as they are).
pub type Reevaluated = Result<(Config, Arc<ClientConfig>), Vec<Problem>>;

/// Reloads on SIGHUP and when one of the files `config` was read from changes, for as long
/// as the returned future runs (spawn it). `reevaluate` reads and checks the whole
/// configuration again.
pub fn watch(
    shared: Arc<Shared>,
    config: &Config,
    reevaluate: impl Fn() -> Reevaluated + Send + 'static,
) -> impl Future<Output = ()> + Send + 'static {
    let mut files = watched_files(config);
    async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = signal(SignalKind::hangup()).ok();
        let mut seen = fingerprint(&files);
        let mut tick = tokio::time::interval(RELOAD_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let reason = tokio::select! {
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
                _ = tick.tick() => {
                    let now = fingerprint(&files);
                    if now == seen {
                        continue;
                    }
                    "a certificate, key or secret file changed"
                }
            };
            if let Some(new_files) = reload(&shared, reevaluate(), reason) {
                files = new_files;
            }
            seen = fingerprint(&files);
        }
    }
}

/// Swaps the credentials if the new configuration passed every rule. Returns the files to
/// watch from now on.
fn reload(shared: &Shared, reevaluated: Reevaluated, reason: &str) -> Option<Vec<PathBuf>> {
    match reevaluated {
        Ok((config, tls)) => {
            shared.reload(&config, tls);
            let ids: Vec<String> = config
                .key_ring
                .key_ids()
                .iter()
                .map(ToString::to_string)
                .collect();
            info!(reason, keys = %ids.join(","), "reloaded certificates, password and keys; new connections use them");
            Some(watched_files(&config))
        }
        Err(problems) => {
            let failures: Vec<String> = problems.iter().map(ToString::to_string).collect();
            error!(reason, problems = failures.len(), "reload rejected: the new configuration fails the policy; the previous credentials stay in use");
            for f in failures {
                eprintln!("{f}\n");
            }
            None
        }
    }
}

/// The files whose change triggers a reload.
fn watched_files(config: &Config) -> Vec<PathBuf> {
    let mut files = vec![config.tls.files.cert.clone(), config.tls.files.key.clone()];
    files.extend(config.tls.files.ca_cert.clone());
    files.extend(config.config_file.clone());
    for var in ["REDIS_PASSWORD_FILE", "REDIS_ENCRYPTION_KEY_FILE"] {
        files.extend(std::env::var_os(var).map(PathBuf::from));
    }
    files
}

/// Modification time and size of each file (following symlinks, as Kubernetes swaps them).
fn fingerprint(files: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_or_missing_file_changes_the_fingerprint() {
        let dir = std::env::temp_dir().join(format!("redcloak-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("secret");
        std::fs::write(&secret, "one").unwrap();
        let files = vec![secret.clone(), dir.join("missing")];
        let first = fingerprint(&files);
        assert!(first[0].is_some() && first[1].is_none());
        assert_eq!(fingerprint(&files), first);
        std::fs::write(&secret, "three").unwrap(); // another size, whatever the clock says
        assert_ne!(fingerprint(&files), first);
        std::fs::remove_file(&secret).unwrap();
        assert_eq!(fingerprint(&files), vec![None, None]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

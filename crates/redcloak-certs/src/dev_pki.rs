//! [`write_dev_pki`]: a CA, a Redis server certificate and a client
//! certificate on disk, ready for `redis-server --tls-auth-clients yes`.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::{Ca, CertError, Validity};

/// Server SANs always included: how the proxy and tools usually reach a
/// local or containerised Redis.
const DEFAULT_SERVER_SANS: [&str; 4] = ["localhost", "127.0.0.1", "::1", "redis"];

const CA_COMMON_NAME: &str = "redcloak development CA";
const SERVER_COMMON_NAME: &str = "redis";
const CLIENT_COMMON_NAME: &str = "redcloak";

/// Where [`write_dev_pki`] put each file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevPki {
    /// `ca.crt`: trusted by Redis (`tls-ca-cert-file`) and by the proxy.
    pub ca_cert: PathBuf,
    /// `ca.key`: only needed to issue more certificates; keep it away from
    /// Redis and the proxy.
    pub ca_key: PathBuf,
    /// `redis.crt`: Redis's server certificate (`tls-cert-file`).
    pub server_cert: PathBuf,
    /// `redis.key`: Redis's private key (`tls-key-file`).
    pub server_key: PathBuf,
    /// `client.crt`: the proxy's client certificate for mutual TLS.
    pub client_cert: PathBuf,
    /// `client.key`: the proxy's client private key.
    pub client_key: PathBuf,
}

impl DevPki {
    fn in_dir(dir: &Path) -> DevPki {
        DevPki {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("redis.crt"),
            server_key: dir.join("redis.key"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
        }
    }

    /// All six paths, certificates before keys.
    pub fn paths(&self) -> [&Path; 6] {
        [
            &self.ca_cert,
            &self.server_cert,
            &self.client_cert,
            &self.ca_key,
            &self.server_key,
            &self.client_key,
        ]
    }
}

/// Writes a development PKI into `dir`: `ca.crt`, `ca.key`, `redis.crt`,
/// `redis.key`, `client.crt`, `client.key`, all valid for `validity_days`
/// days (from an hour ago).
///
/// The server certificate's SANs are `localhost`, `127.0.0.1`, `::1`,
/// `redis` and `extra_sans` (each an IP address or a DNS name).
///
/// # Security
///
/// - `dir` is created with mode 0700 if it is missing (an existing directory
///   keeps its mode).
/// - Keys are created with mode 0600 and certificates 0644 (less the umask).
///   Files are always created fresh (`O_CREAT | O_EXCL`) with their mode, never
///   chmod-ed afterwards, so a key is never readable by others even briefly,
///   and a symlink planted at one of the paths is not followed.
/// - Never overwrites by accident: if any of the six files exists and `force`
///   is false, returns [`CertError::AlreadyExists`] without writing anything
///   (regenerating would break Redis and every client set up with the old
///   files). With `force`, existing files are removed and created anew.
/// - Everything is generated before the first file is written; if writing
///   fails, the files written so far are removed again.
pub fn write_dev_pki(
    dir: &Path,
    extra_sans: &[String],
    validity_days: u32,
    force: bool,
) -> Result<DevPki, CertError> {
    if validity_days == 0 {
        return Err(CertError::InvalidValidity {
            reason: "certificates must be valid for at least 1 day",
        });
    }
    let pki = DevPki::in_dir(dir);
    if !force {
        for path in pki.paths() {
            if exists(path)? {
                return Err(CertError::AlreadyExists {
                    path: path.to_owned(),
                });
            }
        }
    }

    let mut sans: Vec<&str> = DEFAULT_SERVER_SANS.to_vec();
    for san in extra_sans {
        if !sans.contains(&san.as_str()) {
            sans.push(san);
        }
    }
    let validity = Validity::days(validity_days);
    let ca = Ca::new(CA_COMMON_NAME, validity)?;
    let server = ca.issue_server(SERVER_COMMON_NAME, &sans, validity)?;
    let client = ca.issue_client(CLIENT_COMMON_NAME, validity)?;

    create_dir(dir)?;
    let files: [(&Path, &str, u32); 6] = [
        (&pki.ca_key, ca.key_pem(), KEY_MODE),
        (&pki.server_key, server.key_pem(), KEY_MODE),
        (&pki.client_key, client.key_pem(), KEY_MODE),
        (&pki.ca_cert, ca.cert_pem(), CERT_MODE),
        (&pki.server_cert, &server.cert_pem, CERT_MODE),
        (&pki.client_cert, &client.cert_pem, CERT_MODE),
    ];
    let mut written: Vec<&Path> = Vec::with_capacity(files.len());
    for (path, contents, mode) in files {
        if let Err(err) = write_new(path, contents, mode, force) {
            for done in written {
                let _ = fs::remove_file(done);
            }
            return Err(err);
        }
        written.push(path);
    }
    Ok(pki)
}

const KEY_MODE: u32 = 0o600;
const CERT_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o700;

/// Whether anything (a file, a directory, a dangling symlink) is at `path`.
fn exists(path: &Path) -> Result<bool, CertError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(CertError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

fn create_dir(dir: &Path) -> Result<(), CertError> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir).map_err(|source| CertError::Io {
        path: dir.to_owned(),
        source,
    })
}

/// Creates `path` with `mode` (failing if it exists) and writes `contents`.
/// With `force`, whatever is at `path` is removed first, so the new file gets
/// `mode` instead of inheriting the old file's permissions.
fn write_new(path: &Path, contents: &str, mode: u32, force: bool) -> Result<(), CertError> {
    let io_error = |source| CertError::Io {
        path: path.to_owned(),
        source,
    };
    if force {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(e)),
        }
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            // Appeared after the check (another run racing with this one).
            CertError::AlreadyExists {
                path: path.to_owned(),
            }
        } else {
            io_error(e)
        }
    })?;
    file.write_all(contents.as_bytes()).map_err(io_error)?;
    file.sync_all().map_err(io_error)
}

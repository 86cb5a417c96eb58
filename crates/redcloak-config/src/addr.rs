//! Address newtypes that make insecure states unrepresentable: a [`ListenAddr`] is loopback
//! or a Unix socket; an [`UpstreamUrl`] is `rediss://`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use crate::Secret;

/// Where redcloak listens for plaintext RESP from the application.
///
/// # Security
/// The application side is plaintext, so it must not leave the host: only loopback addresses
/// (`127.0.0.0/8`, `::1`, `localhost`) and Unix sockets are representable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A loopback TCP address.
    Tcp(SocketAddr),
    /// A Unix socket path (`unix:/path`).
    Unix(PathBuf),
}

/// Why a listen address was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListenAddrError {
    /// Not `host:port` or `unix:/path`.
    #[error("'{0}' is not an address (expected host:port, [::1]:port or unix:/path)")]
    Malformed(String),
    /// A routable address: plaintext would leave the host.
    #[error("'{0}' is not a loopback address: the application side of redcloak is plaintext and must not leave the host")]
    NotLoopback(String),
}

impl ListenAddr {
    /// Parses `127.0.0.1:6379`, `[::1]:6379`, `localhost:6379` or `unix:/run/redcloak.sock`.
    pub fn parse(s: &str) -> Result<Self, ListenAddrError> {
        let s = s.trim();
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(ListenAddrError::Malformed(s.to_owned()));
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| ListenAddrError::Malformed(s.to_owned()))?;
        let port: u16 = port
            .parse()
            .map_err(|_| ListenAddrError::Malformed(s.to_owned()))?;
        let ip = if host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            let bare = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            bare.parse::<IpAddr>().map_err(|_| {
                if bare.is_empty() || bare.contains(char::is_whitespace) {
                    ListenAddrError::Malformed(s.to_owned())
                } else {
                    // A host name other than localhost could resolve anywhere.
                    ListenAddrError::NotLoopback(s.to_owned())
                }
            })?
        };
        if !ip.is_loopback() {
            return Err(ListenAddrError::NotLoopback(s.to_owned()));
        }
        Ok(ListenAddr::Tcp(SocketAddr::new(ip, port)))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(addr) => write!(f, "{addr}"),
            ListenAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Permissions of the Unix socket redcloak listens on (`listen_mode`,
/// `REDCLOAK_LISTEN_MODE`), octal like `chmod`: `0600` (the default, only redcloak's user may
/// connect) or `0660` (also its group).
///
/// # Security
/// Anyone who can connect reads every value in plaintext, so access for all users (any of
/// the `o+rwx` bits) is not representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketMode(u32);

/// Why a socket mode was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SocketModeError {
    /// Not 3 or 4 octal digits up to 0777.
    #[error("'{0}' is not a file mode (expected octal like 0600 or 0660)")]
    Malformed(String),
    /// Grants access to every user.
    #[error("{0:04o} lets every user on the machine connect and read all values in plaintext")]
    WorldAccess(u32),
}

impl SocketMode {
    /// Owner only.
    pub const DEFAULT: SocketMode = SocketMode(0o600);

    /// Parses `600`, `0600`, `0o660`.
    pub fn parse(s: &str) -> Result<SocketMode, SocketModeError> {
        let t = s.trim();
        let digits = t.strip_prefix("0o").unwrap_or(t);
        let mode = (!digits.is_empty() && digits.len() <= 4)
            .then(|| u32::from_str_radix(digits, 8).ok())
            .flatten()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| SocketModeError::Malformed(t.chars().take(20).collect()))?;
        if mode & 0o007 != 0 {
            return Err(SocketModeError::WorldAccess(mode));
        }
        Ok(SocketMode(mode))
    }

    /// The permission bits.
    pub fn bits(self) -> u32 {
        self.0
    }
}

impl Default for SocketMode {
    fn default() -> Self {
        SocketMode::DEFAULT
    }
}

impl fmt::Display for SocketMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

/// The host part of the upstream URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A DNS name, verified against the certificate's DNS SANs.
    Dns(String),
    /// An IP literal, verified against the certificate's IP SANs.
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Dns(name) => f.write_str(name),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// The real Redis: always `rediss://` (TLS).
///
/// `rediss://[[username]:password@]host[:port][/db]`; the port defaults to 6379 and the
/// database to 0. Credentials in the URL are accepted (many apps already have such a
/// `REDIS_URL`) and are never printed: `Display` shows only scheme, host, port and database.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    /// Host name or IP the certificate must match.
    pub host: Host,
    /// TCP port.
    pub port: u16,
    /// Database selected on every upstream connection.
    pub db: u32,
    /// ACL user from the URL, if any.
    pub username: Option<String>,
    /// Password from the URL, if any.
    pub password: Option<Secret>,
}

/// Why an upstream URL was rejected. Messages never include the URL's credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamUrlError {
    /// `redis://`: plaintext.
    #[error("REDIS_URL uses redis:// (plaintext)")]
    Plaintext,
    /// Another scheme or no scheme.
    #[error("REDIS_URL does not start with rediss://")]
    Scheme,
    /// Host, port or database unreadable.
    #[error("REDIS_URL is malformed: {0}")]
    Malformed(&'static str),
}

impl UpstreamUrl {
    /// Parses and checks a URL.
    pub fn parse(s: &str) -> Result<Self, UpstreamUrlError> {
        let s = s.trim();
        let lower = s.get(..9).map(str::to_ascii_lowercase).unwrap_or_default();
        let rest = if lower == "rediss://" {
            &s[9..]
        } else if lower.starts_with("redis://") {
            return Err(UpstreamUrlError::Plaintext);
        } else {
            return Err(UpstreamUrlError::Scheme);
        };
        if rest.contains(['?', '#']) {
            return Err(UpstreamUrlError::Malformed(
                "query parameters are not supported (configure TLS with the REDIS_TLS_* variables)",
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, pass) = match info.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (info, None),
                };
                let user = percent_decode(user)
                    .ok_or(UpstreamUrlError::Malformed("bad %-escape in the user name"))?;
                let pass = match pass {
                    Some(p) => Some(Secret::new(
                        percent_decode(p)
                            .ok_or(UpstreamUrlError::Malformed("bad %-escape in the password"))?,
                    )),
                    None => None,
                };
                (
                    (!user.is_empty()).then_some(user),
                    pass.filter(|p| !p.is_empty()),
                )
            }
        };
        let (host, port) = split_host_port(hostport)?;
        let db = if path.is_empty() {
            0
        } else {
            path.parse().map_err(|_| {
                UpstreamUrlError::Malformed("the database after '/' must be a number")
            })?
        };
        Ok(UpstreamUrl {
            host,
            port,
            db,
            username,
            password,
        })
    }
}

fn split_host_port(hostport: &str) -> Result<(Host, u16), UpstreamUrlError> {
    const DEFAULT_PORT: u16 = 6379;
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or(UpstreamUrlError::Malformed("unclosed '[' in the host"))?;
        let ip: Ipv6Addr = ip
            .parse()
            .map_err(|_| UpstreamUrlError::Malformed("bad IPv6 address"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => {
                return Err(UpstreamUrlError::Malformed(
                    "unexpected text after the IPv6 address",
                ))
            }
        };
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        let (h, p) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        };
        if h.is_empty() {
            return Err(UpstreamUrlError::Malformed("the host is empty"));
        }
        let host = match h.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_)
                if h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') =>
            {
                Host::Dns(h.to_ascii_lowercase())
            }
            Err(_) => {
                return Err(UpstreamUrlError::Malformed(
                    "the host is not a DNS name or IP address",
                ))
            }
        };
        (host, p)
    };
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p.parse().map_err(|_| {
            UpstreamUrlError::Malformed("the port must be a number from 1 to 65535")
        })?,
    };
    if port == 0 {
        return Err(UpstreamUrlError::Malformed(
            "the port must be a number from 1 to 65535",
        ));
    }
    Ok((host, port))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rediss://{}:{}/{}", self.host, self.port, self.db)
    }
}

impl fmt::Debug for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_accepts_only_loopback_and_unix() {
        assert_eq!(
            ListenAddr::parse("127.0.0.1:6379").unwrap().to_string(),
            "127.0.0.1:6379"
        );
        assert_eq!(
            ListenAddr::parse("127.8.9.1:1").unwrap().to_string(),
            "127.8.9.1:1"
        );
        assert_eq!(
            ListenAddr::parse("[::1]:6379").unwrap().to_string(),
            "[::1]:6379"
        );
        assert_eq!(
            ListenAddr::parse("localhost:7000").unwrap().to_string(),
            "127.0.0.1:7000"
        );
        assert_eq!(
            ListenAddr::parse("unix:/tmp/r.sock").unwrap(),
            ListenAddr::Unix("/tmp/r.sock".into())
        );
        for bad in [
            "0.0.0.0:6379",
            "[::]:6379",
            "10.0.0.1:6379",
            "example.com:6379",
            "192.168.1.2:1",
        ] {
            assert!(
                matches!(ListenAddr::parse(bad), Err(ListenAddrError::NotLoopback(_))),
                "{bad}"
            );
        }
        for bad in [
            "",
            "6379",
            "127.0.0.1",
            "127.0.0.1:x",
            "127.0.0.1:99999",
            "unix:",
        ] {
            assert!(
                matches!(ListenAddr::parse(bad), Err(ListenAddrError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn socket_modes() {
        for (text, bits) in [
            ("600", 0o600),
            ("0600", 0o600),
            ("0o660", 0o660),
            (" 0640 ", 0o640),
            ("0", 0),
        ] {
            assert_eq!(
                SocketMode::parse(text).map(SocketMode::bits),
                Ok(bits),
                "{text}"
            );
        }
        assert_eq!(SocketMode::default().to_string(), "0600");
        for world in ["0666", "0606", "777", "0601", "0o604"] {
            assert!(
                matches!(
                    SocketMode::parse(world),
                    Err(SocketModeError::WorldAccess(_))
                ),
                "{world}"
            );
        }
        for bad in [
            "",
            "rw-------",
            "0800",
            "1777",
            "04600",
            "-600",
            "0x180",
            "6 00",
        ] {
            assert!(
                matches!(SocketMode::parse(bad), Err(SocketModeError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn upstream_url_is_rediss_only() {
        let u = UpstreamUrl::parse("rediss://localhost:6380/2").unwrap();
        assert_eq!(
            (u.host.clone(), u.port, u.db),
            (Host::Dns("localhost".into()), 6380, 2)
        );
        assert_eq!(u.to_string(), "rediss://localhost:6380/2");
        let u = UpstreamUrl::parse("REDISS://127.0.0.1").unwrap();
        assert_eq!(
            (u.host, u.port, u.db),
            (Host::Ip([127, 0, 0, 1].into()), 6379, 0)
        );
        let u = UpstreamUrl::parse("rediss://[::1]:7000").unwrap();
        assert_eq!(u.to_string(), "rediss://[::1]:7000/0");
        assert_eq!(
            UpstreamUrl::parse("redis://localhost:6379"),
            Err(UpstreamUrlError::Plaintext)
        );
        assert_eq!(
            UpstreamUrl::parse("http://x"),
            Err(UpstreamUrlError::Scheme)
        );
        assert_eq!(
            UpstreamUrl::parse("localhost:6379"),
            Err(UpstreamUrlError::Scheme)
        );
        for bad in [
            "rediss://",
            "rediss://:6379",
            "rediss://h:0",
            "rediss://h:x",
            "rediss://h/db",
            "rediss://h?ssl_cert_reqs=none",
            "rediss://bad host",
        ] {
            assert!(
                matches!(UpstreamUrl::parse(bad), Err(UpstreamUrlError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn url_credentials_are_parsed_and_never_printed() {
        let u = UpstreamUrl::parse("rediss://app:s3cr%40t-pass@redis.internal:6380/1").unwrap();
        assert_eq!(u.username.as_deref(), Some("app"));
        assert_eq!(u.password.as_ref().map(Secret::expose), Some("s3cr@t-pass"));
        assert!(!u.to_string().contains("s3cr") && !format!("{u:?}").contains("s3cr"));
        let u = UpstreamUrl::parse("rediss://:only-a-password@h").unwrap();
        assert_eq!(
            (u.username, u.password.map(|p| p.expose().to_owned())),
            (None, Some("only-a-password".into()))
        );
    }
}

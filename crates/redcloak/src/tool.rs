//! `redcloak encrypt` / `redcloak decrypt`: one value from stdin to stdout, with the key ring
//! redcloak uses, for operators looking at stored data.
//!
//! The ring comes from `REDIS_ENCRYPTION_KEY` or `REDIS_ENCRYPTION_KEY_FILE`, exactly as for
//! `run` (nothing else of the configuration is needed). Plaintext is read and written as raw
//! bytes (no newline added); ciphertext is raw bytes too, or hex with `--hex` (AES-GCM
//! envelopes and member ciphertexts are binary). What opened a value — key id, format, Fernet
//! timestamp — goes to stderr, so that stdout is only the value.

use std::io::{Read, Write};
use std::process::ExitCode;

use redcloak_config::x509::UtcTime;
use redcloak_crypto::{Binding, KeyRing, ValueFormat};

use crate::EX_CONFIG;

/// Where a value lives, for the key-bound format.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Place {
    /// The Redis key the value is (or will be) stored under: needed for the key-bound
    /// aes-gcm format, ignored by Fernet.
    #[arg(long, value_name = "KEY")]
    key_name: Option<String>,
    /// The hash field whose value it is (a stream entry's value is bound to its key only).
    #[arg(long, value_name = "FIELD", requires = "key_name")]
    field: Option<String>,
    /// The database it is stored in.
    #[arg(long, default_value_t = 0, requires = "key_name")]
    db: u32,
    /// The value is a set / sorted-set / geo member (deterministic AES-SIV), not a value.
    #[arg(long, conflicts_with_all = ["key_name", "format"])]
    member: bool,
    /// Encrypt: write a Fernet token as hex too (aes-gcm envelopes and members always are).
    /// Decrypt accepts hex or raw bytes either way.
    #[arg(long)]
    hex: bool,
    /// Format to write (encrypt only) [default: REDCLOAK_VALUE_FORMAT, else fernet].
    #[arg(long, value_name = "fernet|aes-gcm")]
    format: Option<String>,
}

impl Place {
    fn binding(&self) -> Binding<'_> {
        let key = self.key_name.as_deref().unwrap_or_default().as_bytes();
        match &self.field {
            Some(f) => Binding::field(self.db, key, f.as_bytes()),
            None => Binding::key(self.db, key),
        }
    }
}

/// The ring from the environment, or the reason there is none.
fn ring() -> Result<KeyRing, String> {
    let fix = "set REDIS_ENCRYPTION_KEY (comma-separated keys, newest first) or \
               REDIS_ENCRYPTION_KEY_FILE, as for `redcloak run`";
    let parsed = match (
        std::env::var("REDIS_ENCRYPTION_KEY")
            .ok()
            .filter(|v| !v.is_empty()),
        std::env::var_os("REDIS_ENCRYPTION_KEY_FILE"),
    ) {
        (Some(list), _) => KeyRing::parse(&list),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "error: cannot read REDIS_ENCRYPTION_KEY_FILE ({}): {e}\n  fix: {fix}",
                    std::path::Path::new(&path).display()
                )
            })?;
            KeyRing::parse_file(&text)
        }
        (None, None) => {
            return Err(format!(
                "error: no encryption key is configured\n  required: the key ring redcloak uses\n  fix: {fix}"
            ))
        }
    };
    parsed.map_err(|e| format!("error: the key ring is invalid: {e}\n  fix: {fix}"))
}

fn stdin_bytes() -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| format!("error: cannot read stdin: {e}"))?;
    Ok(buf)
}

fn write_out(bytes: &[u8]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &[u8]) -> Option<Vec<u8>> {
    let text: Vec<u8> = text
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if text.len() % 2 != 0 {
        return None;
    }
    text.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

/// `redcloak encrypt`.
pub(crate) fn encrypt(place: &Place) -> ExitCode {
    let (ring, plain) = match (ring(), stdin_bytes()) {
        (Ok(r), Ok(p)) => (r, p),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    // As `redcloak run` would write it: --format, else REDCLOAK_VALUE_FORMAT, else Fernet.
    let configured = std::env::var("REDCLOAK_VALUE_FORMAT")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let format = match place
        .format
        .as_deref()
        .or(configured.as_deref())
        .map(str::parse::<ValueFormat>)
    {
        None => ValueFormat::Fernet,
        Some(Ok(f)) => f,
        Some(Err(e)) => {
            eprintln!("error: --format: {e}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    if format == ValueFormat::AesGcm && place.key_name.is_none() && !place.member {
        eprintln!(
            "error: the aes-gcm format binds a value to where it is stored\n  required: --key-name KEY (and --field FIELD for a hash or stream field, --db N)"
        );
        return ExitCode::from(EX_CONFIG);
    }
    let sealed = if place.member {
        ring.encrypt_member(&plain)
    } else {
        ring.clone()
            .with_format(format)
            .encrypt_value(&plain, &place.binding())
    };
    eprintln!(
        "encrypted {} bytes with {} ({})",
        plain.len(),
        ring.key_ids()[0],
        if place.member {
            "aes-siv member"
        } else {
            format.as_str()
        }
    );
    if place.hex || format == ValueFormat::AesGcm || place.member {
        // Binary formats always go out as hex: a terminal would mangle them.
        write_out(format!("{}\n", hex(&sealed)).as_bytes())
    } else {
        write_out(&[&sealed[..], b"\n"].concat())
    }
}

/// `redcloak decrypt`.
pub(crate) fn decrypt(place: &Place) -> ExitCode {
    let (ring, input) = match (ring(), stdin_bytes()) {
        (Ok(r), Ok(p)) => (r, p),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    // Hex never starts with `g` (a Fernet token) nor 0xC1 / 0xF5 (binary envelopes).
    let stored = if let Some(b) = unhex(&input).filter(|b| !b.is_empty()) {
        b
    } else {
        // A Fernet token is ASCII: a trailing newline from `echo` or redis-cli is not part
        // of it. Binary input is taken as it is.
        let mut b = input;
        if b.first() == Some(&b'g') {
            while b.last().is_some_and(u8::is_ascii_whitespace) {
                b.pop();
            }
        }
        b
    };
    let ids = ring
        .key_ids()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if place.member {
        return match ring.decrypt_member(&stored) {
            Ok(m) => {
                eprintln!("opened: aes-siv member, key {}", m.key_id);
                write_out(&m.plaintext)
            }
            Err(e) => {
                eprintln!("error: {e}\n  ring: {ids}");
                ExitCode::FAILURE
            }
        };
    }
    let looks_bound =
        redcloak_crypto::inspect(&stored).is_some_and(|i| i.format == ValueFormat::AesGcm);
    if looks_bound && place.key_name.is_none() {
        eprintln!(
            "error: this is a key-bound aes-gcm envelope\n  required: where it is stored: --key-name KEY (and --field FIELD for a hash or stream field, --db N)"
        );
        return ExitCode::from(EX_CONFIG);
    }
    match ring.decrypt_value(&stored, &place.binding()) {
        Ok(o) => {
            let when = o
                .timestamp
                .map(|t| {
                    format!(
                        ", written {}",
                        UtcTime(i64::try_from(t).unwrap_or(i64::MAX))
                    )
                })
                .unwrap_or_default();
            eprintln!("opened: {}, key {}{when}", o.format, o.key_id);
            write_out(&o.plaintext)
        }
        Err(e) => {
            eprintln!("error: {e}\n  ring: {ids}");
            ExitCode::FAILURE
        }
    }
}

//! `write_dev_pki`: file set, permissions, and never overwriting by accident.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{openssl_ok, path_str};
use redcloak_certs::{write_dev_pki, CertError, DevPki};

const NAMES: [&str; 6] = [
    "ca.crt",
    "ca.key",
    "redis.crt",
    "redis.key",
    "client.crt",
    "client.key",
];

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn writes_six_files_with_tight_permissions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nested/certs");
    let pki = write_dev_pki(&dir, &[], 30, false).unwrap();

    assert_eq!(
        pki,
        DevPki {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("redis.crt"),
            server_key: dir.join("redis.key"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
        }
    );
    let mut expected: Vec<String> = NAMES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(listing(&dir), expected);

    assert_eq!(mode(&dir), 0o700, "created directory");
    for key in [&pki.ca_key, &pki.server_key, &pki.client_key] {
        assert_eq!(mode(key), 0o600, "{}", key.display());
        let pem = fs::read_to_string(key).unwrap();
        assert!(
            pem.starts_with(concat!("-----BEGIN ", "PRIVATE KEY-----")),
            "{pem}"
        );
    }
    for cert in [&pki.ca_cert, &pki.server_cert, &pki.client_cert] {
        // 0644 less the umask (022 or stricter); never group/world-writable.
        let m = mode(cert);
        assert_eq!(m & 0o022, 0, "{}: {m:o}", cert.display());
        assert_eq!(m & 0o600, 0o600, "{}: {m:o}", cert.display());
        let pem = fs::read_to_string(cert).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    }

    let ca = path_str(&pki.ca_cert);
    openssl_ok(&[
        "verify",
        "-CAfile",
        ca,
        "-purpose",
        "sslserver",
        path_str(&pki.server_cert),
    ]);
    openssl_ok(&[
        "verify",
        "-CAfile",
        ca,
        "-purpose",
        "sslclient",
        path_str(&pki.client_cert),
    ]);
    // 30 days, give or take the hour of clock-skew allowance.
    let client = path_str(&pki.client_cert);
    openssl_ok(&[
        "x509",
        "-noout",
        "-checkend",
        &(29 * 86_400).to_string(),
        "-in",
        client,
    ]);
}

#[test]
fn server_sans_include_defaults_and_extras() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = vec![
        "redis.internal".to_string(),
        "10.1.2.3".to_string(),
        "localhost".to_string(), // already a default: listed once
    ];
    let pki = write_dev_pki(tmp.path(), &extra, 1, false).unwrap();
    let out = openssl_ok(&[
        "x509",
        "-noout",
        "-ext",
        "subjectAltName",
        "-in",
        path_str(&pki.server_cert),
    ]);
    assert!(
        out.contains(
            "DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:redis, \
             DNS:redis.internal, IP Address:10.1.2.3\n"
        ),
        "{out}"
    );
}

#[test]
fn refuses_to_overwrite_any_single_file() {
    for name in NAMES {
        let tmp = tempfile::tempdir().unwrap();
        let existing = tmp.path().join(name);
        fs::write(&existing, "keep me").unwrap();
        match write_dev_pki(tmp.path(), &[], 1, false) {
            Err(CertError::AlreadyExists { path }) => assert_eq!(path, existing),
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(listing(tmp.path()), [name], "nothing else written");
        assert_eq!(fs::read_to_string(&existing).unwrap(), "keep me");
    }
}

#[test]
fn refuses_to_overwrite_a_whole_pki_and_says_how_to_proceed() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = write_dev_pki(tmp.path(), &[], 1, false).unwrap();
    let before = fs::read(&pki.ca_cert).unwrap();
    let err = write_dev_pki(tmp.path(), &[], 1, false).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, CertError::AlreadyExists { .. }), "{err:?}");
    assert!(message.contains("ca.crt"), "{message}");
    assert!(message.contains("--force"), "{message}");
    assert_eq!(fs::read(&pki.ca_cert).unwrap(), before);
}

#[test]
fn a_planted_symlink_counts_as_existing() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("elsewhere");
    std::os::unix::fs::symlink(&target, tmp.path().join("client.key")).unwrap();
    assert!(matches!(
        write_dev_pki(tmp.path(), &[], 1, false),
        Err(CertError::AlreadyExists { .. })
    ));
    assert!(!target.exists(), "the link must not be followed");
}

#[test]
fn force_replaces_everything_with_fresh_files_and_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let first = write_dev_pki(tmp.path(), &[], 1, false).unwrap();
    let old_ca = fs::read(&first.ca_cert).unwrap();
    let old_key = fs::read(&first.server_key).unwrap();
    // An old key file someone made readable: the new one must not inherit that.
    fs::set_permissions(&first.server_key, fs::Permissions::from_mode(0o644)).unwrap();
    // A planted symlink is replaced, not followed.
    let target = tmp.path().join("elsewhere");
    fs::remove_file(&first.client_key).unwrap();
    std::os::unix::fs::symlink(&target, &first.client_key).unwrap();

    let second = write_dev_pki(tmp.path(), &[], 1, true).unwrap();
    assert_ne!(fs::read(&second.ca_cert).unwrap(), old_ca);
    assert_ne!(fs::read(&second.server_key).unwrap(), old_key);
    assert_eq!(mode(&second.server_key), 0o600);
    assert_eq!(mode(&second.client_key), 0o600);
    assert!(!target.exists());
    let ca = path_str(&second.ca_cert);
    openssl_ok(&["verify", "-CAfile", ca, path_str(&second.server_cert)]);
    openssl_ok(&["verify", "-CAfile", ca, path_str(&second.client_cert)]);
}

#[test]
fn bad_input_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    let err = write_dev_pki(&dir, &["not a host".to_string()], 1, false).unwrap_err();
    assert!(
        matches!(&err, CertError::InvalidSan { san, .. } if san == "not a host"),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"not a host\""), "{err}");
    assert!(!dir.exists());

    let err = write_dev_pki(&dir, &[], 0, false).unwrap_err();
    assert!(matches!(err, CertError::InvalidValidity { .. }), "{err:?}");
    assert!(!dir.exists());
}

#[test]
fn io_errors_name_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    fs::write(&file, "").unwrap();
    let err = write_dev_pki(&file.join("certs"), &[], 1, false).unwrap_err();
    assert!(matches!(err, CertError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("a-file"), "{err}");
}

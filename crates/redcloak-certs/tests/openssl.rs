//! The certificates as OpenSSL (what Debian's redis-server links) sees them.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::{openssl_fails, openssl_ok, write};
use redcloak_certs::{Ca, Validity};

struct Fixture {
    _dir: tempfile::TempDir,
    ca: String,
    server: String,
    server_key: String,
    client: String,
    client_key: String,
    ca_key: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA", Validity::days(2)).unwrap();
    let server = ca
        .issue_server(
            "redis",
            &["localhost", "127.0.0.1", "::1", "redis"],
            Validity::days(2),
        )
        .unwrap();
    let client = ca.issue_client("proxy", Validity::days(2)).unwrap();
    Fixture {
        ca: write(dir.path(), "ca.crt", ca.cert_pem()),
        ca_key: write(dir.path(), "ca.key", ca.key_pem()),
        server: write(dir.path(), "redis.crt", &server.cert_pem),
        server_key: write(dir.path(), "redis.key", server.key_pem()),
        client: write(dir.path(), "client.crt", &client.cert_pem),
        client_key: write(dir.path(), "client.key", client.key_pem()),
        _dir: dir,
    }
}

#[test]
fn leaves_verify_against_the_ca_for_their_purpose() {
    let f = fixture();
    let out = openssl_ok(&[
        "verify",
        "-CAfile",
        &f.ca,
        "-purpose",
        "sslserver",
        &f.server,
    ]);
    assert!(out.contains(": OK"), "{out}");
    let out = openssl_ok(&[
        "verify",
        "-CAfile",
        &f.ca,
        "-purpose",
        "sslclient",
        &f.client,
    ]);
    assert!(out.contains(": OK"), "{out}");
    // And plain `openssl verify`, as in the docs.
    openssl_ok(&["verify", "-CAfile", &f.ca, &f.server]);
    openssl_ok(&["verify", "-CAfile", &f.ca, &f.client]);
}

#[test]
fn each_leaf_is_only_good_for_its_own_purpose() {
    let f = fixture();
    openssl_fails(&[
        "verify",
        "-CAfile",
        &f.ca,
        "-purpose",
        "sslclient",
        &f.server,
    ]);
    openssl_fails(&[
        "verify",
        "-CAfile",
        &f.ca,
        "-purpose",
        "sslserver",
        &f.client,
    ]);
}

#[test]
fn leaves_do_not_verify_against_another_ca() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let other = Ca::new("other CA", Validity::days(2)).unwrap();
    let other_ca = write(dir.path(), "other.crt", other.cert_pem());
    openssl_fails(&["verify", "-CAfile", &other_ca, &f.server]);
    openssl_fails(&["verify", "-CAfile", &other_ca, &f.client]);
}

#[test]
fn server_sans_are_ip_and_dns() {
    let f = fixture();
    let out = openssl_ok(&["x509", "-noout", "-ext", "subjectAltName", "-in", &f.server]);
    assert!(
        out.contains("DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:redis"),
        "{out}"
    );
    let out = openssl_ok(&["x509", "-noout", "-subject", "-in", &f.server]);
    assert!(
        out.contains("CN=redis") || out.contains("CN = redis"),
        "{out}"
    );
}

#[test]
fn extensions_are_what_redis_and_rustls_expect() {
    let f = fixture();
    let ext = "basicConstraints,keyUsage,extendedKeyUsage";
    let ca = openssl_ok(&["x509", "-noout", "-ext", ext, "-in", &f.ca]);
    assert!(
        ca.contains("critical") && ca.contains("CA:TRUE, pathlen:0"),
        "{ca}"
    );
    assert!(ca.contains("Certificate Sign, CRL Sign"), "{ca}");

    let server = openssl_ok(&["x509", "-noout", "-ext", ext, "-in", &f.server]);
    assert!(server.contains("CA:FALSE"), "{server}");
    assert!(server.contains("Digital Signature"), "{server}");
    assert!(server.contains("TLS Web Server Authentication"), "{server}");
    assert!(!server.contains("Client Authentication"), "{server}");

    let client = openssl_ok(&["x509", "-noout", "-ext", ext, "-in", &f.client]);
    assert!(client.contains("CA:FALSE"), "{client}");
    assert!(client.contains("TLS Web Client Authentication"), "{client}");
    assert!(!client.contains("Server Authentication"), "{client}");

    for cert in [&f.ca, &f.server, &f.client] {
        let text = openssl_ok(&["x509", "-noout", "-text", "-in", cert]);
        assert!(text.contains("ecdsa-with-SHA256"), "{text}");
        assert!(
            text.contains("NIST CURVE: P-256") || text.contains("prime256v1"),
            "{text}"
        );
    }
}

#[test]
fn keys_match_their_certificates() {
    let f = fixture();
    for (cert, key) in [
        (&f.ca, &f.ca_key),
        (&f.server, &f.server_key),
        (&f.client, &f.client_key),
    ] {
        let from_cert = openssl_ok(&["x509", "-noout", "-pubkey", "-in", cert]);
        let from_key = openssl_ok(&["pkey", "-pubout", "-in", key]);
        assert_eq!(from_cert, from_key, "{cert} / {key}");
        openssl_ok(&["pkey", "-noout", "-check", "-in", key]);
    }
}

#[test]
fn expired_really_is_expired() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA", Validity::days(2)).unwrap();
    let ca_path = write(dir.path(), "ca.crt", ca.cert_pem());
    let expired = ca
        .issue_server("redis", &["localhost"], Validity::expired())
        .unwrap();
    let expired = write(dir.path(), "expired.crt", &expired.cert_pem);
    let valid = ca
        .issue_server("redis", &["localhost"], Validity::days(1))
        .unwrap();
    let valid = write(dir.path(), "valid.crt", &valid.cert_pem);

    openssl_fails(&["x509", "-noout", "-checkend", "0", "-in", &expired]);
    openssl_ok(&["x509", "-noout", "-checkend", "0", "-in", &valid]);
    // Valid for more than 23 hours, less than 25.
    openssl_ok(&[
        "x509",
        "-noout",
        "-checkend",
        &(23 * 3600).to_string(),
        "-in",
        &valid,
    ]);
    openssl_fails(&[
        "x509",
        "-noout",
        "-checkend",
        &(25 * 3600).to_string(),
        "-in",
        &valid,
    ]);

    let out = openssl_fails(&["verify", "-CAfile", &ca_path, &expired]);
    assert!(out.contains("certificate has expired"), "{out}");

    let expired_ca = Ca::new("expired CA", Validity::expired()).unwrap();
    let expired_ca = write(dir.path(), "expired-ca.crt", expired_ca.cert_pem());
    openssl_fails(&["x509", "-noout", "-checkend", "0", "-in", &expired_ca]);
}

#[test]
fn explicit_validity_is_written_to_the_second() {
    let dir = tempfile::tempdir().unwrap();
    let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let end = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let ca = Ca::new("dated CA", Validity::between(start, end)).unwrap();
    let path = write(dir.path(), "ca.crt", ca.cert_pem());
    let out = openssl_ok(&["x509", "-noout", "-dates", "-in", &path]);
    assert!(out.contains("notBefore=Nov 14 22:13:20 2023 GMT"), "{out}");
    assert!(out.contains("notAfter=Jan 15 08:00:00 2027 GMT"), "{out}");
}

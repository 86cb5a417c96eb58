//! `redcloak certs`: write a development PKI (CA, Redis server and client certificates).

use std::path::Path;
use std::process::ExitCode;

use crate::EX_CONFIG;

/// Writes the files and lists them; an error (existing files without `--force`, an
/// unwritable directory) exits 78.
pub(crate) fn write(dir: &Path, sans: &[String], days: u32, force: bool) -> ExitCode {
    match redcloak_certs::write_dev_pki(dir, sans, days, force) {
        Ok(pki) => {
            println!("wrote a development PKI to {}:", dir.display());
            for p in [
                &pki.ca_cert,
                &pki.ca_key,
                &pki.server_cert,
                &pki.server_key,
                &pki.client_cert,
                &pki.client_key,
            ] {
                println!("  {}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EX_CONFIG)
        }
    }
}

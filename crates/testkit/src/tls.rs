//! A throw-away certificate authority and a server certificate it signed, for TLS registries.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// Names every test server certificate covers, whatever else the caller adds.
const LOOPBACK_NAMES: [&str; 3] = ["127.0.0.1", "localhost", "::1"];

/// The files of one generated CA and server certificate, all PEM.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// A directory holding only `ca.crt`: the layout of `skopeo --cert-dir`, of
    /// `/etc/docker/certs.d/<host:port>/` and of containers' `certs.d`.
    pub cert_dir: PathBuf,
    /// `cert_dir/ca.crt`.
    pub ca_pem: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

/// Generates a new CA and a server certificate for the loopback names plus `extra_dns_names`,
/// under `dir` (`dir/certs.d/ca.crt`, `dir/tls/server.crt`, `dir/tls/server.key`). The server
/// files stay out of the cert dir: tools there read `*.cert`/`*.key` pairs as client identities.
pub fn generate(dir: &Path, extra_dns_names: &[String]) -> anyhow::Result<TlsFiles> {
    let ca_key = KeyPair::generate().context("generating the test CA's key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ferry-testkit test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key)?;

    let names: Vec<String> = LOOPBACK_NAMES
        .iter()
        .map(|n| n.to_string())
        .chain(extra_dns_names.iter().cloned())
        .collect();
    let server_key = KeyPair::generate().context("generating the server key")?;
    let mut params = CertificateParams::new(names.clone())
        .with_context(|| format!("server certificate names {names:?}"))?;
    params
        .distinguished_name
        .push(DnType::CommonName, "ferry-testkit registry");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = params.signed_by(&server_key, &ca, &ca_key)?;

    let cert_dir = dir.join("certs.d");
    let tls_dir = dir.join("tls");
    for d in [&cert_dir, &tls_dir] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let files = TlsFiles {
        ca_pem: cert_dir.join("ca.crt"),
        cert_dir,
        server_cert: tls_dir.join("server.crt"),
        server_key: tls_dir.join("server.key"),
    };
    std::fs::write(&files.ca_pem, ca.pem())?;
    std::fs::write(&files.server_cert, server.pem())?;
    std::fs::write(&files.server_key, server_key.serialize_pem())?;
    Ok(files)
}

//! The `config.yml` a test registry runs with.

use std::path::Path;

use crate::tls::TlsFiles;

pub(super) fn yaml_str(path: &Path) -> String {
    // A JSON string is a valid YAML double-quoted scalar, whatever the path contains.
    serde_json::Value::String(path.display().to_string()).to_string()
}

/// `auth_yaml` is the whole `auth:` section (or empty); `public_url` becomes `http.host`, the
/// base of the absolute URLs the registry hands out (upload `Location`s).
pub(super) fn write_config(
    root: &Path,
    port: u16,
    auth_yaml: &str,
    tls: Option<&TlsFiles>,
    public_url: Option<&str>,
) -> anyhow::Result<()> {
    let secret = hex::encode(rand::random::<[u8; 16]>());
    let mut http_extra = String::new();
    if let Some(url) = public_url {
        let quoted = serde_json::Value::String(url.to_string()).to_string();
        http_extra.push_str(&format!("  host: {quoted}\n"));
    }
    if let Some(tls) = tls {
        http_extra.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            yaml_str(&tls.server_cert),
            yaml_str(&tls.server_key)
        ));
    }
    let config = format!(
        "version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: {secret}
{http_extra}health:
  storagedriver:
    enabled: false
{auth_yaml}",
        storage = yaml_str(&root.join("storage")),
    );
    std::fs::write(root.join("config.yml"), config)?;
    Ok(())
}

//! Credentials from docker's `config.json`: `credHelpers`, `auths` and `credsStore`, in the
//! order docker itself consults them.
//!
//! The file is parsed into a `serde_json::Value` and picked apart by hand rather than
//! deserialised with derive: serde's type-mismatch messages quote the offending value, and in
//! this file that value may be a password.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

use super::credentials::Credentials;

mod legacy;
mod policy;

pub use policy::HelperPolicy;

/// Docker Hub's credentials are stored, and asked of helpers, under this legacy URL.
const DOCKER_HUB_SERVER_URL: &str = "https://index.docker.io/v1/";
const DEFAULT_HELPER_TIMEOUT: Duration = Duration::from_secs(30);
/// Helper error output is quoted in errors; keep a runaway helper from flooding logs.
const MAX_HELPER_MESSAGE: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum DockerConfigError {
    #[error("cannot read docker config {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid docker config {origin}: {problem}")]
    Invalid { origin: String, problem: String },
    #[error("invalid credentials for {key:?} in docker config {origin}: {problem}")]
    InvalidAuth {
        origin: String,
        key: String,
        problem: String,
    },
    #[error(
        "docker config {origin} names the credential helper {helper:?} in `{field}`, and \
         credential helpers are refused for this config (it may not run programs); give the \
         credentials in `auths` instead"
    )]
    HelperRefused {
        origin: String,
        field: &'static str,
        helper: String,
    },
    #[error("credential helper {program} not found in {searched}")]
    HelperNotFound { program: String, searched: String },
    #[error("credential helper {program} failed for {server}: {message}")]
    HelperFailed {
        program: String,
        server: String,
        message: String,
    },
    #[error("credential helper {program} timed out after {timeout:?} for {server}")]
    HelperTimeout {
        program: String,
        server: String,
        timeout: Duration,
    },
    #[error("credential helper {program} returned invalid output for {server}: {problem}")]
    HelperOutput {
        program: String,
        server: String,
        problem: String,
    },
}

/// A parsed docker `config.json`.
#[derive(Debug)]
pub struct DockerConfig {
    /// Where the config came from, for error messages.
    origin: String,
    /// Keyed by the raw key from the file; several keys may name the same registry.
    auths: BTreeMap<String, AuthEntry>,
    /// Keyed by normalised registry name.
    cred_helpers: BTreeMap<String, String>,
    creds_store: Option<String>,
    /// Where to look for `docker-credential-*`; `None` searches `$PATH`.
    helper_dirs: Option<Vec<PathBuf>>,
    helper_timeout: Duration,
}

impl DockerConfig {
    /// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
    pub fn default_path() -> Option<PathBuf> {
        let home = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE"));
        default_path_from(std::env::var_os("DOCKER_CONFIG"), home)
    }

    /// Loads the config at [`default_path`](Self::default_path); a missing file (or no home
    /// directory) is `Ok(None)`, as for a machine that never ran `docker login`.
    pub fn load_default() -> Result<Option<DockerConfig>, DockerConfigError> {
        let Some(path) = Self::default_path() else {
            return Ok(None);
        };
        match Self::load(&path) {
            Err(DockerConfigError::Read { source, .. })
                if source.kind() == io::ErrorKind::NotFound =>
            {
                Ok(None)
            }
            other => other.map(Some),
        }
    }

    pub fn load(path: &Path) -> Result<DockerConfig, DockerConfigError> {
        let json = std::fs::read(path).map_err(|source| DockerConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        parse(&json, path.display().to_string(), HelperPolicy::Run)
    }

    pub fn from_json(json: &str) -> Result<DockerConfig, DockerConfigError> {
        parse(
            json.as_bytes(),
            "(inline JSON)".to_owned(),
            HelperPolicy::Run,
        )
    }

    /// A config held in memory: a `config.json` (the `.dockerconfigjson` key of a
    /// `kubernetes.io/dockerconfigjson` Secret) or the legacy `.dockercfg` form (a bare map of
    /// registry → `{auth, username, password, email}`). `origin` names it in errors (say,
    /// `secret team-a/pull`); `policy` says whether it may name credential helpers.
    pub fn from_slice(
        bytes: &[u8],
        origin: impl Into<String>,
        policy: HelperPolicy,
    ) -> Result<DockerConfig, DockerConfigError> {
        parse(bytes, origin.into(), policy)
    }

    /// Looks for credential helpers only in `dir` instead of `$PATH`; lets tests use fake
    /// helpers without mutating the process environment.
    pub fn with_helper_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.helper_dirs = Some(vec![dir.into()]);
        self
    }

    pub fn with_helper_timeout(mut self, timeout: Duration) -> Self {
        self.helper_timeout = timeout;
        self
    }

    /// Credentials for a normalised registry name (`docker.io`, `ghcr.io`, `localhost:5000`).
    pub async fn credentials_for(
        &self,
        registry: &str,
    ) -> Result<Option<Credentials>, DockerConfigError> {
        let registry = normalize_registry(registry);
        // A per-registry helper is authoritative, as in docker: no fallback when it finds
        // nothing.
        if let Some(helper) = self.cred_helpers.get(&registry) {
            return self.run_helper(helper, &registry).await;
        }
        if let Some(credentials) = self.auths_credentials(&registry)? {
            return Ok(Some(credentials));
        }
        match &self.creds_store {
            Some(store) => self.run_helper(store, &registry).await,
            None => Ok(None),
        }
    }

    fn auths_credentials(&self, registry: &str) -> Result<Option<Credentials>, DockerConfigError> {
        // An exact key beats an alias so that `docker.io` and `https://index.docker.io/v1/`
        // entries with different accounts resolve predictably.
        let exact = self.auths.get_key_value(registry);
        let aliases = self
            .auths
            .iter()
            .filter(|(key, _)| key.as_str() != registry && normalize_registry(key) == registry);
        for (key, entry) in exact.into_iter().chain(aliases) {
            let found = entry
                .credentials()
                .map_err(|problem| DockerConfigError::InvalidAuth {
                    origin: self.origin.clone(),
                    key: key.clone(),
                    problem,
                })?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    async fn run_helper(
        &self,
        helper: &str,
        registry: &str,
    ) -> Result<Option<Credentials>, DockerConfigError> {
        let program = format!("docker-credential-{helper}");
        let server = if registry == "docker.io" {
            DOCKER_HUB_SERVER_URL.to_owned()
        } else {
            registry.to_owned()
        };
        let failed = |message: String| DockerConfigError::HelperFailed {
            program: program.clone(),
            server: server.clone(),
            message,
        };
        let path = self.find_helper(&program)?;
        let timeout = self.helper_timeout;
        let output = tokio::time::timeout(timeout, async {
            let mut child = spawn_helper(&path).await?;
            if let Some(mut stdin) = child.stdin.take() {
                // A helper may exit without reading stdin; its answer still counts.
                match stdin.write_all(server.as_bytes()).await {
                    Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(e),
                    _ => {}
                }
            }
            child.wait_with_output().await
        })
        .await
        .map_err(|_| DockerConfigError::HelperTimeout {
            program: program.clone(),
            server: server.clone(),
            timeout,
        })?
        .map_err(|e| failed(format!("cannot run {}: {e}", path.display())))?;

        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let not_found = |s: &str| s.to_ascii_lowercase().contains("credentials not found");
            if not_found(&stdout) || not_found(&stderr) {
                return Ok(None);
            }
            // docker-credential-helpers report errors on stdout; stdout of a failed `get`
            // carries no secret.
            let detail = [stderr.trim(), stdout.trim()]
                .into_iter()
                .find(|s| !s.is_empty())
                .unwrap_or("no output");
            return Err(failed(format!(
                "{}: {}",
                output.status,
                truncate(detail, MAX_HELPER_MESSAGE)
            )));
        }
        parse_helper_output(&stdout).map_err(|problem| DockerConfigError::HelperOutput {
            program: program.clone(),
            server: server.clone(),
            problem,
        })
    }

    fn find_helper(&self, program: &str) -> Result<PathBuf, DockerConfigError> {
        let (dirs, searched) = match &self.helper_dirs {
            Some(dirs) => (dirs.clone(), "the configured helper directory".to_owned()),
            None => (
                std::env::var_os("PATH")
                    .map(|path| std::env::split_paths(&path).collect())
                    .unwrap_or_default(),
                "PATH".to_owned(),
            ),
        };
        let file_name = format!("{program}{}", std::env::consts::EXE_SUFFIX);
        // A helper name with a path separator would escape the search directories.
        let plain_name = !program.contains(['/', '\\']);
        dirs.iter()
            .map(|dir| dir.join(&file_name))
            .find(|candidate| plain_name && is_executable(candidate))
            .ok_or_else(|| DockerConfigError::HelperNotFound {
                program: program.to_owned(),
                searched,
            })
    }
}

async fn spawn_helper(path: &Path) -> io::Result<tokio::process::Child> {
    let mut attempts = 0;
    loop {
        let spawned = Command::new(path)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        match spawned {
            // ETXTBSY: the helper was just written (an upgrade in progress, or a test's fake
            // helper whose write handle a concurrently forked child still holds).
            Err(e) if e.kind() == io::ErrorKind::ExecutableFileBusy && attempts < 10 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

fn is_executable(path: &Path) -> bool {
    let Ok(metadata) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        metadata.is_file()
    }
}

fn parse_helper_output(stdout: &str) -> Result<Option<Credentials>, String> {
    let value: Value = serde_json::from_str(stdout)
        .map_err(|e| format!("not JSON (line {}, column {})", e.line(), e.column()))?;
    let Value::Object(object) = value else {
        return Err("not a JSON object".to_owned());
    };
    let username = string_field(&object, "Username", "Username")?.unwrap_or_default();
    let secret = string_field(&object, "Secret", "Secret")?.unwrap_or_default();
    // docker's convention for "this secret is an identity token, not a password".
    if username == "<token>" {
        return Ok(Some(Credentials::IdentityToken(secret)));
    }
    if username.is_empty() && secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials::Basic {
        username,
        password: secret,
    }))
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

fn default_path_from(
    docker_config: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    let dir = match docker_config.filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(home.filter(|home| !home.is_empty())?).join(".docker"),
    };
    Some(dir.join("config.json"))
}

/// Reduces a registry name or an `auths` key (`https://index.docker.io/v1/`,
/// `http://localhost:5000/v2/`) to the host, with Docker Hub's aliases folded to `docker.io`.
pub fn normalize_registry(name: &str) -> String {
    let name = name.trim();
    let name = ["https://", "http://"]
        .iter()
        .find_map(|scheme| {
            name.get(..scheme.len())
                .filter(|prefix| prefix.eq_ignore_ascii_case(scheme))
                .map(|_| &name[scheme.len()..])
        })
        .unwrap_or(name);
    let host = name
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_owned()
        }
        _ => host,
    }
}

/// One `auths` entry as written; decoded only when a lookup reaches it, so a broken entry for
/// an unrelated registry does not block the others.
#[derive(Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identity_token: Option<String>,
    registry_token: Option<String>,
}

impl fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |field: &Option<String>| field.as_ref().map(|_| "<redacted>");
        f.debug_struct("AuthEntry")
            .field("auth", &redacted(&self.auth))
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("identity_token", &redacted(&self.identity_token))
            .field("registry_token", &redacted(&self.registry_token))
            .finish()
    }
}

impl AuthEntry {
    fn credentials(&self) -> Result<Option<Credentials>, String> {
        let present = |field: &Option<String>| field.clone().filter(|s| !s.is_empty());
        // docker keeps the username in `auth` next to an identity token, with an empty
        // password, so the token must win.
        if let Some(token) = present(&self.identity_token) {
            return Ok(Some(Credentials::IdentityToken(token)));
        }
        if let Some(token) = present(&self.registry_token) {
            return Ok(Some(Credentials::Bearer(token)));
        }
        if let Some(auth) = present(&self.auth) {
            return decode_auth(auth.trim()).map(Some);
        }
        let username = present(&self.username);
        let password = present(&self.password);
        if username.is_none() && password.is_none() {
            return Ok(None);
        }
        Ok(Some(Credentials::basic(
            username.unwrap_or_default(),
            password.unwrap_or_default(),
        )))
    }
}

/// Decodes `auth`: base64 of `user:password`, split at the first ':' since passwords (ECR
/// tokens among them) may contain more.
fn decode_auth(auth: &str) -> Result<Credentials, String> {
    let engine = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let bytes = engine
        .decode(auth)
        .map_err(|_| "`auth` is not valid base64".to_owned())?;
    let decoded = String::from_utf8(bytes).map_err(|_| "`auth` is not UTF-8".to_owned())?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or_else(|| "`auth` does not decode to user:password".to_owned())?;
    Ok(Credentials::basic(username, password))
}

fn string_field(
    object: &Map<String, Value>,
    field: &str,
    path: &str,
) -> Result<Option<String>, String> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{path} must be a string")),
    }
}

fn object_field<'a>(
    object: &'a Map<String, Value>,
    field: &str,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, String> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(format!("{path} must be an object")),
    }
}

fn parse(
    json: &[u8],
    origin: String,
    policy: HelperPolicy,
) -> Result<DockerConfig, DockerConfigError> {
    match parse_fields(json) {
        Ok((auths, cred_helpers, creds_store)) => policy
            .check(&origin, &cred_helpers, &creds_store)
            .map(|()| DockerConfig {
                origin,
                auths,
                cred_helpers,
                creds_store,
                helper_dirs: None,
                helper_timeout: DEFAULT_HELPER_TIMEOUT,
            }),
        Err(problem) => Err(DockerConfigError::Invalid { origin, problem }),
    }
}

type Fields = (
    BTreeMap<String, AuthEntry>,
    BTreeMap<String, String>,
    Option<String>,
);

fn parse_fields(json: &[u8]) -> Result<Fields, String> {
    // Syntax errors from serde_json name a position, never the text at it.
    let value: Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let Value::Object(root) = value else {
        return Err("the top level is not a JSON object".to_owned());
    };
    if legacy::is_legacy(&root) {
        return Ok((auth_entries(&root, ".dockercfg")?, BTreeMap::new(), None));
    }

    let auths = match object_field(&root, "auths", "auths")? {
        Some(section) => auth_entries(section, "auths")?,
        None => BTreeMap::new(),
    };

    let mut cred_helpers = BTreeMap::new();
    let helpers = object_field(&root, "credHelpers", "credHelpers")?;
    for (key, helper) in helpers.into_iter().flatten() {
        let Value::String(helper) = helper else {
            return Err(format!("credHelpers[{key:?}] must be a string"));
        };
        if !helper.is_empty() {
            cred_helpers
                .entry(normalize_registry(key))
                .or_insert_with(|| helper.clone());
        }
    }

    let creds_store =
        string_field(&root, "credsStore", "credsStore")?.filter(|store| !store.is_empty());
    Ok((auths, cred_helpers, creds_store))
}

/// Registry → credentials entries, as in `auths` (and the whole of a legacy `.dockercfg`).
fn auth_entries(
    section: &Map<String, Value>,
    name: &str,
) -> Result<BTreeMap<String, AuthEntry>, String> {
    let mut auths = BTreeMap::new();
    for (key, entry) in section {
        let path = format!("{name}[{key:?}]");
        let Value::Object(entry) = entry else {
            return Err(format!("{path} must be an object"));
        };
        let field = |name: &str| string_field(entry, name, &format!("{path}.{name}"));
        auths.insert(
            key.clone(),
            AuthEntry {
                auth: field("auth")?,
                username: field("username")?,
                password: field("password")?,
                identity_token: field("identitytoken")?,
                registry_token: field("registrytoken")?,
            },
        );
    }
    Ok(auths)
}

#[cfg(test)]
mod tests;

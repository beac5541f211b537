//! Image references (`ghcr.io/owner/app:v1@sha256:…`), parsed and normalised the way docker
//! does (`ParseNormalizedNamed` in distribution/reference), so a name means here what it
//! means to `docker pull`.
//!
//! The grammar is hand-written rather than a regex: each rule can then fail with its own
//! message instead of a single "invalid reference format".

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

#[cfg(test)]
mod tests;

const DEFAULT_REGISTRY: &str = "docker.io";
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
/// docker.io is a name for humans; the registry API itself lives elsewhere.
const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
const NAME_MAX_LEN: usize = 255;
const TAG_MAX_LEN: usize = 128;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let input = || s.to_string();
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if s.chars().any(char::is_whitespace) {
            return Err(ReferenceError::Whitespace { input: input() });
        }
        if let Some(end) = s.find("://") {
            return Err(ReferenceError::Scheme {
                input: input(),
                scheme: s[..end + 3].to_string(),
            });
        }

        let (name_and_tag, digest) = match s.split_once('@') {
            Some((name, digest)) => {
                let digest =
                    Digest::parse(digest).map_err(|source| ReferenceError::InvalidDigest {
                        input: input(),
                        source,
                    })?;
                (name, Some(digest))
            }
            None => (s, None),
        };

        // Docker refuses a bare image ID here rather than reading it as docker.io/library/<hex>.
        if digest.is_none() && s.len() == 64 && s.bytes().all(is_lower_hex) {
            return Err(ReferenceError::HexIdentifier { input: input() });
        }

        let (registry, remainder) = split_registry(name_and_tag);
        let (path, tag) = match remainder.split_once(':') {
            Some((path, tag)) => (path, Some(tag)),
            None => (remainder, None),
        };
        if path.is_empty() {
            return Err(ReferenceError::MissingRepository { input: input() });
        }
        let registry = if registry == LEGACY_DEFAULT_REGISTRY {
            DEFAULT_REGISTRY
        } else {
            registry
        };

        let repository = normalise_repository(s, registry, path)?;
        validate_registry(s, registry)?;
        if let Some(tag) = tag {
            validate_tag(s, tag)?;
        }
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_string()),
        };
        Ok(Reference {
            registry: registry.to_string(),
            repository,
            tag,
            digest,
        })
    }

    /// The registry as named by the user, normalised (`docker.io`, `localhost:5000`,
    /// `[::1]:5000`, `123456789012.dkr.ecr.eu-west-1.amazonaws.com`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The `host[:port]` to send API requests to.
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    /// The registry without its port (and without brackets for an IPv6 literal).
    pub fn host(&self) -> &str {
        split_host_port(&self.registry).0
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What goes in `/v2/<repository>/manifests/<target>`. A digest wins over a tag: it pins
    /// the exact content, while the tag may have moved since the reference was written.
    pub fn target(&self) -> &str {
        self.digest
            .as_ref()
            .map(Digest::as_str)
            .or(self.tag.as_deref())
            .unwrap_or(DEFAULT_TAG)
    }

    /// The same repository at `tag`, without any digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        validate_tag(&format!("{}:{tag}", self.name()), tag)?;
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository at `digest`, without any tag.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// Another repository in the same registry, keeping tag and digest. Normalised as
    /// [`Reference::parse`] would (`nginx` on docker.io becomes `library/nginx`).
    pub fn with_repository(&self, repository: &str) -> Result<Reference, ReferenceError> {
        let input = format!("{}/{repository}", self.registry);
        if repository.is_empty() {
            return Err(ReferenceError::MissingRepository { input });
        }
        if repository.chars().any(char::is_whitespace) {
            return Err(ReferenceError::Whitespace { input });
        }
        let repository = normalise_repository(&input, &self.registry, repository)?;
        Ok(Reference {
            repository,
            ..self.clone()
        })
    }

    /// Whether the registry is on this machine (`localhost`, 127.0.0.0/8 or `[::1]`): such
    /// registries are commonly plain HTTP.
    pub fn is_loopback(&self) -> bool {
        let host = self.host();
        if host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        if let Ok(ip) = host.parse::<Ipv4Addr>() {
            return ip.is_loopback();
        }
        if let Ok(ip) = host.parse::<Ipv6Addr>() {
            return ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback());
        }
        false
    }

    /// `/v2/<repository>`, the prefix of every API path for this repository.
    pub fn repository_url_path(&self) -> String {
        format!("/v2/{}", self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Reference").field(&self.to_string()).finish()
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Reference::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ReferenceError {
    #[error(
        "invalid reference \"\": empty; expected an image such as \"nginx:latest\" or \"ghcr.io/owner/app:v1\""
    )]
    Empty,

    #[error("invalid reference {input:?}: contains whitespace")]
    Whitespace { input: String },

    #[error(
        "invalid reference {input:?}: remove the scheme {scheme:?}; an image reference names a registry host, not a URL (e.g. \"ghcr.io/owner/app:v1\")"
    )]
    Scheme { input: String, scheme: String },

    #[error(
        "invalid reference {input:?}: a 64-character hex string is an image ID, not a reference; use \"name@sha256:<hex>\""
    )]
    HexIdentifier { input: String },

    #[error("invalid reference {input:?}: repository name is missing")]
    MissingRepository { input: String },

    #[error("invalid reference {input:?}: repository name must be lowercase")]
    UppercaseRepository { input: String },

    #[error(
        "invalid reference {input:?}: repository {repository:?} has an empty path component (check for \"//\" or a leading or trailing \"/\")"
    )]
    EmptyPathComponent { input: String, repository: String },

    #[error(
        "invalid reference {input:?}: repository path component {component:?} must be lowercase letters and digits, optionally joined by '.', '_', '__' or '-'"
    )]
    InvalidPathComponent { input: String, component: String },

    #[error(
        "invalid reference {input:?}: repository name is {len} characters long, at most 255 are allowed"
    )]
    NameTooLong { input: String, len: usize },

    #[error(
        "invalid reference {input:?}: registry {registry:?} is not a valid host name, IPv4 address or bracketed IPv6 address"
    )]
    InvalidRegistry { input: String, registry: String },

    #[error("invalid reference {input:?}: port {port:?} is not a number from 1 to 65535")]
    InvalidPort { input: String, port: String },

    #[error("invalid reference {input:?}: tag is empty; remove the trailing ':' or add a tag")]
    EmptyTag { input: String },

    #[error(
        "invalid reference {input:?}: tag {tag:?} may only contain letters, digits, '_', '.' and '-', and must not start with '.' or '-'"
    )]
    InvalidTag { input: String, tag: String },

    #[error("invalid reference {input:?}: tag is {len} characters long, at most 128 are allowed")]
    TagTooLong { input: String, len: usize },

    #[error("invalid reference {input:?}: {source}")]
    InvalidDigest { input: String, source: DigestError },
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// docker's `splitDockerDomain`: the first component names a registry only if it cannot be a
/// Docker Hub user, i.e. it has a `.` or `:`, is `localhost`, or has uppercase letters.
fn split_registry(name: &str) -> (&str, &str) {
    named_registry(name).unwrap_or((DEFAULT_REGISTRY, name))
}

/// The registry a reference names in its first component, and the rest — docker's rule: the
/// component has a `.` or `:`, is `localhost`, or has an uppercase letter. `None` for
/// `team/app:1`, which names no registry (a caller may then supply its own).
pub fn named_registry(name: &str) -> Option<(&str, &str)> {
    name.split_once('/').filter(|(first, _)| {
        first.contains(['.', ':'])
            || *first == "localhost"
            || first.bytes().any(|b| b.is_ascii_uppercase())
    })
}

/// Applies the Docker Hub `library/` rule and checks the path grammar and name length.
fn normalise_repository(input: &str, registry: &str, path: &str) -> Result<String, ReferenceError> {
    let input = || input.to_string();
    let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
        format!("{OFFICIAL_REPO_PREFIX}{path}")
    } else {
        path.to_string()
    };
    // Checked before the grammar, as docker does, so "Nginx" gets the message that helps.
    if repository.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ReferenceError::UppercaseRepository { input: input() });
    }
    for component in repository.split('/') {
        if component.is_empty() {
            return Err(ReferenceError::EmptyPathComponent {
                input: input(),
                repository: path.to_string(),
            });
        }
        if !is_path_component(component) {
            return Err(ReferenceError::InvalidPathComponent {
                input: input(),
                component: component.to_string(),
            });
        }
    }
    let len = registry.len() + 1 + repository.len();
    if len > NAME_MAX_LEN {
        return Err(ReferenceError::NameTooLong {
            input: input(),
            len,
        });
    }
    Ok(repository)
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(component: &str) -> bool {
    let b = component.as_bytes();
    let alphanumeric = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    loop {
        let run_start = i;
        while i < b.len() && alphanumeric(b[i]) {
            i += 1;
        }
        if i == run_start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if b.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// Splits `host[:port]`, unbracketing an IPv6 literal. Only meaningful for a registry that has
/// passed [`validate_registry`].
fn split_host_port(registry: &str) -> (&str, Option<&str>) {
    if let Some(rest) = registry.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':')),
            None => (rest, None),
        };
    }
    match registry.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    }
}

/// host := domain-name | IPv4address | `[` IPv6address `]`, then an optional `:port`.
fn validate_registry(input: &str, registry: &str) -> Result<(), ReferenceError> {
    let invalid = || ReferenceError::InvalidRegistry {
        input: input.to_string(),
        registry: registry.to_string(),
    };
    let port = if let Some(rest) = registry.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(invalid)?;
        // docker's grammar only admits hex digits and colons here; parsing as well rejects
        // strings like "[:::]" that no resolver would accept.
        if host.is_empty()
            || !host.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
            || host.parse::<Ipv6Addr>().is_err()
        {
            return Err(invalid());
        }
        match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(invalid)?),
        }
    } else {
        let (host, port) = split_host_port(registry);
        if !host.split('.').all(is_domain_label) {
            return Err(invalid());
        }
        port
    };
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p != 0);
        if !valid {
            return Err(ReferenceError::InvalidPort {
                input: input.to_string(),
                port: port.to_string(),
            });
        }
    }
    Ok(())
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`
fn is_domain_label(label: &str) -> bool {
    let b = label.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        }
        _ => false,
    }
}

/// `[\w][\w.-]{0,127}` with `\w` = `[a-zA-Z0-9_]`.
fn validate_tag(input: &str, tag: &str) -> Result<(), ReferenceError> {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let Some((&first, rest)) = tag.as_bytes().split_first() else {
        return Err(ReferenceError::EmptyTag {
            input: input.to_string(),
        });
    };
    if !word(first) || !rest.iter().all(|&c| word(c) || c == b'.' || c == b'-') {
        return Err(ReferenceError::InvalidTag {
            input: input.to_string(),
            tag: tag.to_string(),
        });
    }
    if tag.len() > TAG_MAX_LEN {
        return Err(ReferenceError::TagTooLong {
            input: input.to_string(),
            len: tag.len(),
        });
    }
    Ok(())
}

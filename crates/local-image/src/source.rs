//! The local image a user names for a push: a Docker Engine image, an OCI image layout
//! directory (`oci:DIR[:TAG]`) or a `docker save` tar (`docker-archive:FILE`).
//!
//! The prefixes are skopeo's, so a name that works there means the same here; prefixes of other
//! tools that mean something else here are refused with what to write instead.

use std::fmt;
use std::path::{Path, PathBuf};

use ferry_registry::reference::{Reference, ReferenceError};

const OCI_PREFIX: &str = "oci:";
const ARCHIVE_PREFIX: &str = "docker-archive:";
const DOCKER_HUB: &str = "docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// An image in the Docker Engine: `repo[:tag]`, `repo@digest`, or an image ID.
    Daemon { name: String },
    /// An OCI image layout directory, optionally with the tag (`org.opencontainers.image.ref.name`)
    /// of the image to take from its index.
    OciLayout { dir: PathBuf, tag: Option<String> },
    /// A `docker save` tar file.
    DockerArchive { path: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error(
        "no image given: name a Docker Engine image (\"app:1.0\" or an image ID), \
         \"oci:DIR[:TAG]\" or \"docker-archive:FILE\""
    )]
    Empty,

    #[error("invalid image {input:?}: {prefix:?} needs a {what} after it ({usage})")]
    MissingPath {
        input: String,
        prefix: &'static str,
        what: &'static str,
        usage: &'static str,
    },

    #[error(
        "invalid image {input:?}: the tag after the last ':' is empty; remove the ':' or add a tag"
    )]
    EmptyTag { input: String },

    /// A prefix another tool uses, with what to write here instead.
    #[error("invalid image {input:?}: {advice}")]
    UnsupportedPrefix { input: String, advice: String },

    /// The input names a file or directory rather than an image.
    #[error("invalid image {input:?}: {advice}")]
    LooksLikePath { input: String, advice: String },

    #[error("invalid image {input:?}: {}", strip_input(input, source))]
    InvalidName {
        input: String,
        source: ReferenceError,
    },
}

/// The reference error names the input itself; said once is enough.
fn strip_input(input: &str, e: &ReferenceError) -> String {
    let text = e.to_string();
    let prefix = format!("invalid reference {input:?}: ");
    text.strip_prefix(&prefix)
        .map(str::to_string)
        .unwrap_or(text)
}

impl ImageSource {
    /// `oci:DIR[:TAG]`, `docker-archive:FILE`, else a Docker Engine name or ID. Surrounding
    /// whitespace is ignored (CI inputs often carry a trailing newline).
    ///
    /// `oci:DIR:TAG` is ambiguous when DIR itself contains ':'; the text after the last ':' is
    /// taken as a tag only if it is a valid tag and the whole is not an existing directory.
    pub fn parse(input: &str) -> Result<ImageSource, SourceError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(SourceError::Empty);
        }
        if let Some(rest) = input.strip_prefix(OCI_PREFIX) {
            return parse_oci(input, rest);
        }
        if let Some(rest) = input.strip_prefix(ARCHIVE_PREFIX) {
            if rest.is_empty() {
                return Err(SourceError::MissingPath {
                    input: input.to_string(),
                    prefix: ARCHIVE_PREFIX,
                    what: "file",
                    usage: "docker-archive:FILE",
                });
            }
            return Ok(ImageSource::DockerArchive {
                path: PathBuf::from(rest),
            });
        }
        if let Some(advice) = foreign_prefix_advice(input) {
            return Err(SourceError::UnsupportedPrefix {
                input: input.to_string(),
                advice,
            });
        }
        if looks_like_image_id(input) {
            return Ok(ImageSource::Daemon {
                name: input.to_string(),
            });
        }
        if let Some(advice) = path_advice(input) {
            return Err(SourceError::LooksLikePath {
                input: input.to_string(),
                advice,
            });
        }
        match Reference::parse(input) {
            Ok(_) => Ok(ImageSource::Daemon {
                name: input.to_string(),
            }),
            Err(source) => Err(SourceError::InvalidName {
                input: input.to_string(),
                source,
            }),
        }
    }

    /// The tag the source names for itself: `1.2` for `app:1.2` and `oci:DIR:1.2`. None for
    /// an image ID, a digest, an archive or a name without a tag (which push as `latest`).
    pub fn own_tag(&self) -> Option<String> {
        match self {
            ImageSource::Daemon { name } if !looks_like_image_id(name) => {
                let reference = Reference::parse(name).ok()?;
                // `app` parses with the default tag filled in; only a typed tag counts.
                let typed = name.rsplit('/').next()?.split('@').next()?.contains(':');
                typed.then(|| reference.tag().map(str::to_string)).flatten()
            }
            ImageSource::OciLayout { tag, .. } => tag.clone(),
            _ => None,
        }
    }

    /// The tags a push sets when none are given: the source's own tag, else `latest`.
    pub fn default_tags(&self) -> Vec<String> {
        vec![self.own_tag().unwrap_or_else(|| "latest".to_string())]
    }

    /// The image's own repository, in docker's familiar form, when the input names one:
    /// `team/app` for `team/app:1.0`, `app` for `docker.io/library/app`, `owner/app` for
    /// `ghcr.io/owner/app:v1`. None for image IDs, layouts and archives.
    pub fn default_repository(&self) -> Option<String> {
        let ImageSource::Daemon { name } = self else {
            return None;
        };
        if looks_like_image_id(name) {
            return None;
        }
        let reference = Reference::parse(name).ok()?;
        let repository = reference.repository();
        let familiar = match repository.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if reference.registry() == DOCKER_HUB && !rest.contains('/') => rest,
            _ => repository,
        };
        Some(familiar.to_string())
    }

    /// The source as the user gave it (less surrounding whitespace).
    pub fn display(&self) -> String {
        match self {
            ImageSource::Daemon { name } => name.clone(),
            ImageSource::OciLayout { dir, tag } => match tag {
                Some(tag) => format!("{OCI_PREFIX}{}:{tag}", dir.display()),
                None => format!("{OCI_PREFIX}{}", dir.display()),
            },
            ImageSource::DockerArchive { path } => format!("{ARCHIVE_PREFIX}{}", path.display()),
        }
    }
}

impl fmt::Display for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

fn parse_oci(input: &str, rest: &str) -> Result<ImageSource, SourceError> {
    let missing = || SourceError::MissingPath {
        input: input.to_string(),
        prefix: OCI_PREFIX,
        what: "directory",
        usage: "oci:DIR[:TAG]",
    };
    if rest.is_empty() {
        return Err(missing());
    }
    let whole = || ImageSource::OciLayout {
        dir: PathBuf::from(rest),
        tag: None,
    };
    if Path::new(rest).is_dir() {
        return Ok(whole());
    }
    let Some((dir, tag)) = rest.rsplit_once(':') else {
        return Ok(whole());
    };
    if tag.is_empty() {
        return Err(SourceError::EmptyTag {
            input: input.to_string(),
        });
    }
    if !is_valid_tag(tag) {
        // Not a tag, so the ':' belongs to the directory's name.
        return Ok(whole());
    }
    if dir.is_empty() {
        return Err(missing());
    }
    Ok(ImageSource::OciLayout {
        dir: PathBuf::from(dir),
        tag: Some(tag.to_string()),
    })
}

/// docker's tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    match bytes.split_first() {
        Some((first, rest)) => {
            bytes.len() <= 128 && word(first) && rest.iter().all(|b| word(b) || b"-.".contains(b))
        }
        None => false,
    }
}

/// What to write instead of another tool's transport prefix.
fn foreign_prefix_advice(input: &str) -> Option<String> {
    if let Some(rest) = input.strip_prefix("docker://") {
        return Some(format!(
            "\"docker://\" names an image in a registry, not a local one; to copy it into ECR use \
             `ferry copy {rest} …`, and for an image in the Docker Engine give its name without a \
             prefix ({rest:?})"
        ));
    }
    if let Some(rest) = input.strip_prefix("docker-daemon:") {
        if rest.is_empty() {
            return Some(
                "images in the Docker Engine take no prefix here: give the image's name or ID"
                    .into(),
            );
        }
        return Some(format!(
            "images in the Docker Engine take no prefix here: use {rest:?}"
        ));
    }
    // These could also be a repository and tag ("dir:1.0"); only text that cannot be a tag
    // marks them as another tool's prefix.
    let (prefix, rest) = input.split_once(':')?;
    if is_valid_tag(rest) {
        return None;
    }
    let advice = match prefix {
        "oci-archive" => format!(
            "an OCI archive is not read directly: unpack it (`mkdir layout && tar -xf {rest} -C \
             layout`) and use \"oci:layout\""
        ),
        "containers-storage" | "dir" | "ostree" | "sif" | "tarball" => format!(
            "the {prefix}: transport is not supported; local images come from the Docker Engine \
             (a name or image ID), \"oci:DIR[:TAG]\" or \"docker-archive:FILE\""
        ),
        _ => return None,
    };
    Some(advice)
}

/// Advice when the input is evidently a path (an existing file or directory, or written like
/// one) rather than an image name.
fn path_advice(input: &str) -> Option<String> {
    let path = Path::new(input);
    let path_like = input.starts_with(['/', '.', '~'])
        || input.ends_with(".tar")
        || input.ends_with(".tar.gz")
        || input.ends_with(".tgz");
    if path.is_dir() && (path_like || path.join("oci-layout").is_file()) {
        return Some(format!(
            "this is a directory; for an OCI image layout use \"oci:{input}\""
        ));
    }
    if path.is_file() && path_like {
        return Some(format!(
            "this is a file; for a `docker save` tar use \"docker-archive:{input}\""
        ));
    }
    if input.starts_with(['/', '.', '~']) {
        return Some(
            "this looks like a path, not an image name; use \"oci:DIR[:TAG]\" for an OCI image \
             layout or \"docker-archive:FILE\" for a `docker save` tar"
                .to_string(),
        );
    }
    None
}

/// Whether `s` looks like an image ID rather than a name: `sha256:` with 12 to 64 lowercase hex
/// characters (the Engine resolves such a prefix as an ID, and a repository named "sha256" is
/// implausible), or 12 to 64 lowercase hex characters alone, as `docker images` shows them.
///
/// A 12–63 character hex string is also a valid repository name; the Engine then looks for the
/// name first and the ID second, so treating it as an ID only loses a default repository.
pub fn looks_like_image_id(s: &str) -> bool {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    (12..=64).contains(&hex.len())
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn daemon(name: &str) -> ImageSource {
        ImageSource::Daemon { name: name.into() }
    }

    fn oci(dir: &str, tag: Option<&str>) -> ImageSource {
        ImageSource::OciLayout {
            dir: dir.into(),
            tag: tag.map(Into::into),
        }
    }

    #[test]
    fn parses() {
        let id = "6790d375eb3a8ae8d91bf1ec78dddc5a7b8dd96e7cf74309a87254630773e6f0";
        let full_id = format!("sha256:{id}");
        let cases: Vec<(&str, ImageSource)> = vec![
            ("app", daemon("app")),
            ("app:1.0", daemon("app:1.0")),
            ("  team/app:1.0\n", daemon("team/app:1.0")),
            ("localhost:5000/app", daemon("localhost:5000/app")),
            (
                "ghcr.io/owner/app@sha256:6790d375eb3a8ae8d91bf1ec78dddc5a7b8dd96e7cf74309a87254630773e6f0",
                daemon(
                    "ghcr.io/owner/app@sha256:6790d375eb3a8ae8d91bf1ec78dddc5a7b8dd96e7cf74309a87254630773e6f0",
                ),
            ),
            ("6790d375eb3a", daemon("6790d375eb3a")),
            (id, daemon(id)),
            (&full_id, daemon(&full_id)),
            ("sha256:6790d375eb3a", daemon("sha256:6790d375eb3a")),
            ("oci:./layout", oci("./layout", None)),
            ("oci:/tmp/layout:v1", oci("/tmp/layout", Some("v1"))),
            ("oci:layout:1.0-rc_2", oci("layout", Some("1.0-rc_2"))),
            // Not a tag after the last ':', so the ':' is part of the directory.
            ("oci:/tmp/a:b/layout", oci("/tmp/a:b/layout", None)),
            ("oci:/tmp/layout:.hidden", oci("/tmp/layout:.hidden", None)),
            (
                "docker-archive:/tmp/app.tar",
                ImageSource::DockerArchive {
                    path: "/tmp/app.tar".into(),
                },
            ),
            // A repository named "dir" is an image name, not skopeo's dir: transport.
            ("dir:1.0", daemon("dir:1.0")),
        ];
        for (input, expected) in cases {
            assert_eq!(ImageSource::parse(input).unwrap(), expected, "{input:?}");
        }
    }

    #[test]
    fn an_existing_directory_with_a_colon_is_not_split() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("layout:v1");
        std::fs::create_dir(&dir).unwrap();
        let input = format!("oci:{}", dir.display());
        assert_eq!(
            ImageSource::parse(&input).unwrap(),
            oci(&dir.display().to_string(), None)
        );
        let tagged = format!("oci:{}:v2", dir.display());
        assert_eq!(
            ImageSource::parse(&tagged).unwrap(),
            oci(&dir.display().to_string(), Some("v2"))
        );
    }

    #[test]
    fn errors_name_the_input_and_the_fix() {
        let cases = [
            ("", "no image given"),
            ("   ", "no image given"),
            (
                "oci:",
                "\"oci:\" needs a directory after it (oci:DIR[:TAG])",
            ),
            ("oci::v1", "\"oci:\" needs a directory"),
            ("oci:layout:", "the tag after the last ':' is empty"),
            (
                "docker-archive:",
                "needs a file after it (docker-archive:FILE)",
            ),
            (
                "docker-daemon:app:1.0",
                "take no prefix here: use \"app:1.0\"",
            ),
            (
                "docker://ghcr.io/o/app:1",
                "names an image in a registry, not a local one; to copy it into ECR use `ferry copy ghcr.io/o/app:1 …`",
            ),
            ("oci-archive:/tmp/x.tar", "unpack it"),
            ("containers-storage:app:1", "transport is not supported"),
            ("App:1.0", "\"App:1.0\": repository name must be lowercase"),
            ("app:1.0 extra", "contains whitespace"),
            ("./app.tar", "looks like a path"),
            ("/tmp/nowhere/app", "looks like a path"),
        ];
        for (input, expected) in cases {
            let err = ImageSource::parse(input).unwrap_err();
            let message = err.to_string();
            assert!(message.contains(expected), "{input:?}: {message}");
            if !input.trim().is_empty() {
                assert!(
                    message.contains(&format!("{input:?}")),
                    "{input:?}: {message}"
                );
            }
        }
    }

    #[test]
    fn existing_paths_get_the_right_prefix_suggested() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("app.tar");
        std::fs::write(&file, b"").unwrap();
        let err = ImageSource::parse(&file.display().to_string()).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("use \"docker-archive:{}\"", file.display())),
            "{err}"
        );
        let err = ImageSource::parse(&tmp.path().display().to_string()).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("use \"oci:{}\"", tmp.path().display())),
            "{err}"
        );
    }

    #[test]
    fn default_repositories() {
        let cases = [
            ("app", Some("app")),
            ("app:1.0", Some("app")),
            ("team/app:1.0", Some("team/app")),
            ("docker.io/library/app:1", Some("app")),
            ("library/app", Some("app")),
            ("index.docker.io/library/app", Some("app")),
            ("docker.io/team/app", Some("team/app")),
            ("ghcr.io/owner/app:v1", Some("owner/app")),
            ("ghcr.io/library/app", Some("library/app")),
            (
                "localhost:5000/a/b/c@sha256:6790d375eb3a8ae8d91bf1ec78dddc5a7b8dd96e7cf74309a87254630773e6f0",
                Some("a/b/c"),
            ),
            ("6790d375eb3a", None),
            (
                "sha256:6790d375eb3a8ae8d91bf1ec78dddc5a7b8dd96e7cf74309a87254630773e6f0",
                None,
            ),
            ("oci:./layout:v1", None),
            ("docker-archive:app.tar", None),
        ];
        for (input, expected) in cases {
            let source = ImageSource::parse(input).unwrap();
            assert_eq!(
                source.default_repository().as_deref(),
                expected,
                "{input:?}"
            );
        }
    }

    #[test]
    fn own_tags() {
        let id = "6790d375eb3a8ae8d91bf1ec78dddc5a7b8dd96e7cf74309a87254630773e6f0";
        let cases: Vec<(String, Option<&str>)> = vec![
            ("app:1.2".into(), Some("1.2")),
            ("team/app:1.0-rc".into(), Some("1.0-rc")),
            ("localhost:5000/app:v2".into(), Some("v2")),
            ("localhost:5000/app".into(), None),
            ("app".into(), None),
            (format!("app@sha256:{id}"), None),
            (format!("app:1.2@sha256:{id}"), Some("1.2")),
            ("6790d375eb3a".into(), None),
            (format!("sha256:{id}"), None),
            ("oci:/tmp/layout:v1".into(), Some("v1")),
            ("oci:/tmp/layout".into(), None),
            ("docker-archive:/tmp/app.tar".into(), None),
        ];
        for (input, tag) in cases {
            let source = ImageSource::parse(&input).unwrap();
            assert_eq!(source.own_tag().as_deref(), tag, "{input}");
            let expected = tag.unwrap_or("latest");
            assert_eq!(source.default_tags(), [expected], "{input}");
        }
    }

    #[test]
    fn display_is_what_was_given() {
        for input in [
            "team/app:1.0",
            "6790d375eb3a",
            "oci:./layout",
            "oci:/tmp/layout:v1",
            "oci:/tmp/a:b/layout",
            "docker-archive:../app.tar",
        ] {
            let source = ImageSource::parse(input).unwrap();
            assert_eq!(source.display(), input);
            assert_eq!(source.to_string(), input);
        }
    }

    #[test]
    fn image_ids() {
        for id in [
            "6790d375eb3a",
            "6790d375eb3a8ae8d91bf1ec78dddc5a7b8dd96e7cf74309a87254630773e6f0",
            "sha256:6790d375eb3a8ae8d91bf1ec78dddc5a7b8dd96e7cf74309a87254630773e6f0",
            "sha256:6790d375eb3a",
        ] {
            assert!(looks_like_image_id(id), "{id}");
        }
        for name in [
            "6790d375eb3",
            "6790D375EB3A",
            "6790d375eb3a8ae8d91bf1ec78dddc5a7b8dd96e7cf74309a87254630773e6f0a",
            "sha256:6790",
            "app",
            "6790d375eb3a:1",
            "deadbeefcafx12",
            "sha512:6790d375eb3a",
        ] {
            assert!(!looks_like_image_id(name), "{name}");
        }
    }
}

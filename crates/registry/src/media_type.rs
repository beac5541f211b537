//! The media types a copy has to tell apart.

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The `{}` blob OCI 1.1 artifacts use as a placeholder config or layer.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Windows base layers that Docker Hub images point at by URL rather than host.
pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// Docker image manifest schema 1, long deprecated; recognised only to be refused clearly.
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The short-lived OCI 1.1-rc artifact manifest, dropped from the final spec; refused clearly.
pub const OCI_ARTIFACT_MANIFEST: &str = "application/vnd.oci.artifact.manifest.v1+json";

/// The `Accept` header for manifest requests. Registries such as distribution refuse to serve
/// an OCI index (or fall back to a converted schema) unless the client lists its type.
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json";

/// The media type without parameters or surrounding whitespace: the value of a `Content-Type`
/// such as `application/vnd.oci.image.index.v1+json; charset=utf-8` reduced to what identifies
/// the format.
pub fn essence(content_type: &str) -> &str {
    content_type
        .split_once(';')
        .map_or(content_type, |(essence, _)| essence)
        .trim()
}

// Media types are case-insensitive (RFC 6838), and a Content-Type may carry parameters.
fn is(mt: &str, expected: &str) -> bool {
    essence(mt).eq_ignore_ascii_case(expected)
}

pub fn is_index(mt: &str) -> bool {
    is(mt, OCI_INDEX) || is(mt, DOCKER_MANIFEST_LIST)
}

pub fn is_image_manifest(mt: &str) -> bool {
    is(mt, OCI_MANIFEST) || is(mt, DOCKER_MANIFEST)
}

/// Either kind of schema 2 / OCI manifest this tool can copy.
pub fn is_manifest(mt: &str) -> bool {
    is_index(mt) || is_image_manifest(mt)
}

pub fn is_schema1(mt: &str) -> bool {
    is(mt, DOCKER_SCHEMA1) || is(mt, DOCKER_SCHEMA1_SIGNED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_lists_the_four_manifest_types() {
        let expected = [
            DOCKER_MANIFEST,
            DOCKER_MANIFEST_LIST,
            OCI_MANIFEST,
            OCI_INDEX,
        ]
        .join(", ");
        assert_eq!(MANIFEST_ACCEPT, expected);
        for mt in MANIFEST_ACCEPT.split(", ") {
            assert!(is_manifest(mt), "{mt}");
        }
    }

    #[test]
    fn classification_table() {
        // (media type, index, image manifest, schema 1)
        let cases = [
            (OCI_INDEX, true, false, false),
            (DOCKER_MANIFEST_LIST, true, false, false),
            (OCI_MANIFEST, false, true, false),
            (DOCKER_MANIFEST, false, true, false),
            (
                "application/vnd.oci.image.index.v1+json; charset=utf-8",
                true,
                false,
                false,
            ),
            (
                " Application/VND.Docker.Distribution.Manifest.V2+JSON ",
                false,
                true,
                false,
            ),
            (DOCKER_SCHEMA1, false, false, true),
            (DOCKER_SCHEMA1_SIGNED, false, false, true),
            (OCI_ARTIFACT_MANIFEST, false, false, false),
            (OCI_CONFIG, false, false, false),
            (DOCKER_CONFIG, false, false, false),
            (OCI_EMPTY, false, false, false),
            (OCI_LAYER_GZIP, false, false, false),
            ("application/json", false, false, false),
            ("", false, false, false),
        ];
        for (mt, index, image, schema1) in cases {
            assert_eq!(is_index(mt), index, "is_index({mt:?})");
            assert_eq!(is_image_manifest(mt), image, "is_image_manifest({mt:?})");
            assert_eq!(is_manifest(mt), index || image, "is_manifest({mt:?})");
            assert_eq!(is_schema1(mt), schema1, "is_schema1({mt:?})");
        }
    }

    #[test]
    fn essence_strips_parameters() {
        assert_eq!(essence("a/b; charset=utf-8"), "a/b");
        assert_eq!(essence("  a/b  "), "a/b");
        assert_eq!(essence("a/b"), "a/b");
        assert_eq!(essence(""), "");
    }
}

//! What to do about a failure, in the CLI's own terms: its flags and the environment variables
//! it reads. The registry crate's messages name neither (it also serves callers with no command
//! line, such as an operator), so the wording that names them lives here, keyed by the error.

use ferry_registry::Error;
use ferry_registry::ecr::EcrError;
use ferry_registry::multi_arch::ListError;

/// The hint for the first registry-crate error in `error`'s chain, if one applies.
pub fn for_cli(error: &anyhow::Error) -> Option<String> {
    error.chain().find_map(|cause| {
        if let Some(e) = cause.downcast_ref::<Error>() {
            Some(registry(e))
        } else if let Some(e) = cause.downcast_ref::<ferry_local_image::Error>() {
            // A push error wraps the registry's transparently: its chain skips the wrapped one.
            Some(e.registry().and_then(registry))
        } else if let Some(e) = cause.downcast_ref::<EcrError>() {
            Some(ecr(e))
        } else {
            cause.downcast_ref::<ListError>().map(list)
        }
    })?
}

fn registry(error: &Error) -> Option<String> {
    match error {
        Error::GaveUp { source, .. } => registry(source),
        Error::Ecr(e) => ecr(e),
        Error::MultiArch(e) => list(e),
        Error::Auth { registry, reason } if reason.contains("no credentials were found") => {
            Some(format!(
                "ferry reads docker's config.json ($DOCKER_CONFIG/config.json, else \
                 ~/.docker/config.json): run `docker login {registry}` first"
            ))
        }
        Error::Config(text) if text.contains("ECR registry URL") => Some(
            "the ECR registry URL comes from --ecr-registry-url or FERRY_ECR_REGISTRY_URL".into(),
        ),
        _ => None,
    }
}

const REGION: &str = "set AWS_REGION, pass --region, or name a region in the AWS profile";

fn ecr(error: &EcrError) -> Option<String> {
    match error {
        EcrError::NoCredentials { .. } => Some(
            "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or run where a role is \
             available"
                .into(),
        ),
        EcrError::NoRegion => Some(REGION.into()),
        EcrError::InvalidRegistry { reason, .. } if reason.contains("needs a region") => {
            Some(REGION.into())
        }
        EcrError::RepositoryNotFound { .. } => Some("drop --no-create to create it".into()),
        _ => None,
    }
}

fn list(error: &ListError) -> Option<String> {
    Some(match error {
        ListError::MissingSources {
            registry,
            repository,
            ..
        } => format!(
            "see what {registry}/{repository} holds with `ferry images {registry}/{repository}`"
        ),
        ListError::DuplicatePlatform { .. } => "--allow-duplicate-platforms permits it; \
             --platform-override SOURCE=OS/ARCH corrects a wrong one"
            .into(),
        ListError::OtherRegistry { .. } => "bring the image over first with `ferry copy`".into(),
        ListError::NoPlatform { source_ref, .. } => {
            format!("give one with --platform-override {source_ref}=OS/ARCH[/VARIANT]")
        }
        ListError::OverrideOnList { .. } | ListError::OverrideUnknownSource { .. } => {
            "--platform-override takes SOURCE=OS/ARCH with SOURCE as typed among the sources".into()
        }
        ListError::NotDockerChild { .. } => {
            "--format docker cannot hold it: use --format oci or auto".into()
        }
        ListError::DockerAnnotations => {
            "--format docker: drop --annotation or use --format oci".into()
        }
        ListError::Empty => "--attestations drop removed every source".into(),
        ListError::NoSources => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(error: impl Into<Error>) -> String {
        let error = anyhow::Error::new(error.into()).context("while doing something");
        for_cli(&error).unwrap_or_default()
    }

    #[test]
    fn library_errors_get_the_cli_s_flags_and_variables() {
        assert!(hint(EcrError::NoRegion).contains("AWS_REGION"));
        let missing = EcrError::RepositoryNotFound {
            repository: "app".into(),
            registry: "r".into(),
        };
        assert!(hint(missing).contains("--no-create"));
        let login = Error::Auth {
            registry: "ghcr.io".into(),
            reason: "the registry requires a login and no credentials were found for it".into(),
        };
        let retried = Error::GaveUp {
            attempts: 2,
            source: Box::new(login),
        };
        assert!(hint(retried).contains("docker login ghcr.io"));
        let docker = ListError::DockerAnnotations;
        assert!(hint(Error::MultiArch(docker)).contains("--format oci"));
        assert_eq!(hint(Error::Other("manifest unknown".into())), "");
    }
}

//! Making sure a repository exists with the requested settings: ECR, unlike most registries,
//! rejects a push to a repository nobody created.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_ecr::types::{ImageScanningConfiguration, Repository};

use super::convert::{
    describe_encryption, encryption_configuration, encryption_matches, exclusion_filters, sdk_tags,
    state_of,
};
use super::error::repo_target;
use super::repository::{Wanted, describe_mutability};
use super::{
    Drift, Ecr, EcrError, EcrHost, EnsureMode, RepositorySettings, RepositoryState, TagMutability,
};

const NONE: &str = "<none>";

impl Ecr {
    /// Makes `name` exist in `host`'s registry with `settings`: creates it (with every setting)
    /// when missing and `mode` allows, otherwise compares each requested setting and reports
    /// (or, with `enforce`, corrects) the differences. Losing a creation race to a concurrent
    /// creator is not an error: the winner's repository is compared like any existing one.
    pub async fn ensure_repository(
        &self,
        host: &EcrHost,
        name: &str,
        settings: &RepositorySettings,
        mode: EnsureMode,
    ) -> Result<RepositoryState, EcrError> {
        reject_public(host)?;
        let wanted = settings.validate()?;
        if let Some(existing) = self.describe_raw(host, name).await? {
            return self.reconcile(host, name, existing, &wanted).await;
        }
        if mode == EnsureMode::MustExist {
            return Err(EcrError::RepositoryNotFound {
                repository: name.to_string(),
                registry: host.host(),
            });
        }
        match self.create(host, name, &wanted).await {
            Ok(created) => {
                self.put_policies(host, name, &wanted).await?;
                let mut state = state_of(host, name, &created);
                state.created = true;
                Ok(state)
            }
            Err(err) if err.code() == Some("RepositoryAlreadyExistsException") => {
                tracing::debug!(repository = name, registry = %host, "created concurrently");
                match self.describe_raw(host, name).await? {
                    Some(existing) => self.reconcile(host, name, existing, &wanted).await,
                    // Created and deleted again in between: report the race as it happened.
                    None => Err(err),
                }
            }
            Err(err) => Err(err),
        }
    }

    /// The repository as ECR reports it, or `None` when it does not exist.
    pub async fn describe_repository(
        &self,
        host: &EcrHost,
        name: &str,
    ) -> Result<Option<RepositoryState>, EcrError> {
        reject_public(host)?;
        Ok(self
            .describe_raw(host, name)
            .await?
            .map(|repo| state_of(host, name, &repo)))
    }

    async fn describe_raw(
        &self,
        host: &EcrHost,
        name: &str,
    ) -> Result<Option<Repository>, EcrError> {
        let mut call = self
            .host_client(host)
            .describe_repositories()
            .repository_names(name);
        if let Some(account) = &host.account {
            call = call.registry_id(account);
        }
        match self
            .gated(&host.region, "DescribeRepositories", call.send())
            .await
        {
            Ok(output) => Ok(output
                .repositories()
                .iter()
                .find(|r| r.repository_name() == Some(name))
                .cloned()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_repository_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(err) => Err(EcrError::from_sdk(
                "DescribeRepositories",
                repo_target(host, name),
                err,
            )),
        }
    }

    async fn create(
        &self,
        host: &EcrHost,
        name: &str,
        wanted: &Wanted,
    ) -> Result<Repository, EcrError> {
        const OP: &str = "CreateRepository";
        let mut call = self
            .host_client(host)
            .create_repository()
            .repository_name(name);
        if let Some(account) = &host.account {
            call = call.registry_id(account);
        }
        if let Some((mutability, exclusions)) = &wanted.mutability {
            call = call.image_tag_mutability(mutability.to_sdk());
            for filter in exclusion_filters(exclusions)? {
                call = call.image_tag_mutability_exclusion_filters(filter);
            }
        }
        if let Some(scan) = wanted.scan_on_push {
            call = call.image_scanning_configuration(
                ImageScanningConfiguration::builder()
                    .scan_on_push(scan)
                    .build(),
            );
        }
        if let Some(encryption) = &wanted.encryption {
            call = call.encryption_configuration(encryption_configuration(encryption)?);
        }
        for tag in sdk_tags(&wanted.tags)? {
            call = call.tags(tag);
        }
        let output = self
            .gated(&host.region, OP, call.send())
            .await
            .map_err(|e| EcrError::from_sdk(OP, repo_target(host, name), e))?;
        output
            .repository()
            .cloned()
            .ok_or_else(|| EcrError::Unexpected {
                operation: OP,
                target: repo_target(host, name),
                reason: "no repository in the answer".into(),
            })
    }

    async fn put_policies(
        &self,
        host: &EcrHost,
        name: &str,
        wanted: &Wanted,
    ) -> Result<(), EcrError> {
        if let Some((text, _)) = &wanted.lifecycle_policy {
            self.put_lifecycle_policy(host, name, text).await?;
        }
        if let Some((text, _)) = &wanted.repository_policy {
            self.set_repository_policy(host, name, text).await?;
        }
        Ok(())
    }

    /// Compares each requested setting with `repo`; corrects what can be corrected when asked.
    async fn reconcile(
        &self,
        host: &EcrHost,
        name: &str,
        repo: Repository,
        wanted: &Wanted,
    ) -> Result<RepositoryState, EcrError> {
        let mut state = state_of(host, name, &repo);
        let enforce = wanted.enforce;

        if let Some((want, want_exclusions)) = &wanted.mutability {
            let actual_exclusions: BTreeSet<String> =
                state.mutability_exclusions.iter().cloned().collect();
            if *want != state.tag_mutability || *want_exclusions != actual_exclusions {
                let mut drift = Drift {
                    setting: "tag_mutability".into(),
                    wanted: describe_mutability(*want, want_exclusions),
                    actual: describe_mutability(state.tag_mutability, &actual_exclusions),
                    corrected: false,
                };
                if enforce {
                    self.put_tag_mutability(host, name, *want, want_exclusions)
                        .await?;
                    state.tag_mutability = *want;
                    state.mutability_exclusions = want_exclusions.iter().cloned().collect();
                    drift.corrected = true;
                }
                state.drift.push(drift);
            }
        }

        if let Some(want) = wanted.scan_on_push
            && want != state.scan_on_push
        {
            let mut drift = Drift {
                setting: "scan_on_push".into(),
                wanted: want.to_string(),
                actual: state.scan_on_push.to_string(),
                corrected: false,
            };
            if enforce {
                self.put_scan_on_push(host, name, want).await?;
                state.scan_on_push = want;
                drift.corrected = true;
            }
            state.drift.push(drift);
        }

        if let Some(want) = &wanted.encryption {
            let actual = repo.encryption_configuration();
            if !encryption_matches(want, actual) {
                state.drift.push(Drift {
                    setting: "encryption".into(),
                    wanted: want.to_string(),
                    actual: actual.map_or_else(|| NONE.to_string(), describe_encryption),
                    // ECR has no call to change a repository's encryption.
                    corrected: false,
                });
            }
        }

        if !wanted.tags.is_empty() {
            self.reconcile_tags(host, name, &mut state, &wanted.tags, enforce)
                .await?;
        }

        if let Some((text, want)) = &wanted.lifecycle_policy {
            let actual = self.lifecycle_policy(host, name).await?;
            if let Some(mut drift) = policy_drift("lifecycle_policy", want, actual.as_deref()) {
                if enforce {
                    self.put_lifecycle_policy(host, name, text).await?;
                    drift.corrected = true;
                }
                state.drift.push(drift);
            }
        }

        if let Some((text, want)) = &wanted.repository_policy {
            let actual = self.repository_policy(host, name).await?;
            if let Some(mut drift) = policy_drift("repository_policy", want, actual.as_deref()) {
                if enforce {
                    self.set_repository_policy(host, name, text).await?;
                    drift.corrected = true;
                }
                state.drift.push(drift);
            }
        }

        Ok(state)
    }

    async fn reconcile_tags(
        &self,
        host: &EcrHost,
        name: &str,
        state: &mut RepositoryState,
        tags: &[(String, String)],
        enforce: bool,
    ) -> Result<(), EcrError> {
        let target = repo_target(host, name);
        let arn = state.arn.clone().ok_or_else(|| EcrError::Unexpected {
            operation: "DescribeRepositories",
            target: target.clone(),
            reason: "no repositoryArn in the answer".into(),
        })?;
        let client = self.host_client(host);
        let output = self
            .gated(
                &host.region,
                "ListTagsForResource",
                client.list_tags_for_resource().resource_arn(&arn).send(),
            )
            .await
            .map_err(|e| EcrError::from_sdk("ListTagsForResource", target.clone(), e))?;
        let actual: HashMap<&str, &str> =
            output.tags().iter().map(|t| (t.key(), t.value())).collect();
        let differing: Vec<(String, String)> = tags
            .iter()
            .filter(|(key, value)| actual.get(key.as_str()) != Some(&value.as_str()))
            .cloned()
            .collect();
        if differing.is_empty() {
            return Ok(());
        }
        if enforce {
            let mut call = client.tag_resource().resource_arn(&arn);
            for tag in sdk_tags(&differing)? {
                call = call.tags(tag);
            }
            self.gated(&host.region, "TagResource", call.send())
                .await
                .map_err(|e| EcrError::from_sdk("TagResource", target.clone(), e))?;
        }
        for (key, value) in differing {
            let actual = actual.get(key.as_str()).map_or(NONE, |v| v).to_string();
            state.drift.push(Drift {
                setting: format!("tag:{key}"),
                wanted: value,
                actual,
                corrected: enforce,
            });
        }
        Ok(())
    }

    async fn put_tag_mutability(
        &self,
        host: &EcrHost,
        name: &str,
        mutability: TagMutability,
        exclusions: &BTreeSet<String>,
    ) -> Result<(), EcrError> {
        let mut call = self
            .host_client(host)
            .put_image_tag_mutability()
            .repository_name(name)
            .image_tag_mutability(mutability.to_sdk());
        if let Some(account) = &host.account {
            call = call.registry_id(account);
        }
        for filter in exclusion_filters(exclusions)? {
            call = call.image_tag_mutability_exclusion_filters(filter);
        }
        self.gated(&host.region, "PutImageTagMutability", call.send())
            .await
            .map_err(|e| EcrError::from_sdk("PutImageTagMutability", repo_target(host, name), e))?;
        Ok(())
    }

    async fn put_scan_on_push(
        &self,
        host: &EcrHost,
        name: &str,
        scan: bool,
    ) -> Result<(), EcrError> {
        let mut call = self
            .host_client(host)
            .put_image_scanning_configuration()
            .repository_name(name)
            .image_scanning_configuration(
                ImageScanningConfiguration::builder()
                    .scan_on_push(scan)
                    .build(),
            );
        if let Some(account) = &host.account {
            call = call.registry_id(account);
        }
        self.gated(&host.region, "PutImageScanningConfiguration", call.send())
            .await
            .map_err(|e| {
                EcrError::from_sdk("PutImageScanningConfiguration", repo_target(host, name), e)
            })?;
        Ok(())
    }

    async fn lifecycle_policy(
        &self,
        host: &EcrHost,
        name: &str,
    ) -> Result<Option<String>, EcrError> {
        let mut call = self
            .host_client(host)
            .get_lifecycle_policy()
            .repository_name(name);
        if let Some(account) = &host.account {
            call = call.registry_id(account);
        }
        match self
            .gated(&host.region, "GetLifecyclePolicy", call.send())
            .await
        {
            Ok(output) => Ok(output.lifecycle_policy_text().map(str::to_string)),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_lifecycle_policy_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(err) => Err(EcrError::from_sdk(
                "GetLifecyclePolicy",
                repo_target(host, name),
                err,
            )),
        }
    }

    async fn put_lifecycle_policy(
        &self,
        host: &EcrHost,
        name: &str,
        text: &str,
    ) -> Result<(), EcrError> {
        let mut call = self
            .host_client(host)
            .put_lifecycle_policy()
            .repository_name(name)
            .lifecycle_policy_text(text);
        if let Some(account) = &host.account {
            call = call.registry_id(account);
        }
        self.gated(&host.region, "PutLifecyclePolicy", call.send())
            .await
            .map_err(|e| EcrError::from_sdk("PutLifecyclePolicy", repo_target(host, name), e))?;
        Ok(())
    }

    async fn repository_policy(
        &self,
        host: &EcrHost,
        name: &str,
    ) -> Result<Option<String>, EcrError> {
        let mut call = self
            .host_client(host)
            .get_repository_policy()
            .repository_name(name);
        if let Some(account) = &host.account {
            call = call.registry_id(account);
        }
        match self
            .gated(&host.region, "GetRepositoryPolicy", call.send())
            .await
        {
            Ok(output) => Ok(output.policy_text().map(str::to_string)),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_repository_policy_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(err) => Err(EcrError::from_sdk(
                "GetRepositoryPolicy",
                repo_target(host, name),
                err,
            )),
        }
    }

    async fn set_repository_policy(
        &self,
        host: &EcrHost,
        name: &str,
        text: &str,
    ) -> Result<(), EcrError> {
        let mut call = self
            .host_client(host)
            .set_repository_policy()
            .repository_name(name)
            .policy_text(text);
        if let Some(account) = &host.account {
            call = call.registry_id(account);
        }
        self.gated(&host.region, "SetRepositoryPolicy", call.send())
            .await
            .map_err(|e| EcrError::from_sdk("SetRepositoryPolicy", repo_target(host, name), e))?;
        Ok(())
    }
}

fn reject_public(host: &EcrHost) -> Result<(), EcrError> {
    if host.is_public() {
        return Err(EcrError::Unsupported {
            what: "managing repositories (ECR Public has its own API)".into(),
            registry: host.host(),
        });
    }
    Ok(())
}

/// Policies are compared as JSON values, so formatting and key order do not count as drift.
fn policy_drift(setting: &str, want: &serde_json::Value, actual: Option<&str>) -> Option<Drift> {
    let actual_value = actual.and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok());
    if actual_value.as_ref() == Some(want) {
        return None;
    }
    Some(Drift {
        setting: setting.to_string(),
        wanted: want.to_string(),
        actual: match (&actual_value, actual) {
            (Some(value), _) => value.to_string(),
            (None, Some(text)) => text.to_string(),
            (None, None) => NONE.to_string(),
        },
        corrected: false,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn policies_compare_as_json() {
        let want: serde_json::Value = serde_json::from_str(r#"{"rules":[{"a":1,"b":2}]}"#).unwrap();
        assert!(policy_drift("p", &want, Some(r#"{ "rules": [ {"b":2, "a":1} ] }"#)).is_none());
        let drift = policy_drift("p", &want, None).unwrap();
        assert_eq!(drift.actual, "<none>");
        let drift = policy_drift("p", &want, Some(r#"{"rules":[]}"#)).unwrap();
        assert_eq!(drift.actual, r#"{"rules":[]}"#);
        assert_eq!(drift.wanted, r#"{"rules":[{"a":1,"b":2}]}"#);
    }
}

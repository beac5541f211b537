//! `ferry action`: the GitHub Action's entry point (see `action.yml` at the repository root).
//!
//! Reads the inputs from `INPUT_*`, runs the command inside a log group, masks every ECR login
//! the moment it is fetched, then writes the step's outputs and job summary. A failure becomes
//! an `::error::` annotation with the cause (and, where one is known, what to do about it), a
//! failure summary, and exit code 1.

mod copy;
mod inputs;
mod mirror;
mod outputs;
mod summary;
mod workflow;

use std::path::PathBuf;

use anyhow::Context;

use crate::commands::{manifest, push};
use crate::output::one_line;
use inputs::{ActionCommand, Lookup};
use workflow::{END_GROUP, command, error_line, group_line};

pub async fn run() -> anyhow::Result<()> {
    let lookup = |key: &str| std::env::var(key).ok();
    let env: Lookup<'_> = &lookup;
    let command = match inputs::read(env) {
        Ok(command) => command,
        Err(error) => {
            report("ferry action: invalid input", &error);
            return Err(error);
        }
    };
    match command {
        ActionCommand::Push(inputs) => {
            let image = inputs.args.image.clone();
            let work = push::execute(&inputs.args, Some(workflow::masking_observer()), None);
            let result = run_step("push", &format!("Push {image}"), &image, work, env).await;
            // Removes the inline policies staged in /tmp: they may hold account ids and ARNs.
            drop(inputs);
            let outcome = result?;
            for note in &outcome.notes {
                workflow::command(&workflow::warning_line("ferry push", note));
            }
            print!("{}", crate::output::push_summary(&outcome));
            write_files(
                env,
                &outputs::push_outputs(&outcome),
                &summary::push_summary(&outcome),
            )
        }
        ActionCommand::Manifest(inputs) => {
            let target = inputs.args.target.clone();
            let work = manifest::execute(&inputs.args, Some(workflow::masking_observer()));
            let title = format!("Create the manifest list {target}");
            let result = run_step("manifest", &title, &target, work, env).await;
            drop(inputs);
            let outcome = result?;
            print!("{}", crate::output::list_summary(&outcome));
            write_files(
                env,
                &outputs::manifest_outputs(&outcome)?,
                &summary::manifest_summary(&outcome),
            )
        }
        ActionCommand::Mirror(args) => mirror::run(args, env).await,
        ActionCommand::Copy(inputs) => copy::run(inputs, env).await,
    }
}

/// Runs a command's work inside a log group; a failure becomes an annotation and a failure
/// summary naming `subject`.
async fn run_step<T>(
    name: &str,
    title: &str,
    subject: &str,
    work: impl Future<Output = anyhow::Result<T>>,
    env: Lookup<'_>,
) -> anyhow::Result<T> {
    command(&group_line(title));
    let result = work.await;
    command(END_GROUP);
    result.inspect_err(|error| {
        let cause = one_line(error);
        report(&format!("ferry {name} failed"), error);
        if let Some(path) = env_path(env, "GITHUB_STEP_SUMMARY") {
            let md = summary::failure_summary(name, subject, &cause, hint(&cause));
            // The annotation already carries the cause; a summary that cannot be written
            // must not replace it with a less useful error.
            if let Err(e) = workflow::append(&path, &md) {
                eprintln!("ferry: cannot write the job summary: {}", one_line(&e));
            }
        }
    })
}

fn write_files(env: Lookup<'_>, outputs: &str, summary: &str) -> anyhow::Result<()> {
    let written = (|| {
        match env_path(env, "GITHUB_OUTPUT") {
            Some(path) => {
                workflow::append(&path, outputs).context("cannot write the step's outputs")?
            }
            None => eprintln!("ferry: GITHUB_OUTPUT is not set; no step outputs written"),
        }
        if let Some(path) = env_path(env, "GITHUB_STEP_SUMMARY") {
            workflow::append(&path, summary).context("cannot write the job summary")?;
        }
        Ok(())
    })();
    if let Err(error) = &written {
        report("ferry action: cannot write the step's results", error);
    }
    written
}

fn env_path(env: Lookup<'_>, key: &str) -> Option<PathBuf> {
    env(key).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The `::error::` annotation: the whole cause on one line, then a hint if one applies.
fn report(title: &str, error: &anyhow::Error) {
    let cause = one_line(error);
    let message = match hint(&cause) {
        Some(hint) => format!("{cause}\n{hint}"),
        None => cause,
    };
    command(&error_line(title, &message));
}

/// What a workflow author can do about the commonest failures, in the Action's own terms (the
/// registry crate's messages name no flag or variable; the CLI's own hints are in `hints`).
fn hint(cause: &str) -> Option<&'static str> {
    let lower = cause.to_ascii_lowercase();
    if lower.contains("no aws credentials found") {
        Some(
            "Give the job AWS credentials first: aws-actions/configure-aws-credentials (with \
             `permissions: id-token: write` for OIDC), or AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY in the step's `env`.",
        )
    } else if lower.contains("no aws region configured") {
        Some("Set the `region` input, or AWS_REGION in the job's `env`.")
    } else if lower.contains("creating it is turned off") {
        Some(
            "The repository is missing and `create-repository` is false: create it, or set `create-repository: true`.",
        )
    } else if lower.contains("accessdenied") || lower.contains("not authorized") {
        Some(
            "The AWS identity lacks an ECR permission; the README's \"IAM permissions\" section \
             lists what each step needs.",
        )
    } else if lower.contains("docker.sock") || lower.contains("docker engine") {
        Some(
            "The image is read from the runner's Docker Engine (its socket is mounted into the \
             Action): build or load it earlier in the same job, or push an `oci:DIR` layout or \
             a `docker-archive:FILE` from the workspace.",
        )
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::hint;

    #[test]
    fn hints_for_common_failures() {
        let credentials = "GetAuthorizationToken 123456789012/us-east-1: no AWS credentials found";
        assert!(hint(credentials).is_some_and(|h| h.contains("configure-aws-credentials")));
        assert!(hint("no AWS region configured").is_some_and(|h| h.contains("`region`")));
        assert!(
            hint("repository app does not exist in r (and creating it is turned off)")
                .is_some_and(|h| h.contains("create-repository"))
        );
        assert!(
            hint("PutImage app in 1/us-east-1: AccessDeniedException: no")
                .is_some_and(|h| h.contains("IAM"))
        );
        assert_eq!(hint("manifest unknown"), None);
    }
}

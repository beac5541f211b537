//! No log level prints a secret: every command that logs into ECR, run at the highest
//! verbosity and under `FERRY_LOG` filters that ask the AWS SDK and the HTTP stack for
//! everything, against the ECR stand-in; the output is searched for every form of the registry
//! password. And the Action masks each form before anything could print it.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_testkit::ecr::EcrStandIn;
use ferry_testkit::{ImageSpec, LocalImage, TestRegistry, cli};

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

/// How loud each run is: extra arguments and `FERRY_LOG`.
const LOUD: &[(&[&str], Option<&str>)] = &[
    (&["-vvv"], None),
    (&[], Some("trace")),
    (
        &[],
        Some("aws_smithy_runtime=trace,hyper=trace,reqwest=trace"),
    ),
    (
        &["-v"],
        Some("aws_smithy_runtime_api=trace,aws_sdk_ecr=trace,aws_config=trace,hyper_util=trace"),
    ),
];

/// Every form the stand-in's registry password takes on the wire or in a config file.
fn secret_forms(stand_in: &EcrStandIn) -> Vec<String> {
    let password = stand_in.password();
    let basic = STANDARD.encode(format!("AWS:{password}"));
    vec![
        password,
        format!("Basic {basic}"),
        basic.trim_end_matches('=').to_string(),
        basic,
    ]
}

fn run(stand_in: &EcrStandIn, home: &Path, loud: (&[&str], Option<&str>), args: &[&str]) -> Output {
    let mut cmd = cli::command(FERRY, home, Some(stand_in));
    if let Some(filter) = loud.1 {
        cmd.env("FERRY_LOG", filter);
    }
    cmd.args(loud.0).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Fails naming the run and the form when `output` shows any secret; checks the run logged at
/// debug level at least, so a silent run cannot pass for a clean one.
fn assert_clean(what: &str, output: &str, forms: &[String]) {
    for form in forms {
        assert!(
            !output.contains(form.as_str()),
            "{what} printed a form of the password ({form}):\n{output}"
        );
    }
    assert!(
        !output.to_ascii_lowercase().contains("authorization: "),
        "{what} printed an Authorization header:\n{output}"
    );
    assert!(
        output.contains(" DEBUG ") || output.contains(" TRACE "),
        "{what} logged nothing at debug level:\n{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_command_prints_a_secret_at_any_log_level() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let forms = secret_forms(&stand_in);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let ecr = stand_in.ecr_host();
    let local = LocalImage::build(1, 16).unwrap();
    let src = TestRegistry::anonymous().await.unwrap();
    let mut spec = ImageSpec::new(&["linux/arm64"]);
    spec.seed = 9;
    let arm = ferry_testkit::build_single(&spec).unwrap();
    arm.push(&src.url(), "app", "arm64", None).await.unwrap();

    let from = format!("{}/app:arm64", src.host());
    let to = format!("{ecr}/team/app:arm64");
    let commands: Vec<Vec<&str>> = vec![
        vec![
            "push",
            &local.name,
            "--repository",
            "team/app",
            "--tag",
            "amd64",
        ],
        vec!["copy", &from, &to],
        vec!["manifest", "create", "team/app:multi", "amd64", "arm64"],
        vec!["manifest", "inspect", "team/app:multi"],
        vec!["images", "team/app"],
    ];
    for loud in LOUD {
        for args in &commands {
            let out = run(&stand_in, home, *loud, args);
            let what = format!(
                "ferry {} {} (FERRY_LOG={:?})",
                loud.0.join(" "),
                args.join(" "),
                loud.1
            );
            assert!(out.status.success(), "{what}: {}", text(&out.stderr));
            let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
            assert_clean(&what, &all, &forms);
        }
        // `login` prints the password on stdout by design; nothing else may.
        let out = run(&stand_in, home, *loud, &["login"]);
        assert_eq!(text(&out.stdout).trim_end(), stand_in.password());
        assert_clean(&format!("ferry login {loud:?}"), &text(&out.stderr), &forms);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_action_masks_every_form_and_debugs_with_runner_debug() {
    let stand_in = EcrStandIn::start().await.unwrap();
    let forms = secret_forms(&stand_in);
    let home = tempfile::tempdir().unwrap();
    let local = LocalImage::build(1, 16).unwrap();
    let out = cli::command(FERRY, home.path(), Some(&stand_in))
        .args(["action"])
        .envs([
            ("INPUT_COMMAND", "push"),
            ("INPUT_IMAGE", local.name.as_str()),
            ("INPUT_REPOSITORY", "team/action"),
            ("RUNNER_DEBUG", "1"),
        ])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    // The masks come first; the runner then hides each form wherever it appears.
    let password = stand_in.password();
    let basic = STANDARD.encode(format!("AWS:{password}"));
    for form in [&password, &basic] {
        assert!(
            stdout.contains(&format!("::add-mask::{form}\n")),
            "{form} not masked: {stdout}"
        );
    }
    let unmasked: String = stdout
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_clean("ferry action", &format!("{unmasked}{stderr}"), &forms);
    // RUNNER_DEBUG=1 is -vv: ferry's own debug lines, no trace.
    assert!(stderr.contains(" DEBUG "), "{stderr}");
    assert!(!stderr.contains(" TRACE "), "{stderr}");
    // With no `tags`, the image's own tag, as `ferry push` does.
    let own_tag = local.name.split_once(':').unwrap().1;
    assert!(
        stdout.contains(&format!("team/action:{own_tag}")),
        "{stdout}"
    );
}

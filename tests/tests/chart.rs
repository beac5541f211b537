//! The Helm chart `charts/ferry-operator`, checked with real Helm (helm-python-sdk) and the
//! official Kubernetes schemas (kubernetes-validate): lint, a matrix of values rendered and
//! validated strictly, the restricted Pod Security Standard, least-privilege RBAC and a values
//! schema that refuses unknown and mistyped values. The checks themselves are Python
//! (`charts/ferry-operator/tests/check_chart.py`), since both tools are Python libraries.

use std::path::Path;
use std::process::Command;

#[test]
fn the_chart_passes_helm_lint_schemas_pod_security_and_rbac_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = std::env::var("FERRY_TESTKIT_PYTHON").unwrap_or_else(|_| "python3".into());
    let output = Command::new(&python)
        .args([
            "-m",
            "unittest",
            "-v",
            "charts/ferry-operator/tests/check_chart.py",
        ])
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let report = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the chart's checks failed (pip install helm-python-sdk kubernetes-validate PyYAML, or \
         bash scripts/test.sh, installs what they need):\n{report}"
    );
    // A check that found nothing to check is not a pass.
    assert!(report.contains("Ran "), "{report}");
}

"""Checks of the ferry-operator chart with real Helm (PyPI helm-python-sdk, Helm v4 as a
library) and the official Kubernetes schemas (PyPI kubernetes-validate).

Run: python3 -m unittest charts/ferry-operator/tests/check_chart.py (the Rust test
tests/tests/chart.rs runs it as part of `cargo test`). Every rendered manifest of a matrix of
values is validated strictly; the Deployment is checked against the restricted Pod Security
Standard; the RBAC rules against what the operator is allowed to need; values.schema.json
against unknown and mistyped values.
"""

import json
import os
import pathlib
import unittest

import helm_python
import kubernetes_validate
import yaml

CHART = pathlib.Path(__file__).resolve().parent.parent
KUBE_VERSION = "1.33.0"
NAMESPACE = "ferry-system"

MATRIX = {
    "defaults": {},
    "single namespace": {"watchNamespaces": ["team-a"]},
    "two namespaces, named secrets": {
        "watchNamespaces": ["team-a", "team-b"],
        "secretNames": ["hub-creds"],
    },
    "irsa": {"serviceAccount": {"irsaRoleArn": "arn:aws:iam::123456789012:role/ferry"}},
    "pod identity": {"serviceAccount": {"annotations": {}}, "awsRegion": "eu-west-1"},
    "service monitor": {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}},
    "two replicas": {"replicaCount": 2},
    "no leader election": {"leaderElection": {"enabled": False}},
    "pinned digest": {"image": {"digest": "sha256:" + "a" * 64}},
}

# Kinds the official schemas do not know (CRDs of other projects).
FOREIGN_KINDS = {"ServiceMonitor"}


def render(values):
    chart = helm_python.Chart.load(str(CHART))
    try:
        out = chart.render(values, name="ferry", namespace=NAMESPACE, is_install=True)
    finally:
        chart.close()
    documents = []
    for path, text in sorted(out.items()):
        if not path.endswith(".yaml"):
            continue
        for document in yaml.safe_load_all(text):
            if document:
                documents.append(document)
    return documents


def of_kind(documents, kind):
    return [d for d in documents if d["kind"] == kind]


def rules_of(documents):
    rules = []
    for document in documents:
        if document["kind"] in ("Role", "ClusterRole"):
            rules.extend(document["rules"])
    return rules


class Lint(unittest.TestCase):
    def test_helm_lint_reports_nothing(self):
        for name, values in MATRIX.items():
            with self.subTest(values=name):
                result = helm_python.lint(str(CHART), values, strict=True, namespace=NAMESPACE)
                self.assertEqual(result["errors"], [], result)
                self.assertEqual(result["messages"], [], result)


class Manifests(unittest.TestCase):
    def test_every_manifest_passes_the_official_schemas(self):
        for name, values in MATRIX.items():
            documents = render(values)
            self.assertTrue(of_kind(documents, "Deployment"), name)
            for document in documents:
                if document["kind"] in FOREIGN_KINDS:
                    continue
                with self.subTest(values=name, kind=document["kind"], name=document["metadata"]["name"]):
                    kubernetes_validate.validate(document, KUBE_VERSION, strict=True)

    def test_the_crd_ships_with_the_chart(self):
        crds = list((CHART / "crds").glob("*.yaml"))
        self.assertTrue(crds, "charts/ferry-operator/crds/ holds no CRD")
        for path in crds:
            crd = yaml.safe_load(path.read_text())
            self.assertEqual(crd["kind"], "CustomResourceDefinition")
            self.assertEqual(crd["spec"]["names"]["kind"], "EcrImageMirror")
            kubernetes_validate.validate(crd, KUBE_VERSION, strict=True)

    def test_replicas_get_a_disruption_budget_and_a_spread(self):
        one = render({})
        self.assertEqual(of_kind(one, "PodDisruptionBudget"), [])
        two = render({"replicaCount": 2})
        self.assertEqual(len(of_kind(two, "PodDisruptionBudget")), 1)
        pod = of_kind(two, "Deployment")[0]["spec"]["template"]["spec"]
        self.assertEqual(len(pod["topologySpreadConstraints"]), 1)

    def test_irsa_annotates_the_service_account(self):
        arn = "arn:aws:iam::123456789012:role/ferry"
        account = of_kind(render({"serviceAccount": {"irsaRoleArn": arn}}), "ServiceAccount")[0]
        self.assertEqual(account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"], arn)
        self.assertIs(account["automountServiceAccountToken"], False)

    def test_watched_namespaces_become_the_operators_flags(self):
        args = of_kind(render({"watchNamespaces": ["a", "b"]}), "Deployment")[0]["spec"]["template"][
            "spec"]["containers"][0]["args"]
        self.assertIn("--namespace=a", args)
        self.assertIn("--namespace=b", args)


class PodSecurity(unittest.TestCase):
    """The restricted Pod Security Standard, checked field by field
    (https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted)."""

    def check_restricted(self, pod):
        context = pod.get("securityContext", {})
        self.assertIs(context.get("runAsNonRoot"), True)
        self.assertNotEqual(context.get("runAsUser"), 0)
        self.assertEqual(context.get("seccompProfile", {}).get("type"), "RuntimeDefault")
        self.assertFalse(pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"))
        for volume in pod.get("volumes", []):
            self.assertNotIn("hostPath", volume)
        for container in pod["containers"] + pod.get("initContainers", []):
            security = container["securityContext"]
            self.assertIs(security["allowPrivilegeEscalation"], False)
            self.assertIs(security["readOnlyRootFilesystem"], True)
            self.assertIs(security.get("privileged", False), False)
            self.assertEqual(security["capabilities"]["drop"], ["ALL"])
            self.assertNotIn("add", security["capabilities"])
            for port in container.get("ports", []):
                self.assertNotIn("hostPort", port)

    def test_every_rendering_is_restricted(self):
        for name, values in MATRIX.items():
            with self.subTest(values=name):
                pod = of_kind(render(values), "Deployment")[0]["spec"]["template"]["spec"]
                self.check_restricted(pod)

    def test_values_cannot_loosen_the_pod(self):
        for values in (
            {"securityContext": {"runAsUser": 0}},
            {"podSecurityContext": {"privileged": True}},
            {"containerSecurityContext": {"readOnlyRootFilesystem": False}},
        ):
            with self.subTest(values=values), self.assertRaises(helm_python.HelmError):
                render(values)


class Rbac(unittest.TestCase):
    def test_no_wildcards_and_secrets_read_only(self):
        for name, values in MATRIX.items():
            with self.subTest(values=name):
                for rule in rules_of(render(values)):
                    for field in ("apiGroups", "resources", "verbs"):
                        self.assertNotIn("*", rule[field], rule)
                    if "secrets" in rule["resources"]:
                        self.assertLessEqual(set(rule["verbs"]), {"get", "list", "watch"})

    def test_named_secrets_limit_the_rule(self):
        rules = rules_of(render({"secretNames": ["hub-creds"]}))
        secret_rules = [r for r in rules if "secrets" in r["resources"]]
        self.assertEqual([r.get("resourceNames") for r in secret_rules], [["hub-creds"]])

    def test_a_role_per_watched_namespace_and_no_cluster_role(self):
        documents = render({"watchNamespaces": ["team-a", "team-b"]})
        self.assertEqual(of_kind(documents, "ClusterRole"), [])
        namespaces = sorted(r["metadata"]["namespace"] for r in of_kind(documents, "Role")
                            if not r["metadata"]["name"].endswith("leader-election"))
        self.assertEqual(namespaces, ["team-a", "team-b"])

    def test_rules_match_what_the_operator_used(self):
        """The operator's end-to-end run against the API stand-in records every (verb, group,
        resource) it used; the chart grants exactly those."""
        recorded = CHART / "tests" / "operator-requests.json"
        used = {tuple(x) for x in json.loads(recorded.read_text())}
        # The event recorder patches an Event when the same one repeats (a series), which a
        # short end-to-end run never produces.
        used |= {("patch", "events.k8s.io", "events")}
        granted = set()
        for rule in rules_of(render({})):
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        granted.add((verb, group, resource))
        self.assertEqual(granted, used)


class Schema(unittest.TestCase):
    def test_unknown_and_mistyped_values_are_rejected(self):
        for values in (
            {"replicas": 2},
            {"replicaCount": "2"},
            {"replicaCount": 0},
            {"image": {"tag": 1.0}},
            {"image": {"digest": "latest"}},
            {"metrics": {"port": 70000}},
            {"serviceAccount": {"irsaRoleArn": "ferry-role"}},
            {"watchNamespaces": ["Team_A"]},
            {"leaderElection": {"enabled": "yes"}},
        ):
            with self.subTest(values=values), self.assertRaises(helm_python.HelmError):
                render(values)

    def test_two_replicas_without_leader_election_is_refused(self):
        with self.assertRaises(helm_python.HelmError):
            render({"replicaCount": 2, "leaderElection": {"enabled": False}})


class Versions(unittest.TestCase):
    def test_app_version_follows_the_workspace(self):
        chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
        workspace = (CHART.parent.parent / "Cargo.toml").read_text()
        version = next(
            line.split('"')[1]
            for line in workspace.splitlines()
            if line.startswith("version = ")
        )
        self.assertEqual(chart["appVersion"], version)


if __name__ == "__main__":
    os.chdir(CHART)
    unittest.main()

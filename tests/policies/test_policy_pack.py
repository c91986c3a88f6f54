"""The CrossGuard adapter: in-process over pulumi-policy's argument types, and end to end over the
gRPC protocol the Pulumi engine speaks to a running pack."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from policies import pack
from policies.catalog import ALL_RULES
from policies.engine import UNKNOWN
from tests.policies.support import tags

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
REPOSITORY = "aws:ecr/repository:Repository"
PROVIDER_PROPS = {"region": "eu-west-1", "allowedAccountIds": '["444455556666"]'}


def options(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def provider() -> PolicyProviderResource:
    return PolicyProviderResource(
        "pulumi:providers:aws", unknown_checking_proxy(dict(PROVIDER_PROPS)), "urn:provider", "aws-eu-west-1"
    )


def mutable_repository() -> dict[str, Any]:
    return {
        "name": "shop/web",
        "imageTagMutability": "MUTABLE",
        "imageScanningConfiguration": {"scanOnPush": True},
        # The key is created in the same update: its ARN is unknown during the first preview.
        "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": UNKNOWN_STRING_VALUE}],
        "tags": tags(),
    }


def policies_by_name(environment: str | None = "prod") -> dict[str, Any]:
    return {p.name: p for p in pack.build_policies(environment=lambda: environment)}


def run_resource_policy(name: str, props: dict[str, Any], environment: str | None = "prod") -> list[str]:
    policy = policies_by_name(environment)[name]
    args = ResourceValidationArgs(
        REPOSITORY, unknown_checking_proxy(props), "urn:repo", "web-eu-west-1", options(), provider()
    )
    reported: list[str] = []
    policy.validate(args, lambda message, urn=None: reported.append(message))
    return reported


# --- metadata ----------------------------------------------------------------------------------


def test_one_policy_per_rule_with_its_metadata() -> None:
    policies = pack.build_policies()
    assert [p.name for p in policies] == [r.name for r in ALL_RULES]
    levels = {"mandatory": EnforcementLevel.MANDATORY, "advisory": EnforcementLevel.ADVISORY}
    for policy, rule in zip(policies, ALL_RULES, strict=True):
        assert policy.description == rule.description
        assert policy.enforcement_level == levels[rule.level]
        expected = ResourceValidationPolicy if rule.scope == "resource" else StackValidationPolicy
        assert isinstance(policy, expected), rule.name


# --- in-process adaptation ---------------------------------------------------------------------


def test_plain_unwraps_proxies_and_marks_unknowns() -> None:
    proxied = unknown_checking_proxy({"a": [1, UNKNOWN_STRING_VALUE], "b": {"c": UNKNOWN_STRING_VALUE}})
    assert pack.plain(proxied) == {"a": [1, UNKNOWN], "b": {"c": UNKNOWN}}


def test_a_rule_judges_known_properties_next_to_unknown_ones() -> None:
    # pulumi-policy would skip a policy that touches an unknown value; the adapter does not need to.
    assert run_resource_policy("ecr-immutable-tags", mutable_repository()) == [
        "ECR repository shop/web has image tag mutability MUTABLE; set imageTagMutability to IMMUTABLE so a tag "
        "always names the image staging verified."
    ]
    assert run_resource_policy("ecr-kms-encryption", mutable_repository()) == []


def test_view_carries_the_provider_region_and_account_and_the_environment() -> None:
    args = ResourceValidationArgs(
        REPOSITORY, unknown_checking_proxy(mutable_repository()), "urn:repo", "web", options(True), provider()
    )
    v = pack.view_from_args(args, "prod")
    assert (v.region, v.account_id, v.environment, v.protect, v.retain_on_delete) == (
        "eu-west-1",
        "444455556666",
        "prod",
        True,
        None,
    )


def test_prod_only_rules_follow_the_stack_environment() -> None:
    cluster = {
        "name": "c",
        "endpointPublicAccess": True,
        "publicAccessCidrs": ["0.0.0.0/0"],
        "tags": tags("prod"),
    }

    def run(name: str, environment: str) -> list[str]:
        args = ResourceValidationArgs(
            "eks:index:Cluster", unknown_checking_proxy(cluster), "urn:c", "c", options(), None
        )
        reported: list[str] = []
        policies_by_name(environment)[name].validate(args, lambda m, u=None: reported.append(m))
        return reported

    assert len(run("eks-endpoint-not-open-to-internet-prod", "prod")) == 1
    assert run("eks-endpoint-not-open-to-internet-prod", "staging") == []
    assert len(run("eks-endpoint-not-open-to-internet", "staging")) == 1


def test_stack_environment_is_the_stack_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_STACK", "staging")
    assert pack.stack_environment() == "staging"
    monkeypatch.delenv("PULUMI_STACK")
    assert pack.stack_environment() is None


def stack_resource(type_: str, name: str, props: dict[str, Any], protect: bool = False) -> PolicyResource:
    return PolicyResource(
        type_, unknown_checking_proxy(props), f"urn:{name}", name, options(protect), provider(), None, [], {}
    )


def run_stack_policy(
    name: str, resources: list[PolicyResource], config: dict[str, Any] | None = None
) -> list[tuple[str, str | None]]:
    reported: list[tuple[str, str | None]] = []
    policy = policies_by_name("prod")[name]
    policy.validate(StackValidationArgs(resources, config), lambda m, u=None: reported.append((m, u)))
    return reported


def test_stack_policy_reports_against_the_resource() -> None:
    repo = stack_resource(REPOSITORY, "web", {**mutable_repository(), "imageTagMutability": "IMMUTABLE"})
    found = run_stack_policy("ecr-prod-repositories-retained", [repo])
    assert [u for _, u in found] == ["urn:web"]
    assert "(the policy engine cannot see retainOnDelete, only protect)" in found[0][0]
    protected = stack_resource(REPOSITORY, "web", mutable_repository(), protect=True)
    assert run_stack_policy("ecr-prod-repositories-retained", [protected]) == []


def registry_policy(account: str) -> PolicyResource:
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": ["ecr:ReplicateImage", "ecr:CreateRepository"],
        "Resource": "*",
    }
    return stack_resource(
        "aws:ecr/registryPolicy:RegistryPolicy",
        "replication",
        {"policy": json.dumps({"Statement": [statement]})},
    )


def test_peer_account_comes_from_the_policy_config() -> None:
    policy = registry_policy("999999999999")
    assert run_stack_policy("ecr-registry-policy-peer-account", [policy]) == []
    found = run_stack_policy("ecr-registry-policy-peer-account", [policy], {"peerAccountId": "111122223333"})
    assert [m.split(";")[0] for m, _ in found] == [
        "ECR registry policy replication names account 999999999999, not the peer account 111122223333"
    ]


def test_the_peer_account_rule_declares_its_config() -> None:
    policy = policies_by_name()["ecr-registry-policy-peer-account"]
    assert policy.config_schema is not None and "peerAccountId" in policy.config_schema.properties


# --- __main__ and the pack's own requirements --------------------------------------------------


def test_importing_main_does_not_start_the_pack() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import policies.__main__, policies.pack; print('imported')"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imported"


def test_the_pack_reads_only_import_safe_constants_from_infra() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, policies.pack; print(sorted(m for m in sys.modules if m.startswith('infra')))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['infra', 'infra.naming', 'infra.versions']"


def _requirement_names() -> set[str]:
    names = set()
    for line in (POLICIES / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(_normalise(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0]))
    return names


def _normalise(distribution: str) -> str:
    # PEP 503: pulumi_policy, Pulumi-Policy and pulumi.policy name the same distribution.
    return re.sub(r"[-_.]+", "-", distribution).lower()


def test_requirements_cover_what_the_pack_imports() -> None:
    imported: set[str] = set()
    for path in POLICIES.glob("*.py"):
        if path.name == "offline.py":  # the offline adapter runs with the whole project installed
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = {
        m
        for m in imported
        if m not in sys.stdlib_module_names and m not in ("policies", "infra", "__future__")
    }
    distributions = metadata.packages_distributions()
    needed = {_normalise(d) for m in third_party for d in distributions.get(m, [m])}
    assert "pulumi-policy" in _requirement_names()
    assert needed <= _requirement_names()


# --- end to end: the pack as the engine runs it ------------------------------------------------


@pytest.fixture(scope="module")
def served_pack() -> Iterator[str]:
    """Run policies/__main__.py from the policies/ directory, as Pulumi does, without the project's
    editable install (``-S`` skips .pth files), so only __main__'s own sys.path entry finds the code."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": sysconfig.get_paths()["purelib"],
        "PULUMI_STACK": "prod",
    }
    process = subprocess.Popen(
        # -u as Pulumi's Python runtime does: the port line must not wait in a buffer.
        [sys.executable, "-S", "-u", "__main__.py"],
        cwd=POLICIES,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first: list[str] = []
    reader = threading.Thread(
        target=lambda: first.append(process.stdout.readline() if process.stdout else "")
    )
    reader.start()
    reader.join(timeout=60)
    try:
        port = first[0].strip() if first else ""
        if not port.isdigit():
            process.kill()
            _, err = process.communicate(timeout=30)
            pytest.fail(f"the pack did not start: {port!r} {err}")
        yield f"127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(timeout=30)


def _stub(address: str) -> Any:
    import grpc
    from pulumi.runtime.proto import analyzer_pb2_grpc

    return analyzer_pb2_grpc.AnalyzerStub(grpc.insecure_channel(address))


def _struct(value: dict[str, Any]) -> Any:
    from google.protobuf import json_format, struct_pb2

    return json_format.ParseDict(value, struct_pb2.Struct())


def test_served_pack_describes_every_rule(served_pack: str) -> None:
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2

    info = _stub(served_pack).GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    levels = {"mandatory": analyzer_pb2.MANDATORY, "advisory": analyzer_pb2.ADVISORY}
    assert info.name == pack.PACK_NAME
    assert [(p.name, p.description, p.enforcementLevel) for p in info.policies] == [
        (r.name, r.description, levels[r.level]) for r in ALL_RULES
    ]


def test_served_pack_analyzes_a_resource_with_unknown_values(served_pack: str) -> None:
    from pulumi.runtime.proto import analyzer_pb2

    request = analyzer_pb2.AnalyzeRequest(
        type=REPOSITORY,
        properties=_struct(mutable_repository()),
        urn="urn:pulumi:prod::platform::aws:ecr/repository:Repository::web-eu-west-1",
        name="web-eu-west-1",
        options=analyzer_pb2.AnalyzerResourceOptions(protect=False),
        provider=analyzer_pb2.AnalyzerProviderResource(
            type="pulumi:providers:aws", properties=_struct(PROVIDER_PROPS), urn="urn:p", name="aws-eu-west-1"
        ),
    )
    response = _stub(served_pack).Analyze(request, timeout=60)
    found = {(d.policyName, d.enforcementLevel) for d in response.diagnostics}
    assert found == {("ecr-immutable-tags", analyzer_pb2.MANDATORY)}


def test_served_pack_analyzes_the_stack_as_prod(served_pack: str) -> None:
    from pulumi.runtime.proto import analyzer_pb2

    urn = "urn:pulumi:prod::platform::aws:ecr/repository:Repository::web-eu-west-1"
    props = {**mutable_repository(), "imageTagMutability": "IMMUTABLE"}
    props["encryptionConfigurations"] = [
        {"encryptionType": "KMS", "kmsKey": "arn:aws:kms:eu-west-1:444455556666:key/k"}
    ]
    resource = analyzer_pb2.AnalyzerResource(
        type=REPOSITORY,
        properties=_struct(props),
        urn=urn,
        name="web-eu-west-1",
        options=analyzer_pb2.AnalyzerResourceOptions(protect=False),
    )
    response = _stub(served_pack).AnalyzeStack(
        analyzer_pb2.AnalyzeStackRequest(resources=[resource]), timeout=60
    )
    found = sorted((d.policyName, d.urn) for d in response.diagnostics)
    # No lifecycle policy, and an unprotected repository in prod (PULUMI_STACK=prod).
    assert found == [("ecr-lifecycle-policy", urn), ("ecr-prod-repositories-retained", urn)]


def test_staged_addons_come_from_the_policy_config() -> None:
    """up.yml passes staging's stack output ``addons`` as the rule's ``stagedAddons``."""
    props = {
        "metadata": {
            "name": "addon-metrics-server",
            "labels": {"platform.example.com/addon": "metrics-server"},
        },
        "spec": {"template": {"spec": {"source": {"targetRevision": "3.13.1"}}}},
    }
    app_set = stack_resource("kubernetes:argoproj.io/v1alpha1:ApplicationSet", "addon-metrics-server", props)
    rule = "gitops-addon-staged-before-prod"
    assert run_stack_policy(rule, [app_set]) == []
    assert (
        run_stack_policy(rule, [app_set], {"stagedAddons": {"us-west-2": {"metrics-server": "3.13.1"}}}) == []
    )
    found = run_stack_policy(rule, [app_set], {"stagedAddons": {"us-west-2": {"metrics-server": "3.12.2"}}})
    assert [u for _, u in found] == ["urn:addon-metrics-server"]
    schema = policies_by_name()[rule].config_schema
    assert schema is not None and "stagedAddons" in schema.properties

"""The field's standard scanners over what the program declares, credential-free.

    python -m infra.scan                 # checkov over both stacks, the chart and the workflows
    python -m infra.scan --out DIR       # also keep the files it scanned (Terraform-plan JSON, manifests)

No scanner reads Pulumi programs, so the offline plan (:mod:`infra.offline`) is converted into
what the scanners do read:

* **Terraform-plan JSON** for checkov's ``terraform_plan`` framework. pulumi-aws is bridged from
  the Terraform AWS provider: its type tokens and inputs map one to one onto the provider's
  resource types and arguments (``aws:ec2/vpc:Vpc`` is ``aws_vpc``, ``enableDnsSupport`` is
  ``enable_dns_support``), and nested blocks are lists of objects in Terraform's JSON
  (https://developer.hashicorp.com/terraform/internals/json-format, "Values Representation").
  The parser that reads it: bridgecrewio/checkov ``checkov/terraform/plan_parser.py`` (3.3.30):
  a file is a plan if it has ``format_version``, ``terraform_version`` and ``planned_values``;
  resources come from ``planned_values.root_module.resources`` (``address``, ``mode``,
  ``type``, ``name``, ``values``) and ``resource_changes`` by address.
* **Kubernetes manifests** (the program's own objects, and ``helm template`` of charts/shop) for
  the ``kubernetes`` framework, and the workflows for ``github_actions`` and zizmor.

Every finding a scanner may report is justified in ONE file, ``scan-skips.yaml``
(:data:`SKIPS_FILE`): check, framework, the resources it applies to, and why. A failed check
that no entry covers fails the scan; an entry that matches nothing is stale and fails it too.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra import config as cfg
from infra import naming
from infra.offline import Plan, Resource

SKIPS_FILE = cfg.PROJECT_ROOT / "scan-skips.yaml"
WORKFLOWS_DIR = cfg.PROJECT_ROOT / ".github" / "workflows"
# The tag format CI writes (build-images.yml): the chart refuses to render without one.
SAMPLE_IMAGE_TAG = "20261122.063000-0123abc"

# Terraform's plan JSON carries the Terraform version that wrote it; checkov only requires the
# key. The value says honestly who wrote the file.
TERRAFORM_VERSION = "0.0.0-pulumi-offline-plan"
PLAN_FORMAT_VERSION = "1.2"

# pulumi-aws type token -> Terraform AWS provider resource type, for every AWS type the program
# declares. The bridge names each token after the Terraform type (pulumi/pulumi-aws
# provider/resources.go: module + camel-cased name); the module prefix stays in the Terraform
# name for some modules (aws_iam_role, aws_eks_addon) and not for others (aws_vpc, aws_eip), so
# the table is explicit, and a type missing from it stops the conversion.
TERRAFORM_TYPES: dict[str, str] = {
    "aws:acm/certificate:Certificate": "aws_acm_certificate",
    "aws:acm/certificateValidation:CertificateValidation": "aws_acm_certificate_validation",
    "aws:route53/healthCheck:HealthCheck": "aws_route53_health_check",
    "aws:route53/record:Record": "aws_route53_record",
    "aws:wafv2/webAcl:WebAcl": "aws_wafv2_web_acl",
    "aws:cloudwatch/logGroup:LogGroup": "aws_cloudwatch_log_group",
    "aws:codebuild/project:Project": "aws_codebuild_project",
    "aws:codebuild/webhook:Webhook": "aws_codebuild_webhook",
    "aws:codeconnections/connection:Connection": "aws_codeconnections_connection",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "aws_default_security_group",
    "aws:ec2/eip:Eip": "aws_eip",
    "aws:ec2/flowLog:FlowLog": "aws_flow_log",
    "aws:ec2/internetGateway:InternetGateway": "aws_internet_gateway",
    "aws:ec2/launchTemplate:LaunchTemplate": "aws_launch_template",
    "aws:ec2/natGateway:NatGateway": "aws_nat_gateway",
    "aws:ec2/route:Route": "aws_route",
    "aws:ec2/routeTable:RouteTable": "aws_route_table",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "aws_route_table_association",
    "aws:ec2/securityGroup:SecurityGroup": "aws_security_group",
    "aws:ec2/subnet:Subnet": "aws_subnet",
    "aws:ec2/vpc:Vpc": "aws_vpc",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "aws_vpc_endpoint",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "aws_vpc_security_group_ingress_rule",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "aws_vpc_security_group_egress_rule",
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": "aws_ecr_lifecycle_policy",
    "aws:ecr/registryPolicy:RegistryPolicy": "aws_ecr_registry_policy",
    "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration": "aws_ecr_registry_scanning_configuration",
    "aws:ecr/replicationConfiguration:ReplicationConfiguration": "aws_ecr_replication_configuration",
    "aws:ecr/repository:Repository": "aws_ecr_repository",
    "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate": "aws_ecr_repository_creation_template",
    "aws:eks/accessEntry:AccessEntry": "aws_eks_access_entry",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": "aws_eks_access_policy_association",
    "aws:eks/addon:Addon": "aws_eks_addon",
    "aws:eks/cluster:Cluster": "aws_eks_cluster",
    "aws:eks/nodeGroup:NodeGroup": "aws_eks_node_group",
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": "aws_eks_pod_identity_association",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": "aws_iam_openid_connect_provider",
    "aws:iam/policy:Policy": "aws_iam_policy",
    "aws:iam/role:Role": "aws_iam_role",
    "aws:iam/rolePolicy:RolePolicy": "aws_iam_role_policy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "aws_iam_role_policy_attachment",
    "aws:kms/alias:Alias": "aws_kms_alias",
    "aws:kms/key:Key": "aws_kms_key",
}

# Inputs whose value is a Terraform map (keys are data, kept verbatim), not a nested block.
_MAP_INPUTS = frozenset({"tags", "tagsAll", "resourceTags"})
# Nested blocks that can repeat get a plural name in pulumi-aws and keep the singular block name
# in Terraform (aws_ecr_repository's encryption_configuration is Pulumi's
# encryptionConfigurations; aws_ecr_replication_configuration's rule/destination/repository_filter).
_BLOCK_RENAMES = {
    "encryptionConfigurations": "encryption_configuration",
    "rules": "rule",
    "destinations": "destination",
    "repositoryFilters": "repository_filter",
}
# pulumi-eks (remote component) type whose AWS children the mock runtime does not see.
EKS_CLUSTER_COMPONENT = "eks:index:Cluster"

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


class ScanError(Exception):
    """The scan could not run or found unjustified findings (message says which)."""


def snake(name: str) -> str:
    """``enableDnsSupport`` -> ``enable_dns_support`` (the bridge's inverse naming)."""
    return _CAMEL.sub(r"_\1", name).lower()


def _tf_key(key: str) -> str:
    return _BLOCK_RENAMES.get(key) or snake(key)


def terraform_values(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Pulumi inputs as Terraform plan ``values``: snake_case arguments, maps kept as maps,
    every nested object a list of blocks (Terraform's JSON has no single-block form)."""
    out: dict[str, Any] = {}
    for key, value in inputs.items():
        if key.startswith("__"):
            continue
        out[_tf_key(key)] = _tf_value(key, value)
    return out


def _tf_value(key: str, value: Any) -> Any:
    if key in _MAP_INPUTS and isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, Mapping):
        return [terraform_values(value)]
    if isinstance(value, list):
        return [terraform_values(v) if isinstance(v, Mapping) else v for v in value]
    return value


def eks_cluster_values(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The ``aws_eks_cluster`` pulumi-eks's ``eks:index:Cluster`` creates from these inputs.

    The component is remote: under the mock runtime its children are not registered, so the
    cluster it builds is derived from its inputs exactly as pulumi-eks does
    (pulumi/pulumi-eks nodejs/eks/cluster/cluster.ts, ``createCore``: ``vpcConfig`` from
    the subnet ids and endpoint settings, ``encryptionConfig`` = provider keyArn + resources
    ["secrets"], ``accessConfig.authenticationMode``, ``enabledClusterLogTypes``,
    ``upgradePolicy``, ``deletionProtection``, ``tags``).
    """
    subnets = [*(inputs.get("privateSubnetIds") or []), *(inputs.get("publicSubnetIds") or [])]
    vpc: dict[str, Any] = {
        "subnet_ids": subnets,
        "endpoint_private_access": inputs.get("endpointPrivateAccess", False),
        "endpoint_public_access": inputs.get("endpointPublicAccess", True),
    }
    if inputs.get("publicAccessCidrs") is not None:
        vpc["public_access_cidrs"] = list(inputs["publicAccessCidrs"])
    values: dict[str, Any] = {
        "name": inputs.get("name"),
        "version": inputs.get("version"),
        "vpc_config": [vpc],
        "enabled_cluster_log_types": list(inputs.get("enabledClusterLogTypes") or []),
        "deletion_protection": inputs.get("deletionProtection"),
        "tags": dict(inputs.get("tags") or {}),
    }
    if inputs.get("encryptionConfigKeyArn"):
        values["encryption_config"] = [
            {"resources": ["secrets"], "provider": [{"key_arn": inputs["encryptionConfigKeyArn"]}]}
        ]
    if inputs.get("authenticationMode"):
        values["access_config"] = [{"authentication_mode": inputs["authenticationMode"]}]
    if isinstance(inputs.get("upgradePolicy"), Mapping):
        values["upgrade_policy"] = [terraform_values(inputs["upgradePolicy"])]
    return values


def _address_name(name: str) -> str:
    # Terraform names: letters, digits, underscores and dashes, not starting with a digit.
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    return cleaned if cleaned[:1].isalpha() or cleaned[:1] == "_" else f"_{cleaned}"


def _aws_resources(plan: Plan) -> Iterable[tuple[str, Resource, dict[str, Any]]]:
    """(terraform type, resource, values) of every AWS object the plan declares."""
    for r in plan.resources:
        if r.type == EKS_CLUSTER_COMPONENT:
            yield "aws_eks_cluster", r, eks_cluster_values(r.inputs)
        elif r.type.startswith("aws:") and r.custom:
            tf_type = TERRAFORM_TYPES.get(r.type)
            if tf_type is None:
                raise ScanError(
                    f"infra/scan.py: no Terraform type for {r.type} ({r.urn}); add it to TERRAFORM_TYPES"
                )
            yield tf_type, r, terraform_values(r.inputs)


def terraform_plan(plan: Plan) -> dict[str, Any]:
    """The offline plan of one stack as the Terraform-plan JSON checkov's terraform_plan reads.

    Every resource is planned for creation (``actions: ["create"]``): the offline plan is the
    desired state, not a diff against the cloud. Addresses are ``<type>.<pulumi name>``; the
    Pulumi URN of each is kept in ``resource_changes[].pulumi_urn``. An input that took another
    resource's output (Pulumi's property dependencies) becomes a ``references`` expression in
    ``configuration``, as Terraform writes ``vpc_id = aws_vpc.main.id``: checkov's graph checks
    (a VPC's flow log, its default security group, a NAT gateway's address) follow these edges.
    """
    converted = list(_aws_resources(plan))
    addresses: dict[str, str] = {}
    for tf_type, r, _values in converted:
        name = _address_name(r.name)
        address = f"{tf_type}.{name}"
        n = 2
        while address in addresses.values():  # same name under two parents
            address = f"{tf_type}.{name}_{n}"
            n += 1
        addresses[r.urn] = address
    planned: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    configured: list[dict[str, Any]] = []
    for tf_type, r, values in converted:
        address = addresses[r.urn]
        common = {
            "address": address,
            "mode": "managed",
            "type": tf_type,
            "name": address.split(".", 1)[1],
            "provider_name": "registry.terraform.io/hashicorp/aws",
        }
        planned.append({**common, "schema_version": 0, "values": values})
        changes.append(
            {
                **common,
                "change": {"actions": ["create"], "before": None, "after": values, "after_unknown": {}},
                "pulumi_urn": r.urn,
            }
        )
        expressions = {
            _tf_key(key): {
                "references": [
                    ref for u in urns if u in addresses for ref in (f"{addresses[u]}.id", addresses[u])
                ]
            }
            for key, urns in sorted(r.property_dependencies.items())
            if any(u in addresses for u in urns)
        }
        # A resource passed as a resource (pulumi-eks's clusterSecurityGroup) travels as its URN.
        for key, value in sorted(r.inputs.items()):
            if isinstance(value, str) and value in addresses and _tf_key(key) not in expressions:
                expressions[_tf_key(key)] = {"references": [f"{addresses[value]}.id", addresses[value]]}
        configured.append({**common, "provider_config_key": "aws", "expressions": expressions})
    return {
        "format_version": PLAN_FORMAT_VERSION,
        "terraform_version": TERRAFORM_VERSION,
        "planned_values": {"root_module": {"resources": planned}},
        "resource_changes": changes,
        "configuration": {"root_module": {"resources": configured}},
    }


def kubernetes_manifests(plan: Plan) -> list[dict[str, Any]]:
    """The Kubernetes objects the program itself declares (not chart releases), as manifests.

    A ``kubernetes:<group>/<version>:<Kind>`` resource's inputs are the object without
    ``apiVersion``/``kind`` in some SDK paths; both are rebuilt from the type token.
    """
    out: list[dict[str, Any]] = []
    for r in plan.resources:
        if not r.type.startswith("kubernetes:") or r.type.startswith("kubernetes:helm.sh/"):
            continue
        group_version, kind = r.type.split(":", 1)[1].rsplit(":", 1)
        group, version = group_version.rsplit("/", 1)
        api_version = version if group == "core" else f"{group}/{version}"
        manifest = {k: v for k, v in r.inputs.items() if not k.startswith("__")}
        manifest["apiVersion"] = api_version
        manifest["kind"] = kind
        out.append(manifest)
    return out


# ---------------------------------------------------------------------------------------------
# The skip file
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Skip:
    """One justified finding: ``check`` fails on resources matching ``resources`` (fnmatch
    patterns over the scanner's resource name, e.g. ``aws_iam_role.*``), because ``reason``."""

    framework: str
    check: str
    resources: tuple[str, ...]
    reason: str

    def covers(self, framework: str, check: str, resource: str) -> bool:
        return (
            self.framework == framework
            and self.check == check
            and any(fnmatch.fnmatchcase(resource, p) for p in self.resources)
        )


CHECKOV_FRAMEWORKS = ("terraform_plan", "kubernetes", "github_actions")
FRAMEWORKS = (*CHECKOV_FRAMEWORKS, "zizmor")


def load_skips(path: Path = SKIPS_FILE) -> list[Skip]:
    """Read the skip file; a malformed entry is an error naming the file, entry and key."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ScanError(f"{path}: cannot read the skip file: {exc}") from exc
    entries = (raw or {}).get("skips")
    if not isinstance(entries, list):
        raise ScanError(f"{path}: expected a top-level 'skips:' list")
    skips = []
    for i, e in enumerate(entries):
        where = f"{path}: skips[{i}]"
        if not isinstance(e, dict):
            raise ScanError(f"{where}: expected a mapping with framework, check, resources, reason")
        missing = [k for k in ("framework", "check", "resources", "reason") if not e.get(k)]
        if missing:
            raise ScanError(f"{where} ({e.get('check')}): missing {', '.join(missing)}")
        if e["framework"] not in FRAMEWORKS:
            raise ScanError(f"{where}: framework {e['framework']!r} is not one of {', '.join(FRAMEWORKS)}")
        resources = e["resources"]
        if isinstance(resources, str) or not all(isinstance(p, str) for p in resources):
            raise ScanError(f"{where}: resources must be a list of patterns")
        skips.append(
            Skip(e["framework"], str(e["check"]), tuple(resources), " ".join(str(e["reason"]).split()))
        )
    return skips


# ---------------------------------------------------------------------------------------------
# Running the scanners
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    framework: str
    check: str
    resource: str
    file: str
    title: str
    # checkov reports passed checks too; they show a check ran (never judged).
    passed: bool = False

    def line(self) -> str:
        return f"{self.framework} {self.check} {self.resource} ({self.file}): {self.title}"


def find_checkov() -> str | None:
    """The checkov executable: $CHECKOV, the tool environment ``make`` installs beside the
    project's virtualenv (``.venv/checkov``; checkov's pins conflict with pulumi's, so it cannot
    share the project's environment), or PATH."""
    env = os.environ.get("CHECKOV")
    if env:
        return env
    beside = Path(sys.prefix) / "checkov" / "bin" / "checkov"
    if beside.exists():
        return str(beside)
    return shutil.which("checkov")


def find_zizmor() -> str | None:
    beside = Path(sys.executable).parent / "zizmor"
    return str(beside) if beside.exists() else shutil.which("zizmor")


def run_checkov(framework: str, files: Sequence[Path] = (), directory: Path | None = None) -> list[Finding]:
    """Failed checks of one checkov run (one process per framework, all inputs at once)."""
    exe = find_checkov()
    if exe is None:
        raise ScanError("checkov is not installed (make installs it in .venv/checkov)")
    cmd = [exe, "--framework", framework, "--output", "json", "--compact", "--skip-download"]
    for f in files:
        cmd += ["--file", str(f)]
    if directory is not None:
        cmd += ["--directory", str(directory)]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_NO_OUTPUT_TRUNCATION": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    # checkov exits 1 when a check fails; anything else with no JSON is a crash.
    try:
        reports = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise ScanError(
            f"checkov --framework {framework} produced no report (exit {proc.returncode}): "
            f"{proc.stderr.strip()[-2000:] or proc.stdout.strip()[-2000:]}"
        ) from exc
    if isinstance(reports, dict):
        reports = [reports]
    findings = []
    for report in reports:
        if "results" not in report:
            continue  # "no files found" summary
        for outcome, passed in (("failed_checks", False), ("passed_checks", True)):
            for c in report["results"].get(outcome, []):
                findings.append(
                    Finding(
                        framework,
                        str(c["check_id"]),
                        str(c.get("resource", "")),
                        str(c.get("file_path", "")),
                        str(c.get("check_name", "")),
                        passed,
                    )
                )
    return findings


def run_zizmor(workflows: Path = WORKFLOWS_DIR) -> list[Finding]:
    """zizmor's findings at its strictest persona (``--persona auditor``), no network."""
    exe = find_zizmor()
    if exe is None:
        raise ScanError("zizmor is not installed (a dev dependency: pip install -e '.[dev]')")
    proc = subprocess.run(
        [
            exe,
            "--persona",
            "auditor",
            "--offline",
            "--no-config",
            "--no-ignores",
            "--format",
            "json",
            "--no-exit-codes",
            str(workflows),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        results = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise ScanError(
            f"zizmor produced no report (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}"
        ) from exc
    findings = []
    for f in results:
        symbolic = (f.get("locations") or [{}])[0].get("symbolic", {})
        local = symbolic.get("key", {}).get("Local", {})
        file = Path(str(local.get("verbatim_path") or local.get("given_path") or "")).name
        route = [r.get("Key") for r in symbolic.get("route", {}).get("route", []) if isinstance(r, dict)]
        # Findings are named <workflow>:<job> (the second key of jobs.<job>), or the file alone.
        job = route[1] if len(route) > 1 and route[0] == "jobs" else ""
        findings.append(
            Finding(
                "zizmor", str(f.get("ident")), f"{file}:{job}" if job else file, file, str(f.get("desc", ""))
            )
        )
    return findings


def judge(findings: Sequence[Finding], skips: Sequence[Skip]) -> tuple[list[Finding], list[Skip]]:
    """(failed findings no skip covers, skips that cover no failed finding)."""
    findings = [f for f in findings if not f.passed]
    unjustified = [f for f in findings if not any(s.covers(f.framework, f.check, f.resource) for s in skips)]
    stale = [s for s in skips if not any(s.covers(f.framework, f.check, f.resource) for f in findings)]
    return unjustified, stale


def helm_template_chart(plans: Sequence[Plan], out: Path) -> Path:
    """``helm template`` of the application chart for every stack and region, with the value
    files Argo CD layers (:func:`infra.naming.value_files`) and a sample image tag (CI sets the
    real one)."""
    helm = shutil.which("helm")
    if helm is None:
        raise ScanError("helm is not on PATH: the chart cannot be rendered for the kubernetes scan")
    docs = []
    for plan in plans:
        app = plan.config.application
        chart = cfg.PROJECT_ROOT / app.path
        for region in plan.config.region_names:
            args = [helm, "template", app.name, str(chart), "--namespace", app.namespace]
            for name in naming.value_files(plan.config.environment, region):
                args += ["--values", str(chart / name)]
            args += ["--set", f"image.tag={SAMPLE_IMAGE_TAG}"]
            proc = subprocess.run(args, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise ScanError(
                    f"helm template {app.path} ({plan.stack}, {region}) failed: {proc.stderr.strip()}"
                )
            docs.append(proc.stdout)
    rendered = [d for text in docs for d in yaml.safe_load_all(text) if d]
    path = out / "chart.yaml"
    path.write_text(yaml.safe_dump_all(pod_template_view(rendered), sort_keys=True))
    return path


ROLLOUT_API = "argoproj.io/v1alpha1"


def pod_template_view(docs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``docs`` with each Argo Rollout that carries its own pod template (``spec.template``) also
    shown as the Deployment it replaces: same metadata, selector, replicas and pod template.

    checkov's kubernetes checks judge the pod specs of built-in workload kinds and not a
    Rollout's (seen here: with ``rollouts.enabled`` the chart's pod-spec findings on its
    Deployments vanished and their justified skips in scan-skips.yaml went stale), so without
    this the shop's pods would go unjudged. The view is for the scanner only; what the chart
    renders is unchanged."""
    out: list[dict[str, Any]] = []
    for doc in docs:
        out.append(dict(doc))
        spec = doc.get("spec") or {}
        if doc.get("apiVersion") == ROLLOUT_API and doc.get("kind") == "Rollout" and "template" in spec:
            view_spec = {k: spec[k] for k in ("replicas", "selector", "template") if k in spec}
            out.append(
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": doc["metadata"],
                    "spec": view_spec,
                }
            )
    return out


def write_inputs(plans: Sequence[Plan], out: Path) -> dict[str, list[Path]]:
    """Write what checkov reads, per framework: {framework: [files]}."""
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[Path]] = {"terraform_plan": [], "kubernetes": []}
    for plan in plans:
        tf = out / f"{plan.stack}.tfplan.json"
        tf.write_text(json.dumps(terraform_plan(plan), indent=1, sort_keys=True, default=str))
        files["terraform_plan"].append(tf)
        k8s = out / f"{plan.stack}.k8s.yaml"
        k8s.write_text(yaml.safe_dump_all(kubernetes_manifests(plan), sort_keys=True))
        files["kubernetes"].append(k8s)
    files["kubernetes"].append(helm_template_chart(plans, out))
    return files


def scan(plans: Sequence[Plan], out: Path) -> list[Finding]:
    """Every scanner over ``plans``, the chart and the workflows; all findings (before skips)."""
    files = write_inputs(plans, out)
    files["github_actions"] = sorted(WORKFLOWS_DIR.glob("*.y*ml"))
    # One checkov process per framework, side by side: each spends most of its time starting up.
    with ThreadPoolExecutor(max_workers=len(CHECKOV_FRAMEWORKS)) as pool:
        runs = [pool.submit(run_checkov, fw, files[fw]) for fw in CHECKOV_FRAMEWORKS]
        findings = run_zizmor()
        for r in runs:
            findings += r.result()
    return findings


def report(findings: Sequence[Finding], skips: Sequence[Skip]) -> tuple[str, bool]:
    unjustified, stale = judge(findings, skips)
    failed = [f for f in findings if not f.passed]
    lines = [
        f"Scanners: {len(findings) - len(failed)} check(s) passed, {len(failed)} failed, "
        f"{len(failed) - len(unjustified)} of them justified in {SKIPS_FILE.name}."
    ]
    for f in unjustified:
        lines.append(f"  UNJUSTIFIED {f.line()}")
    for s in stale:
        lines.append(
            f"  STALE skip {s.framework} {s.check} {list(s.resources)}: matches no finding; remove it"
        )
    return "\n".join(lines) + "\n", not unjustified and not stale


def main(argv: Sequence[str] | None = None) -> int:
    from infra import plan as plan_cli
    from infra.offline import run

    parser = argparse.ArgumentParser(prog="python -m infra.scan", description=__doc__.split("\n")[0])
    parser.add_argument("--stack", default="all", help="a stack name, or all (default)")
    parser.add_argument("--out", type=Path, help="keep the scanned files in this directory")
    args = parser.parse_args(argv)
    stacks = plan_cli.available_stacks() if args.stack == "all" else [args.stack]
    try:
        skips = load_skips()
        plans = [run(s) for s in stacks]
        with tempfile.TemporaryDirectory(prefix="scan-") as tmp:
            out = args.out or Path(tmp)
            text, ok = report(scan(plans, out), skips)
    except (ScanError, cfg.ConfigError) as exc:
        print(f"scan: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

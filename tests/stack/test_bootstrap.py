"""The bootstrap scenario, walked over the whole program under the mock runtime.

Day 0 (each stack's first `pulumi up` by a person, the receiving stack first), day 1 (`up.yml`
with each stack's up role), the first push (CI's push role, replication, Image Updater's first
tag, each generated Application rendered with `helm template` as Argo CD renders it), the staging
sync (Argo CD on the hub reaching every cluster) and the prod deploy (the deploy and verify
roles). At each step the identity in play must have the access it uses, as the program declares
it: IAM policy documents, EKS access entries and access policies, Kubernetes RBAC.

Stacks, regions, services and roles are read from the stack files and the plan, never written
here. The real IAM, EKS and Argo CD behaviours relied on are pinned in tests/contracts/.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import addons, naming, offline
from infra.config import StackConfig, load_stack_file
from infra.documents import eks as eks_docs
from infra.documents import iam
from infra.manifests import argocd as argocd_manifests
from infra.manifests import rbac
from tests.access_walk import ACCESS_ENTRY, ACCESS_POLICY, cluster_admin_regions, kubernetes_driven_regions

ROOT = Path(__file__).resolve().parents[2]
STACKS = ("staging", "prod")
HELM = shutil.which("helm")
TAG = "20261201.000000-0123abc"  # the first tag CI pushes (build-images.yml's form)
CLUSTER_ADMIN = eks_docs.CLUSTER_ADMIN_ACCESS_POLICY_ARN
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
POLICY = "aws:iam/policy:Policy"


@cache
def plan(stack: str) -> offline.Plan:
    return offline.run(stack)


def configs() -> dict[str, StackConfig]:
    return {s: load_stack_file(s) for s in STACKS}


def bootstrap_order() -> list[str]:
    """Receivers (registryRole replica) before senders: docs/registry.md, "Bootstrap order"."""
    return sorted(STACKS, key=lambda s: configs()[s].builds_images)


# ---------------------------------------------------------------------------------------------
# What the program declares for an identity
# ---------------------------------------------------------------------------------------------


def role_by_name(p: offline.Plan, name: str) -> offline.Resource:
    (role,) = [r for r in p.of_type(ROLE) if r.inputs["name"] == name]
    return role


def role_documents(p: offline.Plan, role: offline.Resource) -> list[dict[str, Any]]:
    """The role's inline policies (the managed ones are checked by ARN)."""
    return [
        json.loads(r.inputs["policy"])
        for r in p.of_type(ROLE_POLICY)
        if r.inputs["role"] in (role.outputs["name"], role.outputs.get("id"), role.inputs["name"])
    ]


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def allows(documents: Iterable[Mapping[str, Any]], action: str, resource: str) -> bool:
    """IAM evaluation of identity policies, enough for the documents this program writes: an
    explicit Deny wins, otherwise any Allow whose Action and Resource patterns match (no
    conditions are evaluated: a conditional Allow counts, a conditional Deny does not)."""
    allowed = False
    for doc in documents:
        for st in doc["Statement"]:
            hit = any(fnmatch.fnmatchcase(action, a) for a in _as_list(st.get("Action", []))) and any(
                fnmatch.fnmatchcase(resource, r) for r in _as_list(st.get("Resource", []))
            )
            if hit and st["Effect"] == "Deny" and "Condition" not in st:
                return False
            allowed = allowed or (hit and st["Effect"] == "Allow")
    return allowed


# ---------------------------------------------------------------------------------------------
# Day 0: each stack's first `pulumi up`, by a person, the receiving stack first
# ---------------------------------------------------------------------------------------------


def test_day0_order_puts_the_receiving_registry_first_and_up_yml_keeps_it() -> None:
    order = bootstrap_order()
    cfgs = configs()
    assert not cfgs[order[0]].builds_images and cfgs[order[-1]].builds_images
    jobs = yaml.safe_load((ROOT / ".github/workflows/up.yml").read_text())["jobs"]
    for earlier, later in itertools.pairwise(order):
        needs = jobs[later].get("needs", [])
        assert earlier in ([needs] if isinstance(needs, str) else needs)


@pytest.mark.parametrize("stack", STACKS)
def test_day0_the_person_reaches_every_cluster_the_program_drives(stack: str) -> None:
    """The person runs `pulumi up` as clusterAdminRoleArn (README, First run): the hub's
    Kubernetes provider authenticates as that role, which has cluster-admin wherever a provider
    is used, from the program's own entry (no pulumi-eks creator entry to collide with)."""
    p = plan(stack)
    person = p.config.cluster_admin_role_arn
    driven = kubernetes_driven_regions(p)
    assert driven == {p.config.hub_region}
    assert driven <= cluster_admin_regions(p, person) == set(p.config.region_names)
    assert all(c.transforms == 1 for c in p.of_type("eks:index:Cluster"))


def test_day0_the_sender_replicates_only_where_the_receiver_already_receives() -> None:
    """When the sending stack's first `up` creates its replication configuration, the receiving
    stack (applied before it) has, in every destination region of its account, a registry policy
    that lets the sender's account replicate the prefix's repositories."""
    for sender in (s for s in STACKS if configs()[s].builds_images):
        sp = plan(sender)
        (replication,) = sp.of_type("aws:ecr/replicationConfiguration:ReplicationConfiguration")
        for rule in replication.inputs["replicationConfiguration"]["rules"]:
            for dest in rule["destinations"]:
                if dest["registryId"] == sp.config.account_id:
                    continue
                (receiver,) = [s for s in STACKS if configs()[s].account_id == dest["registryId"]]
                assert bootstrap_order().index(receiver) < bootstrap_order().index(sender)
                rp = plan(receiver)
                policies = [
                    json.loads(r.inputs["policy"])
                    for r in rp.of_type("aws:ecr/registryPolicy:RegistryPolicy")
                    if rp.region_of(r) == dest["region"]
                ]
                assert policies, dest
                for service in sp.config.services:
                    arn = (
                        f"arn:aws:ecr:{dest['region']}:{dest['registryId']}:repository/"
                        f"{naming.repository_name(sp.config.ecr.prefix, service)}"
                    )
                    statements = [
                        st
                        for doc in policies
                        for st in doc["Statement"]
                        if st["Effect"] == "Allow"
                        and f"arn:aws:iam::{sp.config.account_id}:root" in _as_list(st["Principal"]["AWS"])
                    ]
                    assert allows([{"Statement": statements}], "ecr:ReplicateImage", arn), (dest, service)


# ---------------------------------------------------------------------------------------------
# Day 1: up.yml, with each stack's up role
# ---------------------------------------------------------------------------------------------

# What `pulumi up` calls for the resources this program declares (a sample per service, enough
# to catch a boundary that would cut the up role off from what it manages).
UP_ACTIONS = (
    "eks:CreateAccessEntry",
    "eks:AssociateAccessPolicy",
    "eks:DescribeCluster",
    "eks:UpdateClusterVersion",
    "ecr:CreateRepository",
    "ecr:PutRegistryPolicy",
    "ecr:PutReplicationConfiguration",
    "iam:CreateRole",
    "iam:PutRolePolicy",
    "kms:CreateKey",
)


@pytest.mark.parametrize("stack", STACKS)
def test_day1_the_up_role_has_what_up_uses(stack: str) -> None:
    p = plan(stack)
    (spec,) = [s for s in iam.role_specs(p.config) if s.purpose == iam.UP]
    role = role_by_name(p, spec.role_name)
    up_arn = role.outputs["arn"]
    assert p.outputs[naming.OUTPUT_GITHUB_ROLES][iam.UP] == up_arn
    # IAM: AdministratorAccess, within a boundary that does not deny what `up` does.
    attached = {
        a.inputs["policyArn"] for a in p.of_type(ATTACHMENT) if a.inputs["role"] == role.inputs["name"]
    }
    assert iam.ADMINISTRATOR_ACCESS in attached
    (boundary,) = [
        json.loads(b.inputs["policy"])
        for b in p.of_type(POLICY)
        if b.inputs["name"] == iam.boundary_policy_name(p.config.environment)
    ]
    for action in UP_ACTIONS:
        assert allows([boundary], action, "arn:aws:eks:us-west-2:000000000000:cluster/x"), action
    # Kubernetes: cluster-admin on every cluster the program drives, and nowhere else.
    assert cluster_admin_regions(p, up_arn) == kubernetes_driven_regions(p) == {p.config.hub_region}


# ---------------------------------------------------------------------------------------------
# The first push, the first tag, and each Application as Argo CD renders it
# ---------------------------------------------------------------------------------------------


def test_first_push_the_push_role_can_push_every_service_to_the_primary_region() -> None:
    for stack in (s for s in STACKS if configs()[s].builds_images):
        p = plan(stack)
        (spec,) = [s for s in iam.role_specs(p.config) if s.purpose == iam.PUSH]
        docs = role_documents(p, role_by_name(p, spec.role_name))
        primary = p.config.ecr.primary_region
        for service in p.config.services:
            arn = f"arn:aws:ecr:{primary}:{p.config.account_id}:repository/{naming.repository_name(p.config.ecr.prefix, service)}"
            for action in ("ecr:PutImage", "ecr:InitiateLayerUpload", "ecr:CompleteLayerUpload"):
                assert allows(docs, action, arn), (service, action)
        assert allows(docs, "ecr:GetAuthorizationToken", "*")


def _image_updater_documents(p: offline.Plan) -> list[dict[str, Any]]:
    (role,) = [r for r in p.of_type(ROLE) if r.name == "image-updater"]
    return role_documents(p, role)


@pytest.mark.parametrize("stack", STACKS)
def test_first_tag_image_updater_reads_each_regions_sentinel(stack: str) -> None:
    """Image Updater (Pod Identity on the hub) lists the sentinel's tags in each region's own
    registry, where replication put the first image."""
    p = plan(stack)
    docs = _image_updater_documents(p)
    cr = _custom_resource(p, "ImageUpdater")
    refs = cr["spec"]["applicationRefs"]
    assert {r["namePattern"] for r in refs} == {
        naming.application_name(p.config.application.name, p.config.environment, region)
        for region in p.config.region_names
    }
    for region in p.config.region_names:
        arn = (
            f"arn:aws:ecr:{region}:{p.config.account_id}:repository/"
            f"{naming.repository_name(p.config.ecr.prefix, p.config.sentinel_service)}"
        )
        assert allows(docs, "ecr:ListImages", arn) or allows(docs, "ecr:DescribeImages", arn), region


def _custom_resource(p: offline.Plan, kind: str) -> dict[str, Any]:
    # The application's resource: the cluster add-ons' ApplicationSets (labelled, issue 17) are
    # checked in tests/stack/test_addons_stack.py.
    found = [
        r.inputs
        for r in p.resources
        if r.type.startswith("kubernetes:")
        and r.inputs.get("kind") == kind
        and addons.LABEL_ADDON not in ((r.inputs.get("metadata") or {}).get("labels") or {})
    ]
    assert len(found) == 1, kind
    return found[0]


_TEMPLATE = re.compile(
    r"\{\{\s*(?:index \.metadata\.(labels|annotations) (\"[^\"]+\")|\.(server|name))\s*\}\}"
)


def generated_applications(p: offline.Plan) -> list[dict[str, Any]]:
    """The Applications the ApplicationSet's cluster generator makes from the declared cluster
    Secrets (Argo CD applicationset/generators/cluster.go: .name, .server, .metadata.labels and
    .metadata.annotations of each Secret matching the selector), go templates substituted."""
    appset = _custom_resource(p, "ApplicationSet")
    (generator,) = appset["spec"]["generators"]
    selector = generator["clusters"]["selector"]["matchLabels"]
    secrets = [
        r.inputs
        for r in p.of_type("kubernetes:core/v1:Secret")
        if (r.inputs.get("metadata") or {}).get("labels", {}).get(argocd_manifests.SECRET_TYPE_LABEL)
        == "cluster"
    ]
    apps = []
    for secret in secrets:
        meta = secret["metadata"]
        if any(meta.get("labels", {}).get(k) != v for k, v in selector.items()):
            continue
        # stringData is a secret in the plan (it holds the config); server and name are the
        # cluster's endpoint and name, as ClusterRegistration writes them.
        cluster = p.outputs[naming.OUTPUT_CLUSTERS][meta["labels"][naming.LABEL_REGION]]
        values = {"server": cluster["endpoint"], "name": cluster["name"]}

        def substitute(
            match: re.Match[str], meta: Mapping[str, Any] = meta, values: Mapping[str, str] = values
        ) -> str:
            if match.group(1):
                return str(meta.get(match.group(1), {})[json.loads(match.group(2))])
            return values[match.group(3)]

        def render(node: Any, sub: Any = substitute) -> Any:
            if isinstance(node, str):
                out = _TEMPLATE.sub(sub, node)
                assert "{{" not in out, out  # missingkey=error: every key must resolve
                return out
            if isinstance(node, dict):
                return {k: render(v) for k, v in node.items()}
            if isinstance(node, list):
                return [render(v) for v in node]
            return node

        apps.append(render(appset["spec"]["template"]))
    assert len(apps) == len(p.config.region_names)
    return apps


def first_tag_parameters(p: offline.Plan, app: Mapping[str, Any]) -> list[dict[str, str]]:
    """What Image Updater (write-back argocd) writes into the Application: the sentinel's
    repository and the first tag, under the Helm parameter names of the ImageUpdater CR."""
    cr = _custom_resource(p, "ImageUpdater")
    (ref,) = [r for r in cr["spec"]["applicationRefs"] if r["namePattern"] == app["metadata"]["name"]]
    (image,) = ref["images"]
    target = image["manifestTargets"]["helm"]
    return [{"name": target["name"], "value": image["imageName"]}, {"name": target["tag"], "value": TAG}]


def helm_template(
    p: offline.Plan, app: Mapping[str, Any], parameters: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """`helm template` as Argo CD's repo-server runs it for a Helm source (reposerver/repository:
    release name = Application name, --namespace = destination namespace, --kube-version of the
    destination cluster, each valueFile in order, each parameter as --set)."""
    assert HELM is not None
    source = app["spec"]["source"]
    chart = ROOT / source["path"]
    region = app["metadata"]["labels"][naming.LABEL_REGION]
    args = [
        HELM,
        "template",
        app["metadata"]["name"],
        str(chart),
        "--namespace",
        app["spec"]["destination"]["namespace"],
        "--kube-version",
        p.config.region(region).kubernetes_version,
    ]
    for value_file in source["helm"]["valueFiles"]:
        args += ["--values", str(chart / value_file)]
    for param in [*source["helm"].get("parameters", []), *parameters]:
        args += ["--set", f"{param['name']}={param['value']}"]
    result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.mark.skipif(HELM is None, reason="helm is not on PATH: the Applications are not rendered here")
@pytest.mark.parametrize("stack", STACKS)
def test_before_the_first_tag_every_generated_application_renders_without_workloads(stack: str) -> None:
    """A brand-new Application (day 0, a new region, a rebuilt hub) has no image parameters yet.
    It must still render, so Argo CD records a Helm source type and Image Updater considers it
    (docs/argocd.md, "The first tag"; tests/contracts/test_image_updater_source_type.py), and it
    must not render to an empty set a sync could prune against: no workload, something left."""
    p = plan(stack)
    for app in generated_applications(p):
        docs = helm_template(p, app, [])
        assert docs, app["metadata"]["name"]
        assert not [d for d in docs if d["kind"] in ("Deployment", "Service", "HorizontalPodAutoscaler")]


@pytest.mark.skipif(HELM is None, reason="helm is not on PATH: the Applications are not rendered here")
@pytest.mark.parametrize("stack", STACKS)
def test_first_tag_every_generated_application_renders_the_first_image(stack: str) -> None:
    p = plan(stack)
    for app in generated_applications(p):
        region = app["metadata"]["labels"][naming.LABEL_REGION]
        docs = helm_template(p, app, first_tag_parameters(p, app))
        images = [
            c["image"]
            for d in docs
            if d["kind"] in ("Deployment", "Rollout")
            for c in d["spec"]["template"]["spec"]["containers"]
        ]
        assert len(images) >= len(p.config.services), region
        registry = naming.registry_host(p.config.account_id, region)
        for service in p.config.services:
            expected = f"{registry}/{naming.repository_name(p.config.ecr.prefix, service)}:{TAG}"
            assert expected in images, (region, service, images)


# ---------------------------------------------------------------------------------------------
# The staging sync and the prod deploy
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_sync_argocd_reaches_every_cluster_it_deploys_to(stack: str) -> None:
    """Argo CD's controllers get the hub role through Pod Identity; that principal has an access
    entry with cluster-admin on every cluster a generated Application targets."""
    p = plan(stack)
    associations = [
        a
        for a in p.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if a.inputs["serviceAccount"] in naming.ARGOCD_CONTROLLER_SERVICE_ACCOUNTS
    ]
    assert associations
    principals = {a.inputs["roleArn"] for a in associations}
    assert len(principals) == 1
    (principal,) = principals
    targets = {app["metadata"]["labels"][naming.LABEL_REGION] for app in generated_applications(p)}
    admin = set()
    for assoc in p.of_type(ACCESS_POLICY):
        if assoc.inputs["principalArn"] == principal and assoc.inputs["policyArn"] == CLUSTER_ADMIN:
            admin.add(str(p.region_of(assoc)))
    assert targets == admin == set(p.config.region_names)


def _hub_rbac(p: offline.Plan, group: str) -> set[tuple[str, str, str]]:
    """(namespace, resource, verb) the group may use on the hub, from declared Roles/RoleBindings."""
    roles = {
        (r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]): r.inputs["rules"]
        for r in p.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role")
    }
    out: set[tuple[str, str, str]] = set()
    for binding in p.of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"):
        ns = binding.inputs["metadata"]["namespace"]
        if not any(s["kind"] == "Group" and s["name"] == group for s in binding.inputs["subjects"]):
            continue
        for rule in roles[(ns, binding.inputs["roleRef"]["name"])]:
            out |= {
                (ns, f"{res}.{g}" if g else res, v)
                for g in rule["apiGroups"]
                for res in rule["resources"]
                for v in rule["verbs"]
            }
    return out


def _deploy_identity(p: offline.Plan, purpose: str, verbs: tuple[str, ...]) -> None:
    (spec,) = [s for s in iam.role_specs(p.config) if s.purpose == purpose]
    assert spec.hub_access is not None
    role = role_by_name(p, spec.role_name)
    hub_cluster = naming.cluster_name(p.config.environment, p.config.hub_region)
    cluster_arn = f"arn:aws:eks:{p.config.hub_region}:{p.config.account_id}:cluster/{hub_cluster}"
    assert allows(role_documents(p, role), "eks:DescribeCluster", cluster_arn)
    (entry,) = [e for e in p.of_type(ACCESS_ENTRY) if e.inputs["principalArn"] == role.outputs["arn"]]
    assert entry.inputs["clusterName"] == hub_cluster
    assert entry.inputs["kubernetesGroups"] == [spec.hub_access.kubernetes_group]
    assert not [a for a in p.of_type(ACCESS_POLICY) if a.inputs["principalArn"] == role.outputs["arn"]]
    granted = _hub_rbac(p, spec.hub_access.kubernetes_group)
    assert granted == {(naming.ARGOCD_NAMESPACE, "applications.argoproj.io", v) for v in verbs}


def test_prod_deploy_the_deploy_and_verify_roles_have_exactly_what_the_command_uses() -> None:
    """infra/deploy.py reads staging's Applications with the verify role and patches prod's with
    the deploy role: IAM DescribeCluster on the hub, an access entry in the role's group, and the
    RBAC verbs of infra/manifests/rbac.py in Argo CD's namespace, nothing more."""
    for stack in STACKS:
        p = plan(stack)
        purposes = {s.purpose for s in iam.role_specs(p.config)}
        if iam.DEPLOY in purposes:
            _deploy_identity(p, iam.DEPLOY, rbac.DEPLOYER_VERBS)
        if iam.VERIFY in purposes:
            _deploy_identity(p, iam.VERIFY, rbac.VERIFIER_VERBS)
    assert any(iam.DEPLOY in {s.purpose for s in iam.role_specs(c)} for c in configs().values())

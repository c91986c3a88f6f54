"""Contracts: who can use each cluster's Kubernetes API, and pulumi-eks's creator admin entry.

Each test pins one behaviour of an external system the program relies on; its docstring names
the source read (repository, file and tag, or the AWS document).
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

import pulumi_aws
import pulumi_eks
import pytest

from infra import naming, offline
from infra.documents import access
from infra.documents import eks as eks_docs
from infra.manifests import kubeconfig
from tests import access_walk
from tests.access_walk import ACCESS_ENTRY, ACCESS_POLICY
from tests.contracts import aws_rules

STACKS = ("staging", "prod")
EKS = "eks:index:Cluster"
ROLE = "aws:iam/role:Role"


@cache
def plan(stack: str) -> offline.Plan:
    return offline.run(stack)


def test_pulumi_eks_gives_no_argument_for_the_creator_admin_entry() -> None:
    """pulumi/pulumi-eks v4.3.0 nodejs/eks/cluster/cluster.ts (createCore) sets
    ``accessConfig.bootstrapClusterCreatorAdminPermissions: true`` on the aws.eks.Cluster it
    creates, with ``ignoreChanges`` on it, and offers no argument to change it (open bug
    pulumi/pulumi-eks#2373; the installed 4.4.0 SDK has none either). The program turns it off
    with a transform instead; if a release adds the argument, use it and drop the transform."""
    params = inspect.signature(pulumi_eks.ClusterArgs.__init__).parameters
    assert not {p for p in params if "bootstrap_cluster_creator" in p or p == "access_config"}


def test_the_transform_targets_pulumi_aws_property_names() -> None:
    """pulumi-aws (installed SDK) names the flag ``accessConfig.bootstrapClusterCreatorAdminPermissions``
    on ``aws:eks/cluster:Cluster``: the wire names the transform rewrites (a typo would silently
    transform nothing). EKS API: CreateCluster accessConfig,
    https://docs.aws.amazon.com/eks/latest/APIReference/API_CreateAccessConfigRequest.html"""
    source = inspect.getsource(pulumi_aws.eks._inputs.ClusterAccessConfigArgs)
    assert 'name="bootstrapClusterCreatorAdminPermissions"' in source
    assert f'"{eks_docs.EKS_CLUSTER_RESOURCE_TYPE}"' in inspect.getsource(pulumi_aws.eks.Cluster)
    props: dict[str, Any] = {
        "name": "c",
        "accessConfig": {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": True},
    }
    out = eks_docs.without_creator_admin(eks_docs.EKS_CLUSTER_RESOURCE_TYPE, props)
    assert out == {
        "name": "c",
        "accessConfig": {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False},
    }
    assert props["accessConfig"]["bootstrapClusterCreatorAdminPermissions"] is True  # input untouched
    # Nothing else pulumi-eks creates is touched.
    assert eks_docs.without_creator_admin("aws:eks/accessEntry:AccessEntry", props) is None
    assert eks_docs.without_creator_admin(EKS, props) is None


def _creator_flag(cluster: offline.Resource) -> bool:
    """bootstrapClusterCreatorAdminPermissions as EKS receives it for ``cluster``: pulumi-eks
    v4.3.0 nodejs/eks/cluster/cluster.ts (createCore) always sends true; the program's transform
    (the one ``transforms`` callback the resource registers; the mock engine records, never runs
    it) rewrites it through ``without_creator_admin``."""
    sent: dict[str, Any] = {"accessConfig": {"bootstrapClusterCreatorAdminPermissions": True}}
    if cluster.transforms == 1:
        sent = eks_docs.without_creator_admin(eks_docs.EKS_CLUSTER_RESOURCE_TYPE, sent) or sent
    return bool(sent["accessConfig"]["bootstrapClusterCreatorAdminPermissions"])


def _entry_creation_errors(p: offline.Plan, creator: str) -> list[str]:
    """Create every cluster (EKS adds the creator's entry or not) and then every access entry of
    the plan, with the EKS rules; the errors."""
    existing: list[tuple[str, str]] = []
    for cluster in p.of_type(EKS):
        name = cluster.inputs["name"]
        existing += [(name, arn) for arn in aws_rules.eks_creator_entry(_creator_flag(cluster), creator)]
    errors = []
    for entry in p.of_type(ACCESS_ENTRY):
        key = (entry.inputs["clusterName"], entry.inputs["principalArn"])
        if aws_rules.eks_create_access_entry(existing, *key) != "created":
            errors.append(f"{entry.name}: {aws_rules.RESOURCE_IN_USE}")
        existing.append(key)
    return errors


@pytest.mark.parametrize("stack", STACKS)
def test_no_principal_gets_a_second_entry_whoever_creates_the_clusters(stack: str) -> None:
    """EKS: one access entry per principal and cluster, else ResourceInUseException
    (https://docs.aws.amazon.com/eks/latest/userguide/creating-access-entries.html); and
    bootstrapClusterCreatorAdminPermissions, which pulumi-eks v4.3.0 nodejs/eks/cluster/cluster.ts
    always sets (bug pulumi/pulumi-eks#2373), adds one for the creator
    (https://docs.aws.amazon.com/eks/latest/APIReference/API_CreateAccessConfigRequest.html).
    Whoever runs the first `up` (each principal that runs it: access.cluster_operators), every
    entry the program declares is created; without the transform the day-0 person's collides."""
    p = plan(stack)
    creators = [o.principal_arn for o in access.cluster_operators(p.config)]
    for creator in creators:
        assert _entry_creation_errors(p, creator) == [], creator
    clusters = [c.urn for c in p.of_type(EKS)]
    untransformed = aws_rules.without_option(p, clusters, transforms=0)
    errors = _entry_creation_errors(untransformed, p.config.cluster_admin_role_arn)
    assert len(errors) == len(clusters)
    assert all(e.startswith(f"{access.ADMIN_OPERATOR}-") for e in errors)


def test_the_runner_of_pulumi_up_is_who_the_kubernetes_api_sees() -> None:
    """AWS CLI ``eks get-token``
    (https://awscli.amazonaws.com/v2/documentation/api/latest/reference/eks/get-token.html): the
    token is the caller's unless ``--role-arn`` names another role. The program's kubeconfig
    passes none, so the API server sees the IAM role running ``pulumi up``, the one
    access.cluster_operators gives an entry."""
    caller = "arn:aws:iam::111122223333:role/someone"
    args = kubeconfig.token_command("c", "us-west-2")
    assert aws_rules.aws_eks_get_token_identity(args, caller) == caller
    other = "arn:aws:iam::111122223333:role/other"
    assert aws_rules.aws_eks_get_token_identity([*args, "--role-arn", other], caller) == other
    doc = kubeconfig.kubeconfig("c", "us-west-2", "https://x", "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t")
    assert "env" not in doc["users"][0]["user"]["exec"]  # no AWS_PROFILE either


@pytest.mark.parametrize("stack", STACKS)
def test_every_principal_that_runs_up_reaches_what_it_drives(stack: str) -> None:
    """EKS access entries and access policies
    (https://docs.aws.amazon.com/eks/latest/userguide/access-entries.html,
    https://docs.aws.amazon.com/eks/latest/userguide/access-policy-permissions.html): with
    authentication mode API a principal is cluster-admin only with an entry and
    AmazonEKSClusterAdminPolicy at cluster scope. Each principal that runs ``pulumi up``
    (access.cluster_operators) is, on every cluster whose Kubernetes provider the program uses,
    and that provider waits for both; without the association it would not be."""
    p = plan(stack)
    driven = access_walk.kubernetes_driven_regions(p)
    assert driven == set(access.kubernetes_driven_regions(p.config))
    for operator in access.cluster_operators(p.config):
        arn = _principal_arn(p, operator)
        assert driven <= access_walk.cluster_admin_regions(p, arn), operator.name
        stripped = [
            a.urn
            for a in p.of_type(ACCESS_POLICY)
            if a.inputs["principalArn"] == arn and p.region_of(a) in driven
        ]
        without = aws_rules.without_resources(p, stripped)
        assert not driven & access_walk.cluster_admin_regions(without, arn), operator.name


def _principal_arn(p: offline.Plan, operator: access.ClusterOperator) -> str:
    """The ARN the plan's entries name for ``operator`` (the up role's as its resource outputs it)."""
    (arn,) = {
        e.inputs["principalArn"] for e in p.of_type(ACCESS_ENTRY) if e.name.startswith(f"{operator.name}-")
    }
    return str(arn)


def _role_entries(p: offline.Plan) -> dict[str, list[offline.Resource]]:
    """Role URN -> the access entries whose principalArn comes from that role resource."""
    index = p.by_urn()
    out: dict[str, list[offline.Resource]] = {}
    for entry in p.of_type(ACCESS_ENTRY):
        for urn in entry.property_dependencies.get("principalArn", []):
            if index[urn].type == ROLE:
                out.setdefault(urn, []).append(entry)
    return out


def _after_role_recreated(p: offline.Plan, role: str) -> list[str]:
    """Replace ``role`` (a new unique ID) in an update of ``p``, with the Pulumi and EKS rules:
    what no longer works afterwards."""
    replaced = aws_rules.replaced_together(p, [role])
    problems = []
    for entry in _role_entries(p)[role]:
        key = (entry.inputs["clusterName"], entry.inputs["principalArn"])
        if entry.urn not in replaced:
            bound_to = "old role id"
        elif aws_rules.create_before_delete(entry):
            # The old entry still exists when the new one is created.
            problems.append(f"{entry.name}: {aws_rules.eks_create_access_entry([key], *key)}")
            bound_to = "old role id"
        else:
            bound_to = "new role id"
        if not aws_rules.eks_entry_authenticates(bound_to, "new role id"):
            problems.append(f"{entry.name}: does not authenticate the recreated role")
        for assoc in p.of_type(ACCESS_POLICY):
            same_entry = (assoc.inputs["clusterName"], assoc.inputs["principalArn"]) == key
            # A sub-resource of the entry (API path .../access-entries/{principalArn}/access-policies/...,
            # API_DisassociateAccessPolicy.html): it must come back with a replaced entry.
            lost = assoc.urn not in replaced or aws_rules.create_before_delete(assoc)
            if same_entry and entry.urn in replaced and lost:
                problems.append(f"{assoc.name}: association lost with its entry")
    return problems


@pytest.mark.parametrize("stack", STACKS)
def test_a_replaced_role_takes_its_access_entries_with_it(stack: str) -> None:
    """EKS binds an access entry to the principal's unique ID: "If you don't delete the access
    entry and ever recreate the IAM principal, even if it has the same ARN, the access entry won't
    work" (https://docs.aws.amazon.com/eks/latest/APIReference/API_AccessEntry.html, principalArn);
    one entry per principal and cluster (ResourceInUseException). With Pulumi's ``replaceWith``
    and ``deleteBeforeReplace`` (https://www.pulumi.com/docs/iac/concepts/resources/options/replacewith/,
    .../deletebeforereplace/), an update that replaces a role the program manages (up, Argo CD's
    hub role, deploy/verify) deletes and recreates its entries and their access policy
    associations; without the options the entries would silently stop working."""
    p = plan(stack)
    roles = _role_entries(p)
    index = p.by_urn()
    names = {index[r].inputs["name"] for r in roles}
    assert naming.role_name(p.config.environment, "github-up") in names
    assert naming.role_name(p.config.environment, "argocd") in names
    for role, entries in roles.items():
        assert _after_role_recreated(p, role) == [], index[role].name
        entry_urns = [e.urn for e in entries]
        unbound = aws_rules.without_option(p, entry_urns, replace_with=[])
        assert len(_after_role_recreated(unbound, role)) >= len(entries)
        created_first = aws_rules.without_option(p, entry_urns, delete_before_replace=False)
        assert any(aws_rules.RESOURCE_IN_USE in e for e in _after_role_recreated(created_first, role))

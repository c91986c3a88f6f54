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

from infra import offline
from infra.documents import access
from infra.documents import eks as eks_docs
from infra.manifests import kubeconfig

STACKS = ("staging", "prod")
EKS = "eks:index:Cluster"
ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
ACCESS_POLICY = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
K8S_PROVIDER = "pulumi:providers:kubernetes"


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


@pytest.mark.parametrize("stack", STACKS)
def test_every_cluster_is_created_without_a_creator_entry(stack: str) -> None:
    """pulumi/pulumi-eks v4.3.0 nodejs/eks/cluster/cluster.ts: without the transform EKS would add
    a standing admin entry for whoever creates the cluster, and the program's entry for the same
    principal would fail with ResourceInUseException (pulumi/pulumi-eks#2373; "An IAM principal
    can't be included in more than one access entry":
    https://docs.aws.amazon.com/eks/latest/userguide/creating-access-entries.html)."""
    clusters = plan(stack).of_type(EKS)
    assert len(clusters) == len(plan(stack).config.region_names)
    assert all(c.transforms == 1 for c in clusters)
    assert all(not c.inputs.get("accessEntries") for c in clusters)


@pytest.mark.parametrize("stack", STACKS)
def test_one_access_entry_per_principal_and_cluster(stack: str) -> None:
    """EKS: an IAM principal can be in one access entry per cluster, and only an existing
    principal (https://docs.aws.amazon.com/eks/latest/userguide/creating-access-entries.html):
    no principal twice on a cluster, and the up role's entry waits for the role."""
    p = plan(stack)
    index = p.by_urn()
    seen: set[tuple[str, str]] = set()
    for entry in p.of_type(ACCESS_ENTRY):
        key = (entry.inputs["clusterName"], entry.inputs["principalArn"])
        assert key not in seen, key
        seen.add(key)
    up = [e for e in p.of_type(ACCESS_ENTRY) if e.name.startswith(access.UP_OPERATOR)]
    assert up
    for entry in up:
        roles = [index[u] for u in entry.property_dependencies["principalArn"]]
        assert [r.inputs["name"] for r in roles if r.type == "aws:iam/role:Role"] == [
            f"platform-{p.config.environment}-github-up"
        ]


@pytest.mark.parametrize("stack", STACKS)
def test_the_runner_of_pulumi_up_is_who_the_kubernetes_api_sees(stack: str) -> None:
    """The kubeconfig the program's Kubernetes providers use runs ``aws eks get-token`` with the
    caller's own AWS credentials (no ``--role-arn``, no profile): the API server sees the IAM
    role running ``pulumi up``. AWS CLI ``eks get-token``:
    https://awscli.amazonaws.com/v2/documentation/api/latest/reference/eks/get-token.html"""
    args = kubeconfig.token_command("c", "us-west-2")
    assert "--role-arn" not in args and "--profile" not in args
    doc = kubeconfig.kubeconfig("c", "us-west-2", "https://x", "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t")
    assert "env" not in doc["users"][0]["user"]["exec"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_principal_that_runs_up_reaches_what_it_drives(stack: str) -> None:
    """Every Kubernetes provider that some resource uses belongs to a cluster where each
    principal running ``pulumi up`` (access.cluster_operators) has AmazonEKSClusterAdminPolicy
    with cluster scope, and the provider waits for those entries
    (https://docs.aws.amazon.com/eks/latest/userguide/access-policy-permissions.html)."""
    p = plan(stack)
    index = p.by_urn()
    used = {r.provider for r in p.resources if r.provider and r.provider in index}
    used_k8s = [index[u] for u in used if index[u].type == K8S_PROVIDER]
    assert used_k8s
    driven = {p.region_of(prov) for prov in used_k8s}
    assert driven == set(access.kubernetes_driven_regions(p.config))
    operators = access.cluster_operators(p.config)
    for prov in used_k8s:
        region = p.region_of(prov)
        deps = [index[d] for d in prov.dependencies]
        for operator in operators:
            assert region in operator.regions, (operator.name, region)
            names = {f"{operator.name}-{region}"}
            assert {d.name for d in deps if d.type == ACCESS_ENTRY} >= names
            assert {d.name for d in deps if d.type == ACCESS_POLICY} >= names

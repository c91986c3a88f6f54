"""Who the program lets use each cluster's Kubernetes API: the access-entry walk over a plan.

Shared by the contract tests (tests/contracts/test_eks_access.py) and the bootstrap scenario
(tests/stack/test_bootstrap.py). The EKS rule itself is transcribed in
:func:`tests.contracts.aws_rules.eks_is_cluster_admin`.
"""

from __future__ import annotations

from infra import offline
from tests.contracts import aws_rules

ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
ACCESS_POLICY = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
K8S_PROVIDER = "pulumi:providers:kubernetes"
CLUSTER_COMPONENT = "platform:eks:RegionalCluster"


def kubernetes_driven_regions(p: offline.Plan) -> set[str]:
    """Regions whose Kubernetes provider some declared resource uses."""
    index = p.by_urn()
    used = {r.provider for r in p.resources if r.provider in index}
    return {str(p.region_of(index[u])) for u in used if u and index[u].type == K8S_PROVIDER}


def cluster_admin_regions(p: offline.Plan, principal: str) -> set[str]:
    """Clusters where ``principal`` is cluster-admin by the EKS rule
    (:func:`aws_rules.eks_is_cluster_admin` over the declared entries and associations), and
    where the cluster's Kubernetes provider waits for the entry and the association: a provider
    used before them would be refused."""
    index = p.by_urn()
    entries = p.of_type(ACCESS_ENTRY)
    associations = p.of_type(ACCESS_POLICY)
    out = set()
    for entry in entries:
        if entry.inputs["principalArn"] != principal:
            continue
        cluster = entry.inputs["clusterName"]
        if not aws_rules.eks_is_cluster_admin(
            principal, cluster, [e.inputs for e in entries], [a.inputs for a in associations]
        ):
            continue
        region = str(p.region_of(entry))
        granting = [
            a.urn
            for a in associations
            if a.inputs["principalArn"] == principal and a.inputs["clusterName"] == cluster
        ]
        providers = [
            r
            for r in p.of_type(K8S_PROVIDER)
            if p.region_of(r) == region
            and r.parent is not None
            and index.get(str(r.parent)) is not None
            and index[str(r.parent)].type == CLUSTER_COMPONENT
        ]
        if all(
            not aws_rules.may_complete_before(p, prov.urn, entry.urn)
            and all(not aws_rules.may_complete_before(p, prov.urn, a) for a in granting)
            for prov in providers
        ):
            out.add(region)
    return out

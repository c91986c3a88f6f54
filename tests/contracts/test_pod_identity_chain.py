"""Argo CD's identity chain to every cluster, the hub included (issue 13 item 1).

Chain: controller pod --EKS Pod Identity--> platform-<env>-argocd --access entry--> each cluster.
Each test pins one link against its upstream source and the program's pure functions
(``infra.manifests.argocd.cluster_secret``, ``infra.documents.argocd_iam``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra import naming
from infra.config import StackConfig, load_stack_file
from infra.documents import argocd_iam
from infra.manifests import argocd as m
from tests.argocd_support import fake_vpc_id
from tests.contracts import upstream

STACKS = ("staging", "prod")


def cluster_configs(config: StackConfig) -> dict[str, dict[str, Any]]:
    """The ``config`` of every cluster Secret of the stack, by region."""
    out = {}
    for region in config.region_names:
        secret = m.cluster_secret(
            config,
            region,
            cluster_name=naming.cluster_name(config.environment, region),
            endpoint=f"https://{region}.eks.example.com",
            vpc_id=fake_vpc_id(region),
            ca_data="Q0EK",
        )
        out[region] = json.loads(secret["stringData"]["config"])
    return out


def hub_role_arn(config: StackConfig) -> str:
    name = naming.role_name(config.environment, argocd_iam.ARGOCD_ROLE_PURPOSE)
    return argocd_iam.role_arn(config.account_id, name)


@pytest.mark.parametrize("stack", STACKS)
def test_argocd_runs_argocd_k8s_auth_without_role_arn(stack: str) -> None:
    """argoproj/argo-cd v3.4.4, pkg/apis/application/v1alpha1/types.go, ``RawRestConfig``:
    ``--role-arn`` is passed only when ``awsAuthConfig.roleARN`` is set. No cluster Secret of the
    stack (hub included) sets it, so no token request assumes a role."""
    config = load_stack_file(stack)
    for region, conf in cluster_configs(config).items():
        args = upstream.argocd_k8s_auth_args(conf)
        assert args == [
            "argocd-k8s-auth",
            "aws",
            "--cluster-name",
            naming.cluster_name(config.environment, region),
        ], region


@pytest.mark.parametrize("stack", STACKS)
def test_the_token_is_signed_by_the_pod_identity_session_the_access_entries_name(stack: str) -> None:
    """argoproj/argo-cd v3.4.4, cmd/argocd-k8s-auth/commands/aws.go: without ``--role-arn`` the
    presigned GetCallerIdentity is signed with the default credential chain, i.e. the controller
    pod's EKS Pod Identity session (container credentials provider, aws-sdk-go-v2 >=
    release-2023-11-14: https://docs.aws.amazon.com/eks/latest/userguide/pod-id-minimum-sdk.html).
    That session is the role the Pod Identity associations bind and every access entry names."""
    config = load_stack_file(stack)
    role = hub_role_arn(config)  # the role ArgoCdHub associates with the controllers' accounts
    for region, conf in cluster_configs(config).items():
        token = upstream.argocd_k8s_auth_token(upstream.argocd_k8s_auth_args(conf), role)
        assert token.sts_calls == (), f"{region}: no STS call before signing"
        # ClusterRegistration's access entry principal is the hub role's ARN, in every region.
        assert token.principal_role_arn == role


@pytest.mark.parametrize("stack", STACKS)
def test_pod_identity_may_assume_the_hub_role_with_session_tags(stack: str) -> None:
    """https://docs.aws.amazon.com/eks/latest/userguide/pod-id-role.html: Pod Identity calls
    AssumeRole *and* TagSession as ``pods.eks.amazonaws.com``; the trust may restrict the session
    tags (eks-cluster-name, kubernetes-namespace, kubernetes-service-account)."""
    config = load_stack_file(stack)
    doc = argocd_iam.argocd_trust_policy(config.account_id, config.environment, config.hub_region)
    (stmt,) = doc["Statement"]
    assert stmt["Principal"] == {"Service": upstream.POD_IDENTITY_SERVICE}
    assert set(stmt["Action"]) == {"sts:AssumeRole", "sts:TagSession"}
    tags = stmt["Condition"]["StringEquals"]
    assert tags["aws:RequestTag/eks-cluster-name"] == naming.cluster_name(
        config.environment, config.hub_region
    )
    assert tags["aws:RequestTag/kubernetes-namespace"] == naming.ARGOCD_NAMESPACE


def test_a_role_arn_would_be_a_chained_assume_role_that_the_trust_refuses() -> None:
    """https://docs.aws.amazon.com/eks/latest/userguide/pod-id-abac.html: Pod Identity session
    tags are transitive, so an AssumeRole from that session needs sts:TagSession as well. This
    is why the Secrets carry no roleARN: with one (the issue-13 shape), argocd-k8s-auth would
    make exactly that call, and the hub role trusts no AWS principal at all."""
    config = load_stack_file("prod")
    role = hub_role_arn(config)
    with_role = {"awsAuthConfig": {"clusterName": "c", "roleARN": role}}
    token = upstream.argocd_k8s_auth_token(upstream.argocd_k8s_auth_args(with_role), role)
    assert token.sts_calls == ("sts:AssumeRole",)  # the hop that would need the tags
    assert {"sts:TagSession"} <= upstream.CHAINED_ASSUME_ROLE_FROM_POD_IDENTITY
    doc = argocd_iam.argocd_trust_policy(config.account_id, config.environment, config.hub_region)
    assert not [s for s in doc["Statement"] if "AWS" in s["Principal"]]
    # The pure function cannot produce the chained shape.
    assert "roleARN" not in m.cluster_config("c", "Q0EK")["awsAuthConfig"]


@pytest.mark.parametrize("stack", STACKS)
def test_addon_pods_are_created_after_their_pod_identity_association(stack: str) -> None:
    """awsdocs/amazon-eks-user-guide service-accounts.adoc, [[pod-id-agent-pod]] (EKS user guide
    https://docs.aws.amazon.com/eks/latest/userguide/pod-id-how-it-works.html): "When Amazon EKS
    starts a new pod that uses a service account with an EKS Pod Identity association, the
    cluster adds" the credential variables: credentials are injected at pod creation.

    Argo CD creates an add-on's pods on a cluster once that cluster's Secret selects the add-on,
    so what exists then is what the Secret depends on (Pulumi creates a resource only after its
    dependencies). Every add-on that calls AWS, on every cluster that runs it, is admitted with
    the variables, on every stack."""
    from infra import addons, offline
    from tests.contracts import addon_rules
    from tests.stack.test_addons_stack import depends_on

    assert addon_rules.pod_identity_admission("ns", "sa", []) == {}
    config = load_stack_file(stack)
    plan = offline.run(stack)
    associations = plan.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    for region in config.region_names:
        secret = plan.one("kubernetes:core/v1:Secret", f"argocd-cluster-{region}")
        before = depends_on(plan, secret)
        existing = [
            (a.inputs["namespace"], a.inputs["serviceAccount"])
            for a in associations
            if a.urn in before and str(plan.region_of(a)) == region
        ]
        for r, addon in addons.identities(config):
            if r == region:
                assert addon.service_account is not None
                env = addon_rules.pod_identity_admission(addon.namespace, addon.service_account, existing)
                assert addon_rules.aws_sdk_go_v2_default_chain(env) == "container", (region, addon.name)

"""EKS rules, each over both shapes the engine sends: the pulumi-eks component and its aws child."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from infra import versions
from policies import eks
from tests.policies.support import check, tags, view

LOGS = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
KEY = "arn:aws:kms:us-west-2:444455556666:key/0b3c0f3e-0000-4000-8000-000000000001"
NAME = "platform-prod-us-west-2"
SUPPORTED = ", ".join(versions.EKS_STANDARD_SUPPORT)
OMIT = object()


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # Inside every listed version's standard support, so the table's dates do not age these tests.
    earliest_end = min(dt.date.fromisoformat(d) for d in versions.EKS_STANDARD_SUPPORT.values())
    monkeypatch.setattr(eks, "_today", lambda: earliest_end - dt.timedelta(days=1))


def settings(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "version": "1.35",
        "auth": "API",
        "logs": list(LOGS),
        "key": KEY,
        "public": False,
        "cidrs": [],
    }
    base.update(overrides)
    return base


def component(**overrides: Any) -> dict[str, Any]:
    s = settings(**overrides)
    props = {
        "name": NAME,
        "version": s["version"],
        "authenticationMode": s["auth"],
        "enabledClusterLogTypes": s["logs"],
        "encryptionConfigKeyArn": s["key"],
        "endpointPublicAccess": s["public"],
        "publicAccessCidrs": s["cidrs"],
        "skipDefaultNodeGroup": True,
        "tags": tags(),
    }
    return {k: v for k, v in props.items() if v is not OMIT}


def aws_cluster(**overrides: Any) -> dict[str, Any]:
    s = settings(**overrides)
    vpc = {"endpointPublicAccess": s["public"], "publicAccessCidrs": s["cidrs"], "subnetIds": ["subnet-1"]}
    props: dict[str, Any] = {
        "name": NAME,
        "version": s["version"],
        "accessConfig": {"authenticationMode": s["auth"]} if s["auth"] is not OMIT else OMIT,
        "enabledClusterLogTypes": s["logs"],
        "encryptionConfig": {"resources": ["secrets"], "provider": {"keyArn": s["key"]}}
        if s["key"] is not OMIT
        else OMIT,
        "vpcConfig": {k: v for k, v in vpc.items() if v is not OMIT},
        "tags": tags(),
    }
    return {k: v for k, v in props.items() if v is not OMIT}


SHAPES = {eks.EKS_COMPONENT: component, eks.EKS_CLUSTER: aws_cluster}


def cluster(shape: str, environment: str = "prod", **overrides: Any) -> Any:
    return view(shape, "eks-us-west-2", SHAPES[shape](**overrides), environment=environment)


CLUSTER_RULES = (
    "eks-version-in-standard-support",
    "eks-authentication-mode-api",
    "eks-control-plane-logging",
    "eks-secrets-encryption",
    "eks-endpoint-not-open-to-internet-prod",
)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", CLUSTER_RULES)
def test_a_compliant_cluster_passes_every_cluster_rule(shape: str, name: str) -> None:
    assert check(name, cluster(shape)) == []


def test_both_shapes_normalise_to_the_same_settings() -> None:
    a = eks.cluster_settings(cluster(eks.EKS_COMPONENT, cidrs=["203.0.113.0/24"], public=True))
    b = eks.cluster_settings(cluster(eks.EKS_CLUSTER, cidrs=["203.0.113.0/24"], public=True))
    assert a == b
    assert a is not None and a.secrets_key == KEY and a.public_access_cidrs == ["203.0.113.0/24"]


def test_other_types_are_not_clusters() -> None:
    assert eks.cluster_settings(view("aws:eks/nodeGroup:NodeGroup", "n", {"version": "1.20"})) is None
    for name in CLUSTER_RULES:
        assert check(name, view("aws:eks/nodeGroup:NodeGroup", "n", {"version": "1.20"})) == []


# --- version -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_version_outside_standard_support_is_refused(shape: str) -> None:
    assert check("eks-version-in-standard-support", cluster(shape, version="1.29")) == [
        f"EKS cluster {NAME} runs Kubernetes 1.29, which is not in EKS standard support; upgrade "
        f"platform:regions.<region>.kubernetesVersion to one of: {SUPPORTED}."
    ]


@pytest.mark.parametrize("shape", SHAPES)
def test_unpinned_version_is_refused(shape: str) -> None:
    assert check("eks-version-in-standard-support", cluster(shape, version=OMIT)) == [
        f"EKS cluster {NAME} does not pin a Kubernetes version, so EKS picks its default and the version "
        f"drifts; set version to one in standard support: {SUPPORTED} (infra/versions.py EKS_STANDARD_SUPPORT)."
    ]


def test_version_whose_support_ended_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    version, end = next(iter(versions.EKS_STANDARD_SUPPORT.items()))
    monkeypatch.setattr(eks, "_today", lambda: dt.date.fromisoformat(end) + dt.timedelta(days=1))
    assert check("eks-version-in-standard-support", cluster(eks.EKS_COMPONENT, version=version)) == [
        f"EKS cluster {NAME} runs Kubernetes {version}, whose standard support ended on {end}; upgrade to "
        f"a newer version and remove {version} from EKS_STANDARD_SUPPORT in infra/versions.py."
    ]
    monkeypatch.setattr(eks, "_today", lambda: dt.date.fromisoformat(end))
    assert check("eks-version-in-standard-support", cluster(eks.EKS_COMPONENT, version=version)) == []


# --- authentication mode -----------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_config_map_authentication_is_refused(shape: str) -> None:
    assert check("eks-authentication-mode-api", cluster(shape, auth="API_AND_CONFIG_MAP")) == [
        f"EKS cluster {NAME} authentication mode is API_AND_CONFIG_MAP; set authenticationMode to API so "
        "cluster access is granted only through EKS access entries, never the aws-auth ConfigMap."
    ]


@pytest.mark.parametrize("shape", SHAPES)
def test_missing_authentication_mode_is_refused(shape: str) -> None:
    assert check("eks-authentication-mode-api", cluster(shape, auth=OMIT)) == [
        f"EKS cluster {NAME} authentication mode is not set (EKS then uses CONFIG_MAP); set "
        "authenticationMode to API so cluster access is granted only through EKS access entries, never "
        "the aws-auth ConfigMap."
    ]


# --- logging -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_partial_logging_names_the_missing_types(shape: str) -> None:
    assert check("eks-control-plane-logging", cluster(shape, logs=["api", "audit"])) == [
        f"EKS cluster {NAME} does not send the authenticator, controllerManager, scheduler control-plane "
        "logs; set enabledClusterLogTypes to all of: api, audit, authenticator, controllerManager, scheduler."
    ]


@pytest.mark.parametrize("shape", SHAPES)
def test_missing_logging_names_every_type(shape: str) -> None:
    assert check("eks-control-plane-logging", cluster(shape, logs=OMIT)) == [
        f"EKS cluster {NAME} does not send the api, audit, authenticator, controllerManager, scheduler "
        "control-plane logs; set enabledClusterLogTypes to all of: api, audit, authenticator, "
        "controllerManager, scheduler."
    ]


# --- secrets encryption ------------------------------------------------------------------------

NO_ENCRYPTION = (
    f"EKS cluster {NAME} does not envelope-encrypt Kubernetes Secrets; set encryptionConfigKeyArn "
    "(pulumi-eks) or encryptionConfig with resources [secrets] to a KMS key."
)


@pytest.mark.parametrize("shape", SHAPES)
def test_missing_secrets_encryption_is_refused(shape: str) -> None:
    assert check("eks-secrets-encryption", cluster(shape, key=OMIT)) == [NO_ENCRYPTION]


def test_encryption_of_other_resources_than_secrets_is_refused() -> None:
    props = aws_cluster()
    props["encryptionConfig"] = {"resources": ["configmaps"], "provider": {"keyArn": KEY}}
    assert check("eks-secrets-encryption", view(eks.EKS_CLUSTER, "c", props)) == [NO_ENCRYPTION]


@pytest.mark.parametrize("shape", SHAPES)
def test_encryption_key_not_known_until_the_key_exists_is_not_judged(shape: str) -> None:
    from policies.engine import UNKNOWN

    assert check("eks-secrets-encryption", cluster(shape, key=UNKNOWN)) == []


# --- public endpoint ---------------------------------------------------------------------------

OPEN = (
    f"EKS cluster {NAME} has a public API endpoint open to 0.0.0.0/0; set endpointPublicAccess to false, "
    "or list the allowed networks in publicAccessCidrs (platform:regions.<region>.publicAccessCidrs)."
)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("public", "cidrs", "is_open"),
    [
        (False, [], False),
        (False, ["0.0.0.0/0"], False),
        (True, ["203.0.113.0/24"], False),
        (True, ["203.0.113.0/24", "0.0.0.0/0"], True),
        (True, [], True),  # EKS opens an endpoint without a CIDR list to everyone
        (True, OMIT, True),
        (OMIT, OMIT, True),  # public by default in EKS and pulumi-eks
        (OMIT, ["10.0.0.0/8"], False),
    ],
)
def test_endpoint_open_to_the_internet_in_prod(shape: str, public: Any, cidrs: Any, is_open: bool) -> None:
    found = check("eks-endpoint-not-open-to-internet-prod", cluster(shape, public=public, cidrs=cidrs))
    assert found == ([OPEN] if is_open else [])


@pytest.mark.parametrize("shape", SHAPES)
def test_open_endpoint_is_mandatory_in_prod_and_advisory_elsewhere(shape: str) -> None:
    prod = cluster(shape, public=True, cidrs=["0.0.0.0/0"])
    staging = cluster(shape, environment="staging", public=True, cidrs=["0.0.0.0/0"])
    assert check("eks-endpoint-not-open-to-internet-prod", prod) == [OPEN]
    assert check("eks-endpoint-not-open-to-internet", prod) == []
    assert check("eks-endpoint-not-open-to-internet-prod", staging) == []
    assert check("eks-endpoint-not-open-to-internet", staging) == [OPEN]


def test_unknown_environment_is_judged_as_prod() -> None:
    props = {**component(public=True, cidrs=["0.0.0.0/0"]), "tags": {}}
    unknown = view(eks.EKS_COMPONENT, "c", props, environment=None)
    assert unknown.environment is None and unknown.is_prod
    assert check("eks-endpoint-not-open-to-internet-prod", unknown) == [OPEN]
    assert check("eks-endpoint-not-open-to-internet", unknown) == []
    # With the stack unknown, the resource's own environment tag decides.
    tagged = view(eks.EKS_COMPONENT, "c", {**props, "tags": tags("staging")}, environment=None)
    assert check("eks-endpoint-not-open-to-internet", tagged) == [OPEN]


# --- nodes: public IPs -------------------------------------------------------------------------


def test_subnet_that_assigns_public_ips_is_refused() -> None:
    subnet = view(eks.SUBNET, "public-us-west-2a", {"mapPublicIpOnLaunch": True, "tags": tags()})
    assert check("eks-nodes-no-public-ip", subnet) == [
        "Subnet public-us-west-2a gives every instance launched in it a public IP; set mapPublicIpOnLaunch "
        "to false (nodes run in private subnets; NAT gateways and load balancers get their addresses "
        "explicitly)."
    ]


@pytest.mark.parametrize("props", [{"mapPublicIpOnLaunch": False}, {}])
def test_subnet_without_public_ips_passes(props: dict[str, Any]) -> None:
    assert check("eks-nodes-no-public-ip", view(eks.SUBNET, "s", props)) == []


def test_launch_template_with_public_ip_is_refused() -> None:
    template = view(
        eks.LAUNCH_TEMPLATE, "nodes", {"networkInterfaces": [{"associatePublicIpAddress": "true"}]}
    )
    assert check("eks-nodes-no-public-ip", template) == [
        "Launch template nodes gives nodes a public IP; set networkInterfaces[].associatePublicIpAddress to false."
    ]
    quiet = view(eks.LAUNCH_TEMPLATE, "nodes", {"networkInterfaces": [{"associatePublicIpAddress": "false"}]})
    assert check("eks-nodes-no-public-ip", quiet) == []
    assert check("eks-nodes-no-public-ip", view(eks.LAUNCH_TEMPLATE, "nodes", {})) == []


def test_pulumi_eks_default_node_group_gets_public_ips_unless_told_otherwise() -> None:
    props = component()
    del props["skipDefaultNodeGroup"]
    assert check("eks-nodes-no-public-ip", view(eks.EKS_COMPONENT, "c", props)) == [
        f"EKS cluster {NAME} creates pulumi-eks's default node group with public IPs; set skipDefaultNodeGroup "
        "to true (nodes are managed node groups) or nodeAssociatePublicIpAddress to false."
    ]
    props["nodeAssociatePublicIpAddress"] = False
    assert check("eks-nodes-no-public-ip", view(eks.EKS_COMPONENT, "c", props)) == []
    assert check("eks-nodes-no-public-ip", cluster(eks.EKS_COMPONENT)) == []


# --- nodes: IMDSv2 -----------------------------------------------------------------------------


def test_launch_template_requiring_imdsv2_passes() -> None:
    template = view(eks.LAUNCH_TEMPLATE, "nodes", {"metadataOptions": {"httpTokens": "required"}})
    assert check("eks-nodes-imdsv2", template) == []


@pytest.mark.parametrize(
    ("props", "shown"), [({"metadataOptions": {"httpTokens": "optional"}}, "optional"), ({}, "not set")]
)
def test_launch_template_without_imdsv2_is_refused(props: dict[str, Any], shown: str) -> None:
    assert check("eks-nodes-imdsv2", view(eks.LAUNCH_TEMPLATE, "nodes", props)) == [
        f"Launch template nodes leaves IMDSv2 optional (httpTokens {shown}); set metadataOptions.httpTokens to "
        "required so node credentials need a session token."
    ]


def test_node_group_without_launch_template_is_refused() -> None:
    assert check("eks-nodes-imdsv2", view(eks.NODE_GROUP, "nodes-us-west-2", {"clusterName": NAME})) == [
        "Node group nodes-us-west-2 has no launch template, so its instance metadata settings are EKS's "
        "defaults; attach a launch template whose metadataOptions.httpTokens is required."
    ]
    with_template = view(
        eks.NODE_GROUP, "nodes-us-west-2", {"launchTemplate": {"id": "lt-1", "version": "1"}}
    )
    assert check("eks-nodes-imdsv2", with_template) == []

"""The conversion of the offline plan for the scanners, and the skip file (no scanner runs here)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from infra import offline, scan
from infra.plan import available_stacks

STACKS = tuple(available_stacks())


@cache
def plan(stack: str) -> offline.Plan:
    return offline.run(stack)


def test_snake_case_is_the_bridge_inverse() -> None:
    assert scan.snake("enableDnsSupport") == "enable_dns_support"
    assert scan.snake("httpPutResponseHopLimit") == "http_put_response_hop_limit"
    assert scan.snake("name") == "name"


def test_values_keep_maps_and_make_every_nested_object_a_block_list() -> None:
    values = scan.terraform_values(
        {
            "tags": {"team": "platform", "Name": "x"},
            "metadataOptions": {"httpTokens": "required"},
            "encryptionConfigurations": [{"encryptionType": "KMS"}],
            "subnetIds": ["a", "b"],
        }
    )
    assert values == {
        "tags": {"team": "platform", "Name": "x"},
        "metadata_options": [{"http_tokens": "required"}],
        "encryption_configuration": [{"encryption_type": "KMS"}],
        "subnet_ids": ["a", "b"],
    }


def test_the_eks_component_becomes_the_cluster_pulumi_eks_creates() -> None:
    values = scan.eks_cluster_values(
        {
            "name": "c",
            "version": "1.35",
            "privateSubnetIds": ["p"],
            "publicSubnetIds": ["q"],
            "endpointPrivateAccess": True,
            "endpointPublicAccess": False,
            "enabledClusterLogTypes": ["api", "audit"],
            "encryptionConfigKeyArn": "arn:aws:kms:r:1:key/k",
            "authenticationMode": "API",
        }
    )
    assert values["vpc_config"] == [
        {"subnet_ids": ["p", "q"], "endpoint_private_access": True, "endpoint_public_access": False}
    ]
    assert values["encryption_config"] == [
        {"resources": ["secrets"], "provider": [{"key_arn": "arn:aws:kms:r:1:key/k"}]}
    ]
    assert values["access_config"] == [{"authentication_mode": "API"}]


@pytest.mark.parametrize("stack", STACKS)
def test_every_aws_object_of_the_plan_is_converted_with_its_terraform_type(stack: str) -> None:
    p = plan(stack)
    doc = scan.terraform_plan(p)
    assert {"format_version", "terraform_version", "planned_values"} <= doc.keys()
    resources = doc["planned_values"]["root_module"]["resources"]
    expected = [r for r in p.resources if r.type.startswith("aws:") and r.custom]
    components = p.of_type(scan.EKS_CLUSTER_COMPONENT)
    assert len(resources) == len(expected) + len(components)
    assert len({r["address"] for r in resources}) == len(resources)
    by_type = {r["type"] for r in resources}
    assert {scan.TERRAFORM_TYPES[r.type] for r in expected} | {"aws_eks_cluster"} == by_type
    changes = {c["address"]: c for c in doc["resource_changes"]}
    assert all(changes[r["address"]]["change"]["actions"] == ["create"] for r in resources)


@pytest.mark.parametrize("stack", STACKS)
def test_property_dependencies_become_references_so_graph_checks_see_the_edges(stack: str) -> None:
    doc = scan.terraform_plan(plan(stack))
    configured = {r["address"]: r for r in doc["configuration"]["root_module"]["resources"]}
    vpcs = {r["address"] for r in doc["planned_values"]["root_module"]["resources"] if r["type"] == "aws_vpc"}
    assert len(vpcs) == len(plan(stack).config.region_names)
    for kind in ("aws_flow_log", "aws_default_security_group"):
        referenced = {
            ref
            for a, r in configured.items()
            if r["type"] == kind
            for ref in r["expressions"]["vpc_id"]["references"]
        }
        assert vpcs <= referenced, kind


def test_an_unknown_aws_type_stops_the_conversion() -> None:
    p = plan(STACKS[0])
    odd = offline.Resource(
        urn="urn:pulumi:x::platform::aws:sqs/queue:Queue::q",
        type="aws:sqs/queue:Queue",
        name="q",
        custom=True,
        parent=None,
        provider=None,
        providers={},
        dependencies=[],
        property_dependencies={},
        protect=False,
        retain_on_delete=False,
        delete_before_replace=False,
        ignore_changes=[],
        remote=False,
        inputs={},
    )
    broken = offline.Plan(stack=p.stack, config=p.config, resources=[*p.resources, odd], outputs={})
    with pytest.raises(scan.ScanError, match=r"no Terraform type for aws:sqs/queue:Queue"):
        scan.terraform_plan(broken)


@pytest.mark.parametrize("stack", STACKS)
def test_kubernetes_objects_of_the_program_are_manifests(stack: str) -> None:
    manifests = scan.kubernetes_manifests(plan(stack))
    kinds = {(m["apiVersion"], m["kind"]) for m in manifests}
    assert ("v1", "Namespace") in kinds
    assert ("argoproj.io/v1alpha1", "AppProject") in kinds
    assert all(m["metadata"]["name"] for m in manifests)


# --- the skip file ------------------------------------------------------------------------------


def test_the_skip_file_loads_and_gives_a_reason_for_every_entry() -> None:
    skips = scan.load_skips()
    assert skips
    assert all(s.reason and s.resources and s.framework in scan.FRAMEWORKS for s in skips)


def test_a_malformed_skip_names_the_file_entry_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "skips.yaml"
    bad.write_text(
        json.dumps({"skips": [{"framework": "terraform_plan", "check": "CKV_AWS_1", "resources": ["*"]}]})
    )
    with pytest.raises(scan.ScanError, match=r"skips\[0\] \(CKV_AWS_1\): missing reason"):
        scan.load_skips(bad)
    bad.write_text(
        json.dumps({"skips": [{"framework": "tf", "check": "C", "resources": ["*"], "reason": "r"}]})
    )
    with pytest.raises(scan.ScanError, match=r"framework 'tf' is not one of"):
        scan.load_skips(bad)


def test_judge_reports_unjustified_findings_and_stale_skips() -> None:
    found = [
        scan.Finding("terraform_plan", "CKV_AWS_39", "aws_eks_cluster.eks-us-east-1", "f", "t"),
        scan.Finding("kubernetes", "CKV_K8S_15", "Deployment.shop.web", "f", "t"),
    ]
    skips = [
        scan.Skip("terraform_plan", "CKV_AWS_39", ("aws_eks_cluster.*",), "why"),
        scan.Skip("zizmor", "artipacked", ("x.yml:*",), "why"),
    ]
    unjustified, stale = scan.judge(found, skips)
    assert unjustified == [found[1]]
    assert stale == [skips[1]]

"""What the DR runbook relies on in the installed SDKs and the AWS API models (docs/dr.md).

One test per behaviour, each naming its source. The Go side of the providers (what the
Kubernetes provider does on an unreachable cluster, when the engine replaces a resource whose
provider changed) is read upstream and transcribed in tests/drill.py, where it is cited; what
can be checked here, in the installed packages, is pinned here.
"""

from __future__ import annotations

import inspect
from typing import Any

import botocore.session as botocore_session
import pulumi_aws
import pulumi_kubernetes

from infra import config as cfg
from infra import offline, providers


def operation(service: str, name: str) -> Any:
    return botocore_session.get_session().get_service_model(service).operation_model(name)


def test_the_kubernetes_provider_takes_delete_unreachable_and_falls_back_to_the_environment() -> None:
    """pulumi-kubernetes 4.34.2 Python SDK, pulumi_kubernetes/provider.py: ``delete_unreachable``
    is an input of the provider, read from PULUMI_K8S_DELETE_UNREACHABLE when not given
    (pulumi/pulumi-kubernetes#2033, #2463; provider/pkg/provider/provider.go, v4.32.0: the
    provider input overrides the environment variable)."""
    assert "delete_unreachable" in inspect.signature(pulumi_kubernetes.Provider._internal_init).parameters
    source = inspect.getsource(pulumi_kubernetes.Provider._internal_init)
    assert "get_env_bool('PULUMI_K8S_DELETE_UNREACHABLE')" in source


def test_the_aws_provider_takes_an_sts_region_and_a_retry_limit() -> None:
    """pulumi-aws 7.51.1 Python SDK, pulumi_aws/provider.py: ``sts_region`` ("The region where AWS
    STS operations will take place") and ``max_retries`` are provider inputs."""
    params = inspect.signature(pulumi_aws.Provider._internal_init).parameters
    assert {"sts_region", "max_retries", "allowed_account_ids"} <= set(params)
    doc = inspect.getsource(pulumi_aws.Provider)
    assert "The region where AWS STS operations will take place" in doc


def test_only_the_lost_regions_providers_get_the_incident_inputs() -> None:
    """The inputs above reach exactly the providers of ``platform:unreachableRegions``: the others,
    and every provider outside an incident, keep their inputs (so the state does not change)."""
    raw = cfg.read_stack_file(cfg.stack_file("prod"))
    healthy = offline.run("prod", flat_config=raw)
    lost = healthy.config.spoke_regions[0]
    marked = offline.run("prod", flat_config={**raw, "platform:unreachableRegions": [lost]})
    before = {r.name: r.inputs for r in healthy.resources if r.is_provider}
    after = {r.name: r.inputs for r in marked.resources if r.is_provider}
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {f"aws-{lost}", f"k8s-{lost}"}, changed
    assert after[f"k8s-{lost}"]["deleteUnreachable"] == "true"
    assert after[f"aws-{lost}"]["stsRegion"] == healthy.config.hub_region
    assert after[f"aws-{lost}"]["maxRetries"] == str(providers.UNREACHABLE_MAX_RETRIES)
    assert not any("deleteUnreachable" in inputs for name, inputs in before.items())


def test_an_inline_role_policy_is_put_whole_so_forgetting_and_putting_it_again_is_an_update() -> None:
    """IAM PutRolePolicy "Adds or updates an inline policy document" (botocore iam model): the
    hub move forgets an inline policy that names a resource of the lost hub and puts it again;
    the role itself is never re-created (tests/stack/test_dr_drill.py)."""
    op = operation("iam", "PutRolePolicy")
    assert op.documentation.startswith("<p>Adds or updates an inline policy document")
    assert {"RoleName", "PolicyName", "PolicyDocument"} <= set(op.input_shape.required_members)


def test_ecr_finds_an_image_by_digest_and_lists_running_backfills() -> None:
    """ECR DescribeImages takes imageIds by imageDigest (the backfill skips an image the region
    holds); ListReplicationBackfills returns each backfill's destination and status, one of
    PREPARING and IN_PROGRESS while it runs (the script follows it instead of starting another:
    "Only one replication backfill can be in progress for a given destination Region at a
    time", StartReplicationBackfill)."""
    describe = operation("ecr", "DescribeImages")
    assert "imageDigest" in describe.input_shape.members["imageIds"].member.members
    listing = operation("ecr", "ListReplicationBackfills")
    backfill = listing.output_shape.members["backfills"].member.members
    assert {"PREPARING", "IN_PROGRESS"} <= set(backfill["status"].enum)
    assert set(backfill["destination"].members) == {"region", "registryId"}
    start = operation("ecr", "StartReplicationBackfill")
    assert "Only one replication backfill can be in progress" in start.documentation


def test_the_freeze_variable_is_the_one_the_workflows_check() -> None:
    """Every job of up.yml and deploy-prod.yml is skipped while the runbook's freeze is set (the
    ``vars`` context is available to ``jobs.<job_id>.if``: GitHub docs, contexts, context
    availability)."""
    import yaml

    from infra import dr

    for name in ("up.yml", "deploy-prod.yml"):
        workflow = yaml.safe_load((cfg.PROJECT_ROOT / ".github" / "workflows" / name).read_text())
        for job_name, job in workflow["jobs"].items():
            assert job.get("if") == f"vars.{dr.FREEZE_VARIABLE} != 'true'", (name, job_name)
    up = yaml.safe_load((cfg.PROJECT_ROOT / ".github" / "workflows" / "up.yml").read_text())
    for job_name, job in up["jobs"].items():
        stack = job["steps"][-1]["with"]["stack-name"]
        assert job["concurrency"] == {"group": f"pulumi-state-{stack}", "cancel-in-progress": False}, job_name

"""Explicit providers: one AWS provider per region of the stack's account, and one for the account.

Default providers are disabled in every stack file (``pulumi:disable-default-providers``), so a
resource declared without one of these fails loudly instead of landing in whatever account and
region the caller's shell points at. ``allowed_account_ids`` makes a provider refuse to run with
credentials for the wrong account: running prod's program with staging's credentials stops
before the first call, not after half an update.

The account's provider (:func:`account_provider`) declares the account-wide objects (IAM is a
global service: the GitHub OIDC provider, roles and policies with fixed names). Its URN and its
region never follow the hub: when a resource's provider reference changes, the Pulumi engine asks
the *new* provider's ``DiffConfig`` whether the resource must be replaced (pulumi/pulumi
pkg/resource/deploy/step_generator.go ``providerChanged``, v3.259.0), and pulumi-aws answers
"replace" when the region differs (pulumi/pulumi-aws#4000). Declared through the hub's provider,
a hub move would re-create the protected OIDC provider and every fixed-name role.

Disaster recovery (``platform:unreachableRegions``, docs/dr.md): a region whose endpoints do not
answer is read here, in one place. Its AWS provider authenticates through a reachable region's
STS (pulumi-aws ``stsRegion``: with ``allowedAccountIds`` the provider asks STS who the caller is
when it is configured) and gives up after a few retries instead of stalling; its Kubernetes
provider gets ``deleteUnreachable`` (:func:`kubernetes_options`).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from infra.config import StackConfig

ACCOUNT_PROVIDER = "aws-account"
# Retries of an unreachable region's AWS provider: fail in seconds, not after pulumi-aws's 25.
UNREACHABLE_MAX_RETRIES = 1


def _unreachable_options(config: StackConfig, region: str) -> dict[str, Any]:
    if region not in config.unreachable_regions:
        # Nothing added outside an incident: the providers' inputs, and so the state, stay as they are.
        return {}
    return {"sts_region": config.reachable_regions[0], "max_retries": UNREACHABLE_MAX_RETRIES}


def aws_providers(config: StackConfig) -> dict[str, aws.Provider]:
    return {
        region: aws.Provider(
            f"aws-{region}",
            region=region,
            allowed_account_ids=[config.account_id],
            **_unreachable_options(config, region),
        )
        for region in config.region_names
    }


def account_provider(config: StackConfig) -> aws.Provider:
    """The provider of the account-wide (IAM) objects, in ``platform:accountRegion``."""
    return aws.Provider(
        ACCOUNT_PROVIDER,
        region=config.account_region,
        allowed_account_ids=[config.account_id],
        **_unreachable_options(config, config.account_region),
    )


def kubernetes_options(config: StackConfig, region: str) -> dict[str, Any]:
    """Extra inputs of a region's Kubernetes provider: ``delete_unreachable`` while it is lost.

    pulumi-kubernetes (provider/pkg/provider/provider.go, v4.32.0; installed SDK 4.34.2 reads the
    same ``deleteUnreachable`` input, falling back to PULUMI_K8S_DELETE_UNREACHABLE): with it, a
    Read (refresh) or Delete of an object on an unreachable cluster removes the object from the
    state instead of failing (pulumi/pulumi-kubernetes#2033, #2463); a Helm Release's Delete still
    fails on an unreachable cluster, its Read does not, so the runbook refreshes before it updates.
    Only true is ever set: an explicit false would override the environment variable.
    """
    return {"delete_unreachable": True} if region in config.unreachable_regions else {}


def invoke_options(provider: aws.Provider) -> pulumi.InvokeOptions:
    return pulumi.InvokeOptions(provider=provider)

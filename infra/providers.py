"""Explicit providers: one AWS provider per region of the stack's account.

Default providers are disabled in every stack file (``pulumi:disable-default-providers``), so a
resource declared without one of these fails loudly instead of landing in whatever account and
region the caller's shell points at. ``allowed_account_ids`` makes a provider refuse to run with
credentials for the wrong account: running prod's program with staging's credentials stops
before the first call, not after half an update.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.config import StackConfig


def aws_providers(config: StackConfig) -> dict[str, aws.Provider]:
    return {
        region: aws.Provider(
            f"aws-{region}",
            region=region,
            allowed_account_ids=[config.account_id],
        )
        for region in config.region_names
    }


def invoke_options(provider: aws.Provider) -> pulumi.InvokeOptions:
    return pulumi.InvokeOptions(provider=provider)

"""Checks across the stack files of one checkout: what no single stack can see on its own.

The program runs one stack at a time, so some problems only show when the stack files are read
together (and two stack files of one repository must agree on its GitHub plan and visibility):

* **Two stacks in one AWS account** (same ``platform:accountId``) share the account's singletons.
  IAM role names, EKS cluster names and KMS aliases are global to an account and the program
  derives them from ``platform:environment`` (``infra.naming``); the account has one GitHub OIDC
  provider per URL (IAM ``CreateOpenIDConnectProvider`` fails with EntityAlreadyExists for a
  second, https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateOpenIDConnectProvider.html);
  each region's private registry has one replication configuration, one registry policy and one
  scanning configuration, which ``Put*`` replaces whole
  (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_PutReplicationConfiguration.html,
  API_PutRegistryPolicy.html, API_PutRegistryScanningConfiguration.html); repository names and
  repository creation templates are keyed by ``platform:ecr.prefix`` within a region. A second
  stack that declares any of these again would take them over from the first: refused. (Pinned
  against the AWS API models in tests/contracts/test_account_singletons.py.)
* **A source stack and its replica** (staging and prod: the replica's ``accountId`` is the
  source's ``peerAccountId``). Staging replicates every image into prod's account in each of
  *its own* regions (``infra.documents.ecr.replication_destinations``): a region only staging
  runs is replicated into although prod runs nothing there and has no registry policy admitting
  it (a warning: trying a region in staging first is legitimate); a region only prod runs never
  receives an image (an error: its pods could not pull). The replica's backfill script
  (``infra.documents.ecr.backfill_commands``) works from *its own* ``ecr.primaryRegion`` in the
  source account, where the source's replication configuration must be, so the two primary
  regions must agree (an error);
  and the replica admits only its own ``peerAccountId`` (its registry policy), so a source that
  replicates into the account of a stack that is not its replica is refused, and so is a second
  source stack in the replica's source account (a copy of staging whose ``peerAccountId`` is
  prod's): the replica follows one source's prefix and primary region.

``findings`` is a pure function over the loaded configs, keyed by stack file name; ``check``
loads every ``Pulumi.<stack>.yaml`` of a checkout, prints the warnings and raises on errors.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Literal, TextIO

from infra import config as cfg
from infra import naming

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One cross-stack problem: ``files`` are the two stack files, ``key`` the config key to change."""

    severity: Severity
    files: tuple[str, str]
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.files[0]} and {self.files[1]}: {self.key}: {self.message}"


class StackSetError(Exception):
    """The stack files clash; ``findings`` holds every error (the message lists them all)."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        lines = "".join(f"\n  {f}" for f in findings)
        super().__init__(f"the stack files clash ({len(findings)} errors):{lines}")


def file_name(stack: str) -> str:
    return f"Pulumi.{stack}.yaml"


def stack_name(file: str) -> str:
    """The stack of a stack file name (``Pulumi.<stack>.yaml``): what ``--stack`` takes."""
    return file.removeprefix("Pulumi.").removesuffix(".yaml")


def _same_account(a: str, ca: cfg.StackConfig, b: str, cb: cfg.StackConfig) -> list[Finding]:
    files = (a, b)
    account = ca.account_id
    out: list[Finding] = []

    def error(key: str, message: str) -> None:
        out.append(Finding("error", files, key, f"both deploy into account {account} and {message}"))

    if ca.environment == cb.environment:
        error(
            "platform:environment",
            f'both set "{ca.environment}": IAM roles, EKS clusters and KMS aliases are named '
            f"after it (e.g. {naming.role_name(ca.environment, 'github-up')}) and are global to the "
            "account; allowed: a different environment in each stack of one account",
        )
    if ca.github.existing_oidc_provider_arn is None and cb.github.existing_oidc_provider_arn is None:
        error(
            "platform:github.oidcProviderArn",
            "both create the account's one GitHub OIDC provider; allowed: one stack creates it and "
            "the other sets platform:github.oidcProviderArn to "
            f"arn:aws:iam::{account}:oidc-provider/token.actions.githubusercontent.com",
        )
    shared = sorted(set(ca.region_names) & set(cb.region_names))
    if not shared:
        return out
    where = ", ".join(shared)
    if ca.ecr.prefix == cb.ecr.prefix:
        error(
            "platform:ecr.prefix",
            f'both use the ECR prefix "{ca.ecr.prefix}" in {where}: the same repositories and '
            "repository creation template; allowed: a different platform:ecr.prefix per stack",
        )
    if ca.builds_images and cb.builds_images and ca.ecr.primary_region == cb.ecr.primary_region:
        error(
            "platform:registryRole",
            f"both are sources with their replication configuration in {ca.ecr.primary_region} "
            "(one per registry and region, replaced whole by the other); allowed: one source "
            "stack per account and primary region",
        )
    if not ca.builds_images and not cb.builds_images:
        error(
            "platform:registryRole",
            f"both are replicas with a registry policy in {where} (one per registry and region, "
            "replaced whole by the other); allowed: one replica stack per account and region",
        )
    if "enhanced" in (ca.ecr.scanning, cb.ecr.scanning):
        error(
            "platform:ecr.scanning",
            f"one sets enhanced scanning, the registry-wide scanning configuration of {where} that "
            "the other's repositories are then scanned under too; allowed: basic scanning in both, "
            "or the stacks in separate accounts",
        )
    return out


def _source_and_replica(s: str, source: cfg.StackConfig, r: str, replica: cfg.StackConfig) -> list[Finding]:
    files = (s, r)
    out: list[Finding] = []
    only_source = [x for x in source.region_names if x not in replica.region_names]
    only_replica = [x for x in replica.region_names if x not in source.region_names]
    for region in only_source:
        out.append(
            Finding(
                "warning",
                files,
                "platform:regions",
                f"{region} is a region of {s} but not of {r}: {s} replicates every image into "
                f"account {replica.account_id} in {region}, where {r} runs nothing and no registry "
                f"policy admits it; add {region} to {r} before it runs there",
            )
        )
    for region in only_replica:
        out.append(
            Finding(
                "error",
                files,
                "platform:regions",
                f"{region} is a region of {r} but not of {s}: {s} replicates only into its own "
                f"regions, so {r}'s registry in {region} never receives an image; allowed: every "
                f"region of {r} is a region of {s}",
            )
        )
    # During an incident (docs/dr.md): the replica's hub moved out of the source's lost primary
    # region, which its config can no longer name, and keeps it in unreachableRegions; the pair
    # agrees again once the source's own runbook has moved its primary region.
    in_incident = (
        source.ecr.primary_region not in replica.region_names
        and source.ecr.primary_region in replica.unreachable_regions
    )
    if in_incident and source.ecr.primary_region != replica.ecr.primary_region:
        out.append(
            Finding(
                "warning",
                files,
                "platform:ecr.primaryRegion",
                f"{s} pushes and replicates from {source.ecr.primary_region}, which {r} has left and lists in "
                f"platform:unreachableRegions (a DR runbook is under way); {r}'s is "
                f"{replica.ecr.primary_region}: run {s}'s own runbook (platform dr --stack {stack_name(s)} "
                f"--region {source.ecr.primary_region} ...), which moves its primary region, before {r}'s "
                "runbook's pull request merges its stack file",
            )
        )
    elif source.ecr.primary_region != replica.ecr.primary_region:
        out.append(
            Finding(
                "error",
                files,
                "platform:ecr.primaryRegion",
                f"{s} pushes and replicates from {source.ecr.primary_region} but {r}'s is "
                f"{replica.ecr.primary_region}, where its backfill script would work (the source "
                f"has no replication configuration there); allowed: the same primary region in both (set "
                f"platform:ecr.primaryRegion: {source.ecr.primary_region} in {r})",
            )
        )
    # What the replica's config admits beyond its own regions and accountRegion (infra/config.py):
    # the source's lost primary region, kept by its hub move; anything else marks nothing.
    for region in replica.unreachable_regions:
        if region not in (*replica.region_names, replica.account_region, source.ecr.primary_region):
            out.append(
                Finding(
                    "warning",
                    files,
                    "platform:unreachableRegions",
                    f"{region} is in {r}'s platform:unreachableRegions but is none of its regions, not its "
                    f"platform:accountRegion and not {s}'s ECR primary region ({source.ecr.primary_region}): "
                    f"it marks nothing: remove it (a replica keeps its image source's lost ECR primary region "
                    f"there only until the source's own runbook has moved that primary region; {s}'s is "
                    f"{source.ecr.primary_region} now: docs/dr.md)",
                )
            )
    return out


def _second_sources(stacks: Mapping[str, cfg.StackConfig]) -> list[Finding]:
    """Sources beyond the first that one replica would accept (same account pair), each refused.

    A replica admits one source account (its ``peerAccountId``), and its repositories, registry
    policy and backfill follow one source stack: its ``ecr.prefix`` and its primary region. Two
    source stacks in that account (staging and a copy of it) would both pass the account check;
    the one whose ``ecr.prefix`` is the replica's (else the first file by name) is kept.
    """
    out: list[Finding] = []
    for r, replica in sorted(stacks.items()):
        if replica.builds_images:
            continue
        sources = sorted(
            (
                (source.ecr.prefix != replica.ecr.prefix, s)
                for s, source in stacks.items()
                if s != r
                and source.builds_images
                and source.peer_account_id == replica.account_id
                and replica.peer_account_id == source.account_id
            )
        )
        if len(sources) < 2:
            continue
        first = sources[0][1]
        for _, s in sources[1:]:
            out.append(
                Finding(
                    "error",
                    (s, r),
                    "platform:peerAccountId",
                    f"{s} replicates every image into account {replica.account_id}, whose stack {r} "
                    f"already has the source {first}: a replica admits exactly one source stack "
                    "(one registry policy, one repository prefix, one primary region to backfill "
                    f"from); allowed: set {s}'s platform:peerAccountId to an account with a replica "
                    "of its own, or to one that no stack file here deploys into",
                )
            )
    return out


def _same_public_names(stacks: Mapping[str, cfg.StackConfig]) -> list[Finding]:
    """Two stacks with the same ``platform:traffic.host``: their ExternalDNS would write the same
    latency records (set identifier = region) and their certificates and health checks name the
    same hosts; users would reach either stack. Refused, whatever the accounts (docs/traffic.md)."""
    out = []
    for (a, ca), (b, cb) in combinations(sorted(stacks.items()), 2):
        if ca.traffic is not None and cb.traffic is not None and ca.traffic.host == cb.traffic.host:
            out.append(
                Finding(
                    "error",
                    (a, b),
                    "platform:traffic.host",
                    f'both publish "{ca.traffic.host}": the same latency records and region names, '
                    "written by both stacks' ExternalDNS; allowed: a different platform:traffic.host "
                    "per stack, such as <stack>.<zoneName>",
                )
            )
    return out


def _same_repository(a: str, ca: cfg.StackConfig, b: str, cb: cfg.StackConfig) -> list[Finding]:
    """Two stacks of one repository must describe it alike: its plan and visibility decide which
    protections exist (infra/documents/github_plans.py), and prod's stack declares the other
    stacks' environments, so a stack whose file claims a richer plan than another would pass a
    check the repository fails."""
    out: list[Finding] = []
    for key, va, vb in (
        ("plan", ca.github.plan, cb.github.plan),
        ("visibility", ca.github.visibility, cb.github.visibility),
    ):
        if va != vb:
            out.append(
                Finding(
                    "error",
                    (a, b),
                    f"platform:github.{key}",
                    f'both name the repository {ca.github.slug}, one with "{va}", the other with "{vb}"; '
                    "allowed: the same value in every stack file of one repository",
                )
            )
    return out


def findings(stacks: Mapping[str, cfg.StackConfig]) -> list[Finding]:
    """Every cross-stack problem of ``stacks`` (``{stack file name: config}``), errors first."""
    out: list[Finding] = []
    for (a, ca), (b, cb) in combinations(sorted(stacks.items()), 2):
        if ca.account_id == cb.account_id:
            out += _same_account(a, ca, b, cb)
        if ca.github.slug == cb.github.slug:
            out += _same_repository(a, ca, b, cb)
    out += _same_public_names(stacks)
    extra = _second_sources(stacks)
    out += extra
    for s, source in sorted(stacks.items()):
        if not source.builds_images:
            continue
        for r, peer in sorted(stacks.items()):
            if r == s or peer.account_id != source.peer_account_id:
                continue
            if any(f.files == (s, r) for f in extra):
                continue  # refused as a second source: the source/replica checks would mislead
            if peer.builds_images or peer.peer_account_id != source.account_id:
                out.append(
                    Finding(
                        "error",
                        (s, r),
                        "platform:peerAccountId",
                        f"{s} replicates every image into account {peer.account_id}, but {r} there "
                        + (
                            "is a source too: no registry policy admits the images"
                            if peer.builds_images
                            else f"admits replication only from account {peer.peer_account_id}"
                        )
                        + f"; allowed: {s}'s peerAccountId names the account of the replica stack "
                        f"whose peerAccountId is {source.account_id}",
                    )
                )
                continue
            out += _source_and_replica(s, source, r, peer)
    return sorted(out, key=lambda f: f.severity != "error")


def deploy_readers(config: cfg.StackConfig, stacks: Iterable[cfg.StackConfig]) -> tuple[str, ...]:
    """The stacks whose deploy reads ``config``'s hub: its replicas (the source/replica pair above:
    the replica builds no images, runs in the source's ``peerAccountId`` and names the source's
    account as its own peer). ``python -m infra.deploy prod`` reads staging's Applications on
    staging's hub from prod's runner, whose traffic leaves through prod's hub NAT gateways.
    Sorted stack names; empty for a stack that is no source."""
    if not config.builds_images:
        return ()
    return tuple(
        sorted(
            s.stack
            for s in stacks
            if s.stack != config.stack
            and not s.builds_images
            and s.account_id == config.peer_account_id
            and s.peer_account_id == config.account_id
        )
    )


def load(root: Path = cfg.PROJECT_ROOT) -> dict[str, cfg.StackConfig]:
    """Every ``Pulumi.<stack>.yaml`` of ``root``, loaded, keyed by file name."""
    stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
    return {file_name(s): cfg.load_stack_file(s, root) for s in stacks}


def check(root: Path = cfg.PROJECT_ROOT, out: TextIO | None = None) -> list[Finding]:
    """Load the checkout's stack files, print warnings to ``out`` (stderr), raise on errors.

    Raises ``StackSetError`` naming every error; ``cfg.ConfigError`` if a stack file is invalid.
    Returns the warnings.
    """
    found = findings(load(root))
    errors = [f for f in found if f.severity == "error"]
    if errors:
        raise StackSetError(errors)
    stream = out or sys.stderr
    for f in found:
        print(f, file=stream)
    return found

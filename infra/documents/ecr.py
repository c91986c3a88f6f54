"""ECR documents: lifecycle policy, replication rules, registry and IAM/KMS policies, backfill.

Pure functions of the stack configuration returning plain dicts (or command lines). The registry
component (:mod:`infra.components.registry`) only wraps them in resources; the tests check them
without Pulumi.

The image flow they describe: CI pushes each image once, to the staging registry in
``ecr.primaryRegion``. Staging's single replication configuration copies every repository under
``<prefix>/`` to staging's other regions and to the prod account in all of the stack's regions.
Prod receives images only that way.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infra import naming
from infra.config import StackConfig

POLICY_VERSION = "2012-10-17"

# ECR quotas for a registry's replication configuration:
# https://docs.aws.amazon.com/AmazonECR/latest/userguide/service-quotas.html
MAX_REPLICATION_RULES = 10
MAX_REPLICATION_DESTINATIONS = 25
MAX_FILTERS_PER_RULE = 100

# RepositoryFilter.filter as the API validates it (2-256 characters):
# https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_RepositoryFilter.html
_REPLICATION_FILTER_RE = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]*)*/)*[a-z0-9]*(?:[._-][a-z0-9]*)*$")

# The actions a replica registry grants its source account, and nothing else. ReplicateImage is
# the internal API replication calls; CreateRepository lets replication create a repository
# (through the creation template) that does not exist yet:
# https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry-permissions-create-replication.html
REPLICATE_ACTION = "ecr:ReplicateImage"
CREATE_REPOSITORY_ACTION = "ecr:CreateRepository"


class ReplicationLimitError(ValueError):
    """A replication configuration ECR would refuse (or that would replicate to itself)."""


# --------------------------------------------------------------------------------------------
# Names and filters
# --------------------------------------------------------------------------------------------


def repository_names(config: StackConfig) -> tuple[str, ...]:
    """One repository per configured service, the same names in every account and region."""
    return tuple(naming.repository_name(config.ecr.prefix, s) for s in config.services)


def replication_filter(prefix: str) -> str:
    """The PREFIX_MATCH value selecting this platform's repositories.

    PREFIX_MATCH is a plain string prefix of the repository name, so ``shop`` would also match
    ``shopping/x``; the trailing slash limits it to the ``shop/`` namespace.
    """
    return naming.repository_name(prefix, "")


def template_prefix(prefix: str) -> str:
    """The prefix of a repository creation template for the same namespace.

    Unlike a replication filter, ECR always appends "/" to a template prefix ("a prefix of prod
    would apply to all repositories beginning with prod/"), so the template takes the bare
    namespace and matches exactly what :func:`replication_filter` selects:
    https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepositoryCreationTemplate.html
    """
    return prefix


def scanning_filter(prefix: str) -> str:
    """Enhanced scanning filters are WILDCARD patterns, not prefixes."""
    return f"{prefix}/*"


def registries(config: StackConfig) -> dict[str, str]:
    """{region: registry host} of this stack's account: the OUTPUT_REGISTRIES value."""
    return {region: naming.registry_host(config.account_id, region) for region in config.region_names}


# --------------------------------------------------------------------------------------------
# Repository settings
# --------------------------------------------------------------------------------------------


def lifecycle_policy(untagged_expiry_days: int, keep_tagged_count: int) -> dict[str, Any]:
    """Expire untagged images after N days; keep only the newest K tagged images.

    Rule semantics: https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html
    ``tagStatus: tagged`` requires a tag filter; the pattern ``*`` selects every tagged image.
    """
    if untagged_expiry_days < 1:
        raise ValueError(f"untagged_expiry_days must be at least 1, got {untagged_expiry_days}")
    if keep_tagged_count < 1:
        raise ValueError(f"keep_tagged_count must be at least 1, got {keep_tagged_count}")
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"Expire untagged images {untagged_expiry_days} days after push",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": untagged_expiry_days,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"Keep the newest {keep_tagged_count} tagged images",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": keep_tagged_count,
                },
                "action": {"type": "expire"},
            },
        ]
    }


def stack_lifecycle_policy(config: StackConfig) -> dict[str, Any]:
    return lifecycle_policy(config.ecr.untagged_expiry_days, config.ecr.keep_tagged_count)


def enhanced_scanning_rules(prefix: str) -> list[dict[str, Any]]:
    """Registry scanning rules for ``scanning: enhanced`` (continuous scanning includes on push)."""
    return [
        {
            "scan_frequency": "CONTINUOUS_SCAN",
            "repository_filters": [{"filter": scanning_filter(prefix), "filter_type": "WILDCARD"}],
        }
    ]


# --------------------------------------------------------------------------------------------
# Replication (source registry)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Destination:
    registry_id: str
    region: str


def replication_destinations(config: StackConfig) -> tuple[Destination, ...]:
    """Where the source registry's primary region replicates to.

    Staging's other regions, so each cluster pulls from its own region, and the peer (prod)
    account in every region of this stack. ASSUMPTION: the prod stack has the same regions as
    staging; a prod region missing here would receive nothing (the DR runbook's backfill is the
    way to fill a region added later).
    """
    if not config.builds_images:
        return ()
    primary = config.ecr.primary_region
    own = [Destination(config.account_id, r) for r in config.region_names if r != primary]
    peer = [Destination(config.peer_account_id, r) for r in config.region_names]
    return tuple(own + peer)


def replication_rules(config: StackConfig) -> list[dict[str, Any]]:
    """All rules of the source registry's one replication configuration (none for a replica).

    One rule carries every destination: the services share one namespace, so adding a service
    changes nothing here.
    """
    destinations = replication_destinations(config)
    if not destinations:
        return []
    return [
        {
            "destinations": [{"region": d.region, "registry_id": d.registry_id} for d in destinations],
            "repository_filters": [
                {"filter": replication_filter(config.ecr.prefix), "filter_type": "PREFIX_MATCH"}
            ],
        }
    ]


def validate_replication(rules: Sequence[Mapping[str, Any]], source_account: str, source_region: str) -> None:
    """Refuse what PutReplicationConfiguration would refuse, with a message that says why.

    ECR allows at most 10 rules and 25 unique destinations across all rules; a registry cannot
    replicate to itself.
    """
    if len(rules) > MAX_REPLICATION_RULES:
        raise ReplicationLimitError(
            f"replication configuration has {len(rules)} rules; ECR allows at most "
            f"{MAX_REPLICATION_RULES} per registry"
        )
    unique: set[tuple[str, str]] = set()
    for i, rule in enumerate(rules):
        destinations = list(rule.get("destinations") or [])
        if not destinations:
            raise ReplicationLimitError(f"replication rule {i} has no destinations")
        seen: set[tuple[str, str]] = set()
        for d in destinations:
            key = (str(d["registry_id"]), str(d["region"]))
            if key == (source_account, source_region):
                raise ReplicationLimitError(
                    f"replication rule {i} replicates to its own registry {source_account} in "
                    f"{source_region}; a registry cannot be its own replication destination"
                )
            if key in seen:
                raise ReplicationLimitError(
                    f"replication rule {i} lists destination {key[0]} {key[1]} more than once"
                )
            seen.add(key)
        unique |= seen
        filters = list(rule.get("repository_filters") or [])
        if len(filters) > MAX_FILTERS_PER_RULE:
            raise ReplicationLimitError(
                f"replication rule {i} has {len(filters)} repository filters; ECR allows at most "
                f"{MAX_FILTERS_PER_RULE}"
            )
        for f in filters:
            value = str(f.get("filter", ""))
            if f.get("filter_type") != "PREFIX_MATCH":
                raise ReplicationLimitError(
                    f"replication rule {i} filter {value!r}: the only filter type ECR supports is PREFIX_MATCH"
                )
            if not 2 <= len(value) <= 256 or not _REPLICATION_FILTER_RE.match(value):
                raise ReplicationLimitError(
                    f"replication rule {i} filter {value!r} is not a valid repository name prefix "
                    "(2-256 characters of lower-case letters, digits, '.', '_', '-' and '/')"
                )
    if len(unique) > MAX_REPLICATION_DESTINATIONS:
        raise ReplicationLimitError(
            f"replication configuration has {len(unique)} unique destinations across its rules; "
            f"ECR allows at most {MAX_REPLICATION_DESTINATIONS}"
        )


# --------------------------------------------------------------------------------------------
# Replica registry
# --------------------------------------------------------------------------------------------


def repository_arn_pattern(account_id: str, region: str, prefix: str) -> str:
    return f"arn:aws:ecr:{region}:{account_id}:repository/{prefix}/*"


def registry_policy(
    *,
    source_account: str,
    account_id: str,
    region: str,
    prefix: str,
    allow_create_repository: bool,
) -> dict[str, Any]:
    """The replica registry's permissions policy: the source account may replicate, nothing else.

    No push, pull or delete action, and only repositories under ``<prefix>/`` of this account and
    region. ``ecr:CreateRepository`` is granted only when a repository creation template exists
    to give the created repository the platform's settings; without one, ECR would create it
    with defaults (mutable tags, AES256).
    """
    if source_account == account_id:
        raise ValueError(
            f"source account {source_account} is this registry's own account; a registry policy "
            "for replication names the other (source) account"
        )
    actions = [REPLICATE_ACTION]
    if allow_create_repository:
        actions.insert(0, CREATE_REPOSITORY_ACTION)
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "ReplicationFromSourceAccount",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{source_account}:root"},
                "Action": actions,
                "Resource": repository_arn_pattern(account_id, region, prefix),
            }
        ],
    }


def kms_key_policy(account_id: str, *, deny_key_deletion: bool) -> dict[str, Any]:
    """Key policy of a region's ECR key.

    The account-root statement is the default key policy: it lets IAM policies in this account
    (the deployer, ECR acting for the principal creating a repository, the template role) use
    the key, so ECR can create its grants:
    https://docs.aws.amazon.com/AmazonECR/latest/userguide/encryption-at-rest.html
    No other account needs the key: replication re-encrypts each image with the destination
    repository's own key, so prod's keys never see staging and vice versa.

    ``deny_key_deletion`` (prod) refuses scheduling deletion or disabling the key to everyone:
    either would make every image in the region unreadable. Removing the statement first is a
    deliberate, reviewed change of the key policy.
    """
    statements: list[dict[str, Any]] = [
        {
            "Sid": "EnableIamPolicies",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    if deny_key_deletion:
        statements.append(
            {
                "Sid": "DenyKeyDeletion",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": ["kms:ScheduleKeyDeletion", "kms:DisableKey"],
                "Resource": "*",
            }
        )
    return {"Version": POLICY_VERSION, "Statement": statements}


def template_role_trust_policy() -> dict[str, Any]:
    """ECR assumes the repository creation role of a template that uses a KMS key or tags:
    https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-creation-templates-create-iam.html
    """
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecr.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def template_role_policy(account_id: str, prefix: str, key_arns: Sequence[str]) -> dict[str, Any]:
    """What the template role may do: the documented custom policy, scoped to the platform's
    repositories and the regions' ECR keys instead of ``*``:
    https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-creation-templates-custom.html
    """
    if not key_arns:
        raise ValueError("template_role_policy needs the ARN of at least one KMS key")
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "CreatePlatformRepositories",
                "Effect": "Allow",
                "Action": ["ecr:CreateRepository", "ecr:ReplicateImage", "ecr:TagResource"],
                "Resource": f"arn:aws:ecr:*:{account_id}:repository/{prefix}/*",
            },
            {
                "Sid": "UseRegistryKeys",
                "Effect": "Allow",
                "Action": ["kms:CreateGrant", "kms:RetireGrant", "kms:DescribeKey"],
                "Resource": sorted(key_arns),
            },
        ],
    }


# --------------------------------------------------------------------------------------------
# Backfill: replication copies only what is pushed after it is configured
# --------------------------------------------------------------------------------------------

# Tags an earlier version of the backfill script left behind (it re-pushed under this prefix);
# the crane copy skips them.
BACKFILL_TAG_PREFIX = "backfill-"


def _source_of(config: StackConfig) -> tuple[str, str]:
    """(account, region) the images originate from: staging's primary region.

    For a replica stack this assumes the source stack's ecr.primaryRegion equals this stack's
    (both default to the hub region).
    """
    account = config.account_id if config.builds_images else config.peer_account_id
    return account, config.ecr.primary_region


# The newest tagged images per repository the crane path copies back: what a rebuilt region's
# Applications run is among the newest few (Image Updater moves to the newest tag); an older tag
# an Application still references is passed to the script as an argument.
BACKFILL_NEWEST = 10
# The AWS CLI pages DescribeImages (botocore's ecr paginator) and applies ``--query`` once to the
# whole result with ``--output json``, but once per page with ``--output text`` (aws/aws-cli
# awscli/formatter.py, 1.45.11 and 2.27.0: FullyBufferedFormatter builds the full result, then
# searches it; TextFormatter searches each page; "Filtering output",
# https://docs.aws.amazon.com/cli/latest/userguide/cli-usage-filter.html): so the newest are
# sorted as JSON and turned into "digest tag" lines by jq (an image without a tag: tag empty).
NEWEST_AS_LINES = """'.[] | "\\(.[0]) \\(.[1] // "")"'"""


def _crane_copy_script(config: StackConfig, region: str, copy_from: str, why: str) -> list[str]:
    """Copy the newest :data:`BACKFILL_NEWEST` tagged images (and the tags given as arguments)
    that ``region`` lacks, by digest, from ``copy_from`` of the same account.

    Idempotent and resumable: an image whose tag ``region`` already holds on the same digest
    (ECR DescribeImages by ``imageTag``, its ``imageDigest`` compared) is skipped, so a re-run after an interruption copies only
    what is still missing; nothing in the source is deleted or re-tagged.
    """
    q = shlex.quote
    src_host = naming.registry_host(config.account_id, copy_from)
    dst_host = naming.registry_host(config.account_id, region)
    newest = f"'reverse(sort_by(imageDetails,&imagePushedAt))[:{BACKFILL_NEWEST}].[imageDigest,imageTags[0]]'"
    lines = [
        f"# {why}",
        f"# Same account ({config.account_id}): copy from {copy_from} with crane, which copies the manifest",
        "# and the layers it lacks (https://github.com/google/go-containerregistry/blob/main/cmd/crane/doc/crane_copy.md).",
        f"# Only the newest {BACKFILL_NEWEST} tagged images per repository, plus the tags given as arguments",
        "# (the tags the region's Applications reference); an image the region already holds, tag and digest, is",
        "# skipped, so the script can be run again after an interruption. Nothing in the source changes.",
        f"aws ecr get-login-password --region {copy_from} "
        f"| crane auth login --username AWS --password-stdin {src_host}",
        f"aws ecr get-login-password --region {region} "
        f"| crane auth login --username AWS --password-stdin {dst_host}",
        "copy_missing() {  # repository digest tag",
        # Skipped only when the region's tag names this digest: the digest alone may be there
        # untagged (or under another tag), and the Applications pull the tag.
        f'  if [ "$(aws ecr describe-images --region {region} --repository-name "$1" --image-ids imageTag="$3" '
        '--query \'imageDetails[0].imageDigest\' --output text 2>/dev/null)" = "$2" ]; then',
        '    echo "present: $1@$2 ($3)"',
        "  else",
        f'    crane copy "{src_host}/$1@$2" "{dst_host}/$1:$3"',
        "  fi",
        "}",
    ]
    for repo in repository_names(config):
        r = q(repo)
        lines += [
            f"aws ecr describe-images --region {copy_from} --repository-name {r} --filter tagStatus=TAGGED "
            f"--query {newest} --output json |",
            f"  jq -r {NEWEST_AS_LINES} |",
            "  while read -r digest tag; do",
            f"    case \"$tag\" in {BACKFILL_TAG_PREFIX}*|None|'') continue ;; esac",
            f'    copy_missing {r} "$digest" "$tag"',
            "  done",
            'for tag in "$@"; do',
            f"  digest=$(aws ecr describe-images --region {copy_from} --repository-name {r} "
            '--image-ids imageTag="$tag" --query "imageDetails[0].imageDigest" --output text 2>/dev/null || true)',
            f'  if [ -n "$digest" ] && [ "$digest" != None ]; then copy_missing {r} "$digest" "$tag"; fi',
            "done",
        ]
    return lines


def restored_by_copy(config: StackConfig, region: str) -> bool:
    """Whether :func:`backfill_commands` restores ``region`` with crane copies (the source
    registry's own primary region, which is no replication destination) rather than with ECR's
    replication backfill (every other region)."""
    return config.builds_images and region == _source_of(config)[1]


def backfill_commands(config: StackConfig, region: str) -> tuple[str, ...]:
    """A bash script, one line per item, that gives ``region`` of this stack's registry the images
    it is missing: those pushed before replication reached it, or all of them after a rebuild.

    ECR replicates only images pushed after the replication configuration exists, once per push
    (https://docs.aws.amazon.com/AmazonECR/latest/userguide/replication.html), and a replication
    backfill replicates the source registry's existing images that match the replication
    configuration to one configured destination (ECR API StartReplicationBackfill, in botocore's
    ecr 2015-09-21 model; https://docs.aws.amazon.com/AmazonECR/latest/userguide/replication-backfill.html;
    one backfill per destination region at a time). So:

    * every destination of the source registry's replication (prod's regions, staging's other
      regions) is filled by ``aws ecr start-replication-backfill`` run in the source's primary
      region with the source account's credentials: nothing is pushed or re-tagged anywhere;
    * the source's primary region itself (rebuilt) is no destination: its images are copied back
      with ``crane copy`` from another region of the same account, and each copy is a push that
      replication sends on to every destination (those that have it are unchanged).

    The script needs the AWS CLI profile SOURCE_PROFILE (the source account, staging).
    """
    if region not in config.region_names:
        raise ValueError(f"{region} is not one of the stack's regions: {', '.join(config.region_names)}")
    source_account, source_region = _source_of(config)
    repos = repository_names(config)
    lines = [
        "#!/usr/bin/env bash",
        f"# Backfill the {config.environment} registry {config.account_id} in {region} ({', '.join(repos)}).",
        "set -euo pipefail",
        ': "${SOURCE_PROFILE:?set SOURCE_PROFILE to an AWS CLI profile of the source account '
        f'{source_account}}}"',
        'export AWS_PROFILE="$SOURCE_PROFILE"',
    ]
    if restored_by_copy(config, region):
        others = [r for r in config.region_names if r != source_region]
        if not others:
            raise ValueError(
                f"{region} is the only region of {config.stack}: there is no replica to restore "
                "the images from; rebuild them with CI"
            )
        why = (
            f"{region} is the source region itself: restore its images from the replica in "
            f"{others[0]}; each copy is a push that replication sends on to every destination."
        )
        return tuple(lines + _crane_copy_script(config, region, others[0], why))
    destination = f"region={region},registryId={config.account_id}"
    running = (
        f"\"backfills[?contains(['PREPARING','IN_PROGRESS'], status) && destination.region=='{region}' "
        f"&& destination.registryId=='{config.account_id}'].replicationBackfillId | [0]\""
    )
    lines += [
        f"# {region} of {config.account_id} is a destination of the replication configuration in "
        f"{source_account} {source_region}:",
        "# replicate the images it already holds there (ECR replication backfill: server-side, nothing is",
        "# pushed, deleted or re-tagged). Run again, the script follows the backfill already running",
        "# (ECR allows one per destination region at a time) instead of starting another.",
        f"id=$(aws ecr list-replication-backfills --registry-id {source_account} --region {source_region} "
        f"--query {running} --output text)",
        'if [ -z "$id" ] || [ "$id" = None ]; then',
        f"  id=$(aws ecr start-replication-backfill --registry-id {source_account} --region {source_region} "
        f"--destination {destination} --query replicationBackfillId --output text)",
        "fi",
        f'echo "Replication backfill $id running to {config.account_id} {region}. Follow it until its status is COMPLETE:"',
        f'echo "  aws ecr describe-replication-backfill-results --registry-id {source_account} '
        f"--region {source_region} --replication-backfill-id $id --query '[status,progress]'\"",
    ]
    return tuple(lines)

"""ECR rules: immutable tags, scanning, KMS encryption, lifecycle, retained prod repositories,
and a registry policy that admits only replication from one named account.

Repository creation templates are held to the repository rules too: in prod, replication creates
each repository from the template, so the template *is* the repository's configuration.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Any

from policies.engine import (
    Finding,
    ResourceView,
    Rule,
    StackView,
    as_list,
    is_unknown,
    parse_json,
    refers_to,
    resource_rule,
    stack_rule,
)

REPOSITORY = "aws:ecr/repository:Repository"
TEMPLATE = "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
REGISTRY_POLICY = "aws:ecr/registryPolicy:RegistryPolicy"
REGISTRY_SCANNING = "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration"

# What the destination registry must grant the source account for cross-account replication,
# and nothing else: https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry-permissions-create-replication.html
REPLICATION_ACTIONS: frozenset[str] = frozenset({"ecr:ReplicateImage", "ecr:CreateRepository"})
KMS_TYPES: frozenset[str] = frozenset({"KMS", "KMS_DSSE"})

_ACCOUNT_RE = re.compile(r"^(?:[0-9]{12}|arn:aws[a-z-]*:iam::([0-9]{12}):root)$")


def _repo_name(view: ResourceView) -> str:
    name = view.get("name")
    if view.type == TEMPLATE:
        prefix = view.get("prefix")
        return f"for prefix {prefix}" if isinstance(prefix, str) else view.name
    return name if isinstance(name, str) else view.name


def _what(view: ResourceView) -> str:
    return "Repository creation template" if view.type == TEMPLATE else "ECR repository"


# --- ecr-immutable-tags ------------------------------------------------------------------------


def _immutable(view: ResourceView) -> list[str]:
    if view.type not in (REPOSITORY, TEMPLATE):
        return []
    mutability = view.get("imageTagMutability")
    if is_unknown(mutability) or mutability == "IMMUTABLE":
        return []
    shown = "not set (ECR then allows MUTABLE tags)" if mutability is None else str(mutability)
    return [
        f"{_what(view)} {_repo_name(view)} has image tag mutability {shown}; set imageTagMutability "
        "to IMMUTABLE so a tag always names the image staging verified."
    ]


# --- ecr-kms-encryption ------------------------------------------------------------------------


def _kms(view: ResourceView) -> list[str]:
    if view.type not in (REPOSITORY, TEMPLATE):
        return []
    kind = view.get("encryptionConfigurations[0].encryptionType")
    if is_unknown(kind) or kind in KMS_TYPES:
        return []
    shown = "not set (ECR then uses AES256)" if kind is None else str(kind)
    return [
        f"{_what(view)} {_repo_name(view)} encryption is {shown}; set encryptionConfigurations "
        "[{encryptionType: KMS, kmsKey: <the region's ECR key>}] (it can only be set at creation)."
    ]


# --- ecr-image-scanning ------------------------------------------------------------------------


def _covers(rule: Mapping[str, Any], repository: str) -> bool:
    filters = rule.get("repositoryFilters")
    if not isinstance(filters, list):
        return False
    return any(
        isinstance(f, Mapping)
        and f.get("filterType", "WILDCARD") == "WILDCARD"
        and isinstance(f.get("filter"), str)
        and fnmatch.fnmatchcase(repository, f["filter"])
        for f in filters
    )


def _scanning(stack: StackView) -> list[Finding]:
    """Repository ``scanOnPush``, or the region's registry scanning configuration covering it.

    With enhanced scanning the registry-level rules take precedence over the repository setting:
    https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-scanning.html
    """
    configs = stack.of_type(REGISTRY_SCANNING)
    findings: list[Finding] = []
    for repo in stack.of_type(REPOSITORY):
        name = repo.get("name")
        on_push = repo.get("imageScanningConfiguration.scanOnPush")
        if is_unknown(name) or is_unknown(on_push):
            continue
        regional = [c for c in configs if c.region is None or repo.region is None or c.region == repo.region]
        if any(is_unknown(c.get("scanType")) or is_unknown(c.get("rules")) for c in regional):
            continue
        rules = [
            (c.get("scanType"), r)
            for c in regional
            for r in as_list(c.get("rules"))
            if isinstance(r, Mapping) and _covers(r, str(name))
        ]
        if any(c.get("scanType") == "ENHANCED" for c in regional):
            if not any(kind == "ENHANCED" for kind, _ in rules):
                findings.append(
                    Finding(
                        f"ECR repository {name} is not scanned: its region uses enhanced scanning, whose "
                        "registry-level rules take precedence over the repository's scanOnPush, and none "
                        f"matches it; add a rule whose repository filter matches {name}.",
                        repo.urn,
                    )
                )
        elif not (on_push is True or any(r.get("scanFrequency") == "SCAN_ON_PUSH" for _, r in rules)):
            findings.append(
                Finding(
                    f"ECR repository {name} is not scanned on push; set imageScanningConfiguration.scanOnPush "
                    "to true, or use enhanced scanning (platform:ecr.scanning: enhanced).",
                    repo.urn,
                )
            )
    return findings


# --- ecr-lifecycle-policy ----------------------------------------------------------------------


def _has_rules(document: Any) -> bool | None:
    parsed = parse_json(document)
    if is_unknown(parsed):
        return None
    return isinstance(parsed, Mapping) and bool(parsed.get("rules"))


def _lifecycle(stack: StackView) -> list[Finding]:
    policies = stack.of_type(LIFECYCLE)
    findings: list[Finding] = []
    for repo in stack.of_type(REPOSITORY):
        attached = [p for p in policies if refers_to(p, "repository", repo, "name")]
        if any(_has_rules(p.get("policy")) is not False for p in attached):
            continue
        findings.append(
            Finding(
                f"ECR repository {_repo_name(repo)} has no lifecycle policy with rules; add an "
                "aws.ecr.LifecyclePolicy that expires untagged images and caps tagged ones "
                "(platform:ecr.untaggedExpiryDays, keepTaggedCount).",
                repo.urn,
            )
        )
    for template in stack.of_type(TEMPLATE):
        if _has_rules(template.get("lifecyclePolicy")) is False:
            findings.append(
                Finding(
                    f"Repository creation template {_repo_name(template)} sets no lifecycle policy, so the "
                    "repositories it creates keep every image; set lifecyclePolicy to the same rules as "
                    "the repositories'.",
                    template.urn,
                )
            )
    return findings


# --- ecr-prod-repositories-retained ------------------------------------------------------------


def _retained(stack: StackView) -> list[Finding]:
    findings = []
    for repo in stack.of_type(REPOSITORY):
        if repo.protect or repo.retain_on_delete:
            continue
        unseen = (
            " (the policy engine cannot see retainOnDelete, only protect)"
            if repo.retain_on_delete is None
            else ""
        )
        findings.append(
            Finding(
                f"Prod ECR repository {_repo_name(repo)} is neither protected nor retained on delete{unseen}; "
                "declare it with protect=True and retain_on_delete=True so no update can delete the "
                "images prod runs.",
                repo.urn,
            )
        )
    return findings


# --- ecr-registry-policy-replication-only ------------------------------------------------------


def principal_accounts(principal: Any) -> tuple[list[str], list[str]]:
    """(named accounts, anything else) of a statement's Principal."""
    accounts: list[str] = []
    others: list[str] = []
    if principal == "*" or not isinstance(principal, Mapping):
        return accounts, [str(principal)]
    for kind, values in principal.items():
        for value in as_list(values):
            match = _ACCOUNT_RE.match(str(value)) if kind == "AWS" else None
            if match:
                accounts.append(match.group(1) or str(value))
            else:
                others.append(f"{kind}:{value}")
    return accounts, others


def _statements(document: Any) -> list[Mapping[str, Any]]:
    if not isinstance(document, Mapping):
        return []
    return [s for s in as_list(document.get("Statement")) if isinstance(s, Mapping)]


def _registry_policy(view: ResourceView) -> list[str]:
    if view.type != REGISTRY_POLICY:
        return []
    document = parse_json(view.get("policy"))
    if is_unknown(document):
        return []
    if not isinstance(document, Mapping):
        return [f"ECR registry policy {view.name} is not a JSON policy document; write it with json.dumps."]
    problems = []
    for i, statement in enumerate(_statements(document)):
        if statement.get("Effect") != "Allow":
            continue
        sid = statement.get("Sid") or f"statement {i}"
        if "NotAction" in statement or "NotPrincipal" in statement:
            problems.append(f"{sid} uses NotAction/NotPrincipal")
        actions = [str(a) for a in as_list(statement.get("Action"))]
        extra = sorted(a for a in actions if a not in REPLICATION_ACTIONS)
        if extra:
            problems.append(f"{sid} allows {', '.join(extra)}")
        _, others = principal_accounts(statement.get("Principal"))
        if others:
            problems.append(f"{sid} names the principal {', '.join(others)}")
    if not problems:
        return []
    return [
        f"ECR registry policy {view.name} grants more than replication from a named account "
        f"({'; '.join(problems)}); allow only ecr:ReplicateImage and ecr:CreateRepository, to "
        "arn:aws:iam::<peer account>:root (platform:peerAccountId)."
    ]


# --- ecr-registry-policy-peer-account ----------------------------------------------------------


def _allowed_accounts(view: ResourceView) -> set[str] | None:
    document = parse_json(view.get("policy"))
    if is_unknown(document):
        return None
    accounts: set[str] = set()
    for statement in _statements(document):
        if statement.get("Effect") == "Allow":
            accounts.update(principal_accounts(statement.get("Principal"))[0])
    return accounts


def _peer_account(stack: StackView) -> list[Finding]:
    findings: list[Finding] = []
    named: dict[str, set[str]] = {}
    for policy in stack.of_type(REGISTRY_POLICY):
        accounts = _allowed_accounts(policy)
        if accounts is None:
            continue
        named[policy.urn] = accounts
        own = policy.account_id
        if len(accounts) != 1:
            shown = ", ".join(sorted(accounts)) or "no account"
            findings.append(
                Finding(
                    f"ECR registry policy {policy.name} names {shown}; it must name exactly one account, the "
                    "peer that replicates into this registry (platform:peerAccountId).",
                    policy.urn,
                )
            )
            continue
        (account,) = accounts
        if own and account == own:
            findings.append(
                Finding(
                    f"ECR registry policy {policy.name} names this stack's own account {account}; name the "
                    "peer account that replicates into it (platform:peerAccountId).",
                    policy.urn,
                )
            )
        elif stack.peer_account_id and account != stack.peer_account_id:
            findings.append(
                Finding(
                    f"ECR registry policy {policy.name} names account {account}, not the peer account "
                    f"{stack.peer_account_id}; only the peer may replicate into this registry.",
                    policy.urn,
                )
            )
    distinct = {a for accounts in named.values() if len(accounts) == 1 for a in accounts}
    if len(distinct) > 1:
        findings.append(
            Finding(
                f"The stack's ECR registry policies name different accounts ({', '.join(sorted(distinct))}); "
                "every region must admit the same peer account (platform:peerAccountId)."
            )
        )
    return findings


_DOC_REPLICATION = (
    "https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry-permissions-create-replication.html"
)
_REPO_TYPES = (REPOSITORY, TEMPLATE)

RULES: tuple[Rule, ...] = (
    resource_rule(
        "ecr-immutable-tags",
        "ecr",
        "Every ECR repository and creation template has immutable image tags.",
        "mandatory",
        _immutable,
        resource_types=_REPO_TYPES,
        url="https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-tag-mutability.html",
    ),
    stack_rule(
        "ecr-image-scanning",
        "ecr",
        "Every ECR repository is scanned on push or by the region's enhanced scanning.",
        "mandatory",
        _scanning,
        resource_types=(REPOSITORY, REGISTRY_SCANNING),
        url="https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-scanning.html",
    ),
    resource_rule(
        "ecr-kms-encryption",
        "ecr",
        "Every ECR repository and creation template encrypts images with KMS.",
        "mandatory",
        _kms,
        resource_types=_REPO_TYPES,
        url="https://docs.aws.amazon.com/AmazonECR/latest/userguide/encryption-at-rest.html",
    ),
    stack_rule(
        "ecr-lifecycle-policy",
        "ecr",
        "Every ECR repository and creation template has a lifecycle policy with rules.",
        "mandatory",
        _lifecycle,
        resource_types=(REPOSITORY, LIFECYCLE, TEMPLATE),
        url="https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html",
    ),
    stack_rule(
        "ecr-prod-repositories-retained",
        "ecr",
        "Every prod ECR repository is protected or retained on delete.",
        "mandatory",
        _retained,
        applies_to="prod",
        resource_types=(REPOSITORY,),
        url="https://www.pulumi.com/docs/iac/concepts/options/protect/",
    ),
    resource_rule(
        "ecr-registry-policy-replication-only",
        "ecr",
        "A registry policy allows only ecr:ReplicateImage and ecr:CreateRepository, to named accounts.",
        "mandatory",
        _registry_policy,
        resource_types=(REGISTRY_POLICY,),
        url=_DOC_REPLICATION,
    ),
    stack_rule(
        "ecr-registry-policy-peer-account",
        "ecr",
        "The registry policies of a stack name exactly one account: the peer, never the stack's own.",
        "mandatory",
        _peer_account,
        resource_types=(REGISTRY_POLICY,),
        url=_DOC_REPLICATION,
    ),
)

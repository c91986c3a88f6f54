"""ECR rules: repositories and templates, scanning, lifecycle, retention and the registry policy."""

from __future__ import annotations

import json
from typing import Any

import pytest

from policies import ecr
from policies.engine import Finding
from tests.policies.support import check, check_stack, doc, stack, tags, view

KEY = "arn:aws:kms:us-west-2:444455556666:key/0b3c0f3e-0000-4000-8000-000000000002"
LIFECYCLE_DOC = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 14,
                },
                "action": {"type": "expire"},
            }
        ]
    }
)


def repo_props(**overrides: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "name": "shop/web",
        "imageTagMutability": "IMMUTABLE",
        "imageScanningConfiguration": {"scanOnPush": True},
        "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": KEY}],
        "tags": tags(),
    }
    props.update(overrides)
    return {k: v for k, v in props.items() if v is not None}


def repo(resource: str = "web-us-west-2", **kw: Any) -> Any:
    overrides = {
        k: v for k, v in kw.items() if k not in ("protect", "retain_on_delete", "region", "environment")
    }
    options = {k: v for k, v in kw.items() if k in ("protect", "retain_on_delete", "region", "environment")}
    return view(ecr.REPOSITORY, resource, repo_props(**overrides), **options)


def template(**overrides: Any) -> Any:
    props: dict[str, Any] = {
        "prefix": "shop",
        "appliedFors": ["REPLICATION"],
        "imageTagMutability": "IMMUTABLE",
        "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": KEY}],
        "lifecyclePolicy": LIFECYCLE_DOC,
    }
    props.update(overrides)
    return view(ecr.TEMPLATE, "replication-us-west-2", {k: v for k, v in props.items() if v is not None})


def lifecycle(repository: str = "shop/web", policy: str = LIFECYCLE_DOC, deps: tuple[str, ...] = ()) -> Any:
    return view(
        ecr.LIFECYCLE,
        "web-us-west-2",
        {"repository": repository, "policy": policy},
        deps={"repository": deps} if deps else None,
    )


# --- immutable tags ----------------------------------------------------------------------------


def test_immutable_repository_and_template_pass() -> None:
    assert check("ecr-immutable-tags", repo()) == []
    assert check("ecr-immutable-tags", template()) == []


def test_mutable_repository_is_refused() -> None:
    assert check("ecr-immutable-tags", repo(imageTagMutability="MUTABLE")) == [
        "ECR repository shop/web has image tag mutability MUTABLE; set imageTagMutability to IMMUTABLE so a "
        "tag always names the image staging verified."
    ]


def test_missing_mutability_is_refused_on_repository_and_template() -> None:
    assert check("ecr-immutable-tags", repo(imageTagMutability=None)) == [
        "ECR repository shop/web has image tag mutability not set (ECR then allows MUTABLE tags); set "
        "imageTagMutability to IMMUTABLE so a tag always names the image staging verified."
    ]
    assert check("ecr-immutable-tags", template(imageTagMutability=None)) == [
        "Repository creation template for prefix shop has image tag mutability not set (ECR then allows "
        "MUTABLE tags); set imageTagMutability to IMMUTABLE so a tag always names the image staging verified."
    ]


# --- KMS encryption ----------------------------------------------------------------------------


def test_kms_encrypted_repository_and_template_pass() -> None:
    assert check("ecr-kms-encryption", repo()) == []
    assert check("ecr-kms-encryption", template()) == []


def test_aes_encrypted_repository_is_refused() -> None:
    found = check("ecr-kms-encryption", repo(encryptionConfigurations=[{"encryptionType": "AES256"}]))
    assert found == [
        "ECR repository shop/web encryption is AES256; set encryptionConfigurations [{encryptionType: KMS, "
        "kmsKey: <the region's ECR key>}] (it can only be set at creation)."
    ]


def test_missing_encryption_is_refused() -> None:
    assert check("ecr-kms-encryption", template(encryptionConfigurations=None)) == [
        "Repository creation template for prefix shop encryption is not set (ECR then uses AES256); set "
        "encryptionConfigurations [{encryptionType: KMS, kmsKey: <the region's ECR key>}] (it can only be set "
        "at creation)."
    ]


# --- scanning ----------------------------------------------------------------------------------


def scanning(
    scan_type: str, repo_filter: str = "shop/*", frequency: str = "CONTINUOUS_SCAN", region: str = "us-west-2"
) -> Any:
    rules = [
        {"scanFrequency": frequency, "repositoryFilters": [{"filter": repo_filter, "filterType": "WILDCARD"}]}
    ]
    return view(
        ecr.REGISTRY_SCANNING, f"scanning-{region}", {"scanType": scan_type, "rules": rules}, region=region
    )


def test_scan_on_push_passes_without_registry_configuration() -> None:
    assert check_stack("ecr-image-scanning", stack(repo())) == []


def test_repository_without_scan_on_push_is_refused() -> None:
    r = repo(imageScanningConfiguration={"scanOnPush": False})
    assert check_stack("ecr-image-scanning", stack(r)) == [
        Finding(
            "ECR repository shop/web is not scanned on push; set imageScanningConfiguration.scanOnPush to true, "
            "or use enhanced scanning (platform:ecr.scanning: enhanced).",
            r.urn,
        )
    ]


def test_repository_with_scanning_configuration_missing_is_refused() -> None:
    r = repo(imageScanningConfiguration=None)
    assert [f.urn for f in check_stack("ecr-image-scanning", stack(r))] == [r.urn]


def test_enhanced_scanning_of_the_region_covers_a_repository_without_scan_on_push() -> None:
    r = repo(imageScanningConfiguration=None)
    assert check_stack("ecr-image-scanning", stack(r, scanning("ENHANCED"))) == []


def test_enhanced_scanning_that_does_not_match_the_repository_is_refused() -> None:
    r = repo()
    assert check_stack("ecr-image-scanning", stack(r, scanning("ENHANCED", repo_filter="other/*"))) == [
        Finding(
            "ECR repository shop/web is not scanned: its region uses enhanced scanning, whose registry-level "
            "rules take precedence over the repository's scanOnPush, and none matches it; add a rule whose "
            "repository filter matches shop/web.",
            r.urn,
        )
    ]


def test_scanning_configuration_of_another_region_does_not_count() -> None:
    r = repo(imageScanningConfiguration=None, region="eu-west-1")
    assert [f.urn for f in check_stack("ecr-image-scanning", stack(r, scanning("ENHANCED")))] == [r.urn]


def test_basic_registry_scan_on_push_rule_covers_the_repository() -> None:
    r = repo(imageScanningConfiguration=None)
    assert check_stack("ecr-image-scanning", stack(r, scanning("BASIC", frequency="SCAN_ON_PUSH"))) == []


# --- lifecycle ---------------------------------------------------------------------------------

NO_LIFECYCLE = (
    "ECR repository shop/web has no lifecycle policy with rules; add an aws.ecr.LifecyclePolicy that expires "
    "untagged images and caps tagged ones (platform:ecr.untaggedExpiryDays, keepTaggedCount)."
)


def test_repository_with_lifecycle_policy_passes() -> None:
    assert check_stack("ecr-lifecycle-policy", stack(repo(), lifecycle())) == []


def test_lifecycle_policy_still_unknown_by_name_is_matched_by_dependency() -> None:
    from policies.engine import UNKNOWN

    r = repo()
    assert check_stack("ecr-lifecycle-policy", stack(r, lifecycle(repository=UNKNOWN, deps=(r.urn,)))) == []


def test_repository_without_lifecycle_policy_is_refused() -> None:
    r = repo()
    other = lifecycle(repository="shop/api")
    assert check_stack("ecr-lifecycle-policy", stack(r, other)) == [Finding(NO_LIFECYCLE, r.urn)]


def test_lifecycle_policy_without_rules_is_refused() -> None:
    r = repo()
    empty = lifecycle(policy=json.dumps({"rules": []}))
    assert check_stack("ecr-lifecycle-policy", stack(r, empty)) == [Finding(NO_LIFECYCLE, r.urn)]


def test_template_without_lifecycle_policy_is_refused() -> None:
    t = template(lifecyclePolicy=None)
    assert check_stack("ecr-lifecycle-policy", stack(t)) == [
        Finding(
            "Repository creation template for prefix shop sets no lifecycle policy, so the repositories it creates "
            "keep every image; set lifecyclePolicy to the same rules as the repositories'.",
            t.urn,
        )
    ]
    assert check_stack("ecr-lifecycle-policy", stack(template())) == []


# --- prod repositories retained ----------------------------------------------------------------


@pytest.mark.parametrize(("protect", "retain"), [(True, True), (True, False), (False, True), (True, None)])
def test_protected_or_retained_prod_repository_passes(protect: bool, retain: bool | None) -> None:
    r = repo(protect=protect, retain_on_delete=retain)
    assert check_stack("ecr-prod-repositories-retained", stack(r)) == []


def test_unprotected_prod_repositories_are_each_refused() -> None:
    a = repo("web-us-west-2", protect=False, retain_on_delete=False)
    b = repo("web-eu-west-1", protect=True, retain_on_delete=True, region="eu-west-1")
    c = repo("api-us-west-2", name="shop/api", protect=False, retain_on_delete=None)
    assert check_stack("ecr-prod-repositories-retained", stack(a, b, c)) == [
        Finding(
            "Prod ECR repository shop/web is neither protected nor retained on delete; declare it with "
            "protect=True and retain_on_delete=True so no update can delete the images prod runs.",
            a.urn,
        ),
        Finding(
            "Prod ECR repository shop/api is neither protected nor retained on delete (the policy engine cannot "
            "see retainOnDelete, only protect); declare it with protect=True and retain_on_delete=True so no "
            "update can delete the images prod runs.",
            c.urn,
        ),
    ]


def test_staging_repositories_need_no_protection() -> None:
    r = repo(protect=False, retain_on_delete=False, environment="staging")
    assert check_stack("ecr-prod-repositories-retained", stack(r, environment="staging")) == []


# --- registry policy ---------------------------------------------------------------------------

STAGING = "111122223333"
PROD = "444455556666"


def replication_statement(principal: Any = None, actions: Any = None) -> dict[str, Any]:
    return {
        "Sid": "ReplicationFromSourceAccount",
        "Effect": "Allow",
        "Principal": principal if principal is not None else {"AWS": f"arn:aws:iam::{STAGING}:root"},
        "Action": actions if actions is not None else ["ecr:CreateRepository", "ecr:ReplicateImage"],
        "Resource": f"arn:aws:ecr:us-west-2:{PROD}:repository/shop/*",
    }


def registry_policy(
    *statements: dict[str, Any], name: str = "replication-us-west-2", region: str = "us-west-2"
) -> Any:
    return view(ecr.REGISTRY_POLICY, name, {"policy": doc(*statements)}, region=region)


def test_replication_only_policy_passes() -> None:
    assert check("ecr-registry-policy-replication-only", registry_policy(replication_statement())) == []
    bare_account = replication_statement(principal={"AWS": STAGING})
    assert check("ecr-registry-policy-replication-only", registry_policy(bare_account)) == []


def test_registry_policy_with_wildcard_principal_and_extra_actions_is_refused() -> None:
    wide = replication_statement(principal="*", actions=["ecr:ReplicateImage", "ecr:*"])
    assert check("ecr-registry-policy-replication-only", registry_policy(wide)) == [
        "ECR registry policy replication-us-west-2 grants more than replication from a named account "
        "(ReplicationFromSourceAccount allows ecr:*; ReplicationFromSourceAccount names the principal *); allow "
        "only ecr:ReplicateImage and ecr:CreateRepository, to arn:aws:iam::<peer account>:root "
        "(platform:peerAccountId)."
    ]


def test_registry_policy_naming_a_role_or_service_is_refused() -> None:
    role = replication_statement(principal={"AWS": f"arn:aws:iam::{STAGING}:role/anything"})
    found = check("ecr-registry-policy-replication-only", registry_policy(role))
    assert len(found) == 1
    assert f"names the principal AWS:arn:aws:iam::{STAGING}:role/anything" in found[0]


def test_registry_policy_missing_a_document_is_refused() -> None:
    missing = view(ecr.REGISTRY_POLICY, "replication-us-west-2", {})
    assert check("ecr-registry-policy-replication-only", missing) == [
        "ECR registry policy replication-us-west-2 is not a JSON policy document; write it with json.dumps."
    ]


def test_peer_account_policies_pass_with_and_without_a_known_peer() -> None:
    a = registry_policy(replication_statement())
    b = registry_policy(replication_statement(), name="replication-eu-west-1", region="eu-west-1")
    assert check_stack("ecr-registry-policy-peer-account", stack(a, b)) == []
    assert check_stack("ecr-registry-policy-peer-account", stack(a, b, peer=STAGING)) == []


def test_registry_policy_naming_another_than_the_peer_is_refused() -> None:
    a = registry_policy(replication_statement(principal={"AWS": "arn:aws:iam::999999999999:root"}))
    assert check_stack("ecr-registry-policy-peer-account", stack(a, peer=STAGING)) == [
        Finding(
            "ECR registry policy replication-us-west-2 names account 999999999999, not the peer account "
            f"{STAGING}; only the peer may replicate into this registry.",
            a.urn,
        )
    ]


def test_registry_policy_naming_its_own_account_is_refused() -> None:
    own = registry_policy(replication_statement(principal={"AWS": f"arn:aws:iam::{PROD}:root"}))
    assert check_stack("ecr-registry-policy-peer-account", stack(own)) == [
        Finding(
            f"ECR registry policy replication-us-west-2 names this stack's own account {PROD}; name the peer "
            "account that replicates into it (platform:peerAccountId).",
            own.urn,
        )
    ]


def test_registry_policies_naming_two_accounts_are_refused() -> None:
    both = registry_policy(
        replication_statement(
            principal={"AWS": [f"arn:aws:iam::{STAGING}:root", "arn:aws:iam::999999999999:root"]}
        )
    )
    assert check_stack("ecr-registry-policy-peer-account", stack(both)) == [
        Finding(
            f"ECR registry policy replication-us-west-2 names {STAGING}, 999999999999; it must name exactly one "
            "account, the peer that replicates into this registry (platform:peerAccountId).",
            both.urn,
        )
    ]
    a = registry_policy(replication_statement())
    b = registry_policy(
        replication_statement(principal={"AWS": "arn:aws:iam::999999999999:root"}),
        name="replication-eu-west-1",
        region="eu-west-1",
    )
    assert check_stack("ecr-registry-policy-peer-account", stack(a, b)) == [
        Finding(
            f"The stack's ECR registry policies name different accounts ({STAGING}, 999999999999); every region "
            "must admit the same peer account (platform:peerAccountId)."
        )
    ]


def test_registry_policy_with_a_wildcard_principal_names_no_account() -> None:
    star = registry_policy(replication_statement(principal="*"))
    assert check_stack("ecr-registry-policy-peer-account", stack(star)) == [
        Finding(
            "ECR registry policy replication-us-west-2 names no account; it must name exactly one account, the "
            "peer that replicates into this registry (platform:peerAccountId).",
            star.urn,
        )
    ]

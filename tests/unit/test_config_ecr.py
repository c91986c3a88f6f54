"""The registry's config keys (ecr.*, peerAccountId, registryRole): values and exact messages.

The messages are asserted on synthetic stack files (``tests/fixtures/stacks``); the project's own
stack files, which users change, are checked for invariants only.
"""

from __future__ import annotations

from typing import Any

import pytest

from infra import config
from tests.conftest import config_error as message
from tests.conftest import fixture_config_map
from tests.conftest import load_map as load


def with_ecr(stack: str, **values: Any) -> dict[str, Any]:
    raw = fixture_config_map(stack)
    raw["platform:ecr"] = {**raw["platform:ecr"], **values}
    return raw


def test_a_stack_cannot_replicate_to_its_own_account() -> None:
    raw = fixture_config_map("staging")
    raw["platform:peerAccountId"] = raw["platform:accountId"]
    assert message(raw) == (
        'platform:peerAccountId: "111122223333" is not allowed; must differ from platform:accountId: '
        "staging and prod live in separate accounts, and an account cannot be its own replication target"
    )


def test_the_example_stacks_are_a_replication_pair() -> None:
    staging, prod = config.load_stack_file("staging"), config.load_stack_file("prod")
    assert (staging.registry_role, prod.registry_role) == ("source", "replica")
    assert staging.peer_account_id == prod.account_id and prod.peer_account_id == staging.account_id
    assert staging.ecr.prefix == prod.ecr.prefix
    # The replica runs no region the source does not replicate into (infra/stackset.py refuses it;
    # a region only the source runs is a warning there).
    assert set(prod.region_names) <= set(staging.region_names)


def test_ecr_defaults() -> None:
    raw = fixture_config_map("staging")
    raw["platform:ecr"] = {}
    ecr = load(raw).ecr
    assert ecr.prefix == raw["platform:application"]["name"]
    assert (ecr.untagged_expiry_days, ecr.keep_tagged_count, ecr.scanning) == (14, 100, "basic")
    assert ecr.primary_region == raw["platform:hubRegion"]


def test_registry_role_defaults_follow_the_environment() -> None:
    raw = fixture_config_map("prod")
    del raw["platform:registryRole"]
    assert load(raw, "prod").registry_role == "replica"
    raw = fixture_config_map("staging")
    del raw["platform:registryRole"]
    assert load(raw).registry_role == "source"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"prefix": "Shop"},
            'platform:ecr.prefix: "Shop" is not allowed; expected a lower-case name such as shop',
        ),
        (
            {"prefix": "shop/"},
            'platform:ecr.prefix: "shop/" is not allowed; expected a lower-case name such as shop',
        ),
        (
            {"untaggedExpiryDays": 0},
            "platform:ecr.untaggedExpiryDays: 0 is not allowed; expected a whole number from 1 to 365",
        ),
        (
            {"untaggedExpiryDays": 366},
            "platform:ecr.untaggedExpiryDays: 366 is not allowed; expected a whole number from 1 to 365",
        ),
        (
            {"keepTaggedCount": 9},
            "platform:ecr.keepTaggedCount: 9 is not allowed; expected a whole number from 10 to 10000",
        ),
        (
            {"keepTaggedCount": True},
            "platform:ecr.keepTaggedCount: true is not allowed; expected a whole number from 10 to 10000",
        ),
        (
            {"scanning": "advanced"},
            'platform:ecr.scanning: "advanced" is not allowed; expected one of: basic, enhanced',
        ),
        (
            {"primaryRegion": "eu-central-1"},
            'platform:ecr.primaryRegion: "eu-central-1" is not allowed; expected one of the stack\'s '
            "regions: us-west-2, us-east-1, eu-west-1",
        ),
        (
            {"replication": "all"},
            "platform:ecr.replication: \"all\" is not allowed; unknown key 'replication'; allowed keys: "
            "prefix, untaggedExpiryDays, keepTaggedCount, scanning, primaryRegion",
        ),
    ],
    ids=lambda v: str(v)[:40],
)
def test_ecr_key_messages(values: dict[str, Any], expected: str) -> None:
    assert message(with_ecr("staging", **values)) == expected


def test_registry_role_message() -> None:
    raw = fixture_config_map("prod")
    raw["platform:registryRole"] = "mirror"
    assert message(raw, "prod") == (
        'platform:registryRole: "mirror" is not allowed; expected one of: source, replica'
    )


def test_a_replica_registry_has_no_push_branches() -> None:
    raw = fixture_config_map("prod")
    raw["platform:github"]["deployBranches"] = ["deploy/prod"]
    assert message(raw, "prod") == (
        'platform:github.deployBranches: ["deploy/prod"] is not allowed; a replica registry (prod) '
        "receives images only by replication; leave deployBranches empty"
    )

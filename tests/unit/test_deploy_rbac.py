"""The deploy roles (infra/manifests/rbac.py) against what the command really calls.

The fake hubs enforce the roles (a verb outside the role is answered 403, as RBAC would), so a
successful run proves the roles suffice; the recorded verbs show whether they are broader than
needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import deploy_kube, naming
from infra.deploy_model import ExitCode
from infra.manifests import rbac
from tests.unit.test_deploy_fakehub import OTHER_TAG, Harness, Script


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.close()


def full_run(h: Harness) -> None:
    h.seed()
    result = h.run()
    assert result.code == ExitCode.OK, result.output


def test_the_deployer_role_is_exactly_what_a_full_run_uses_on_the_prod_hub(h: Harness) -> None:
    full_run(h)
    assert h.prod.used_verbs() == set(rbac.DEPLOYER_VERBS)


def test_the_staging_hub_is_only_read(h: Harness) -> None:
    full_run(h)
    assert h.staging.used_verbs() <= set(rbac.VERIFIER_VERBS)
    assert "patch" not in rbac.VERIFIER_VERBS


def test_every_verifier_verb_is_used(h: Harness) -> None:
    full_run(h)
    assert set(rbac.VERIFIER_VERBS) <= h.staging.used_verbs()


@pytest.mark.parametrize(
    "scenario", ["dry-run", "break-glass", "degraded", "timeout", "transient-error", "conflict"]
)
def test_no_scenario_needs_more_than_the_roles(h: Harness, scenario: str) -> None:
    if scenario == "break-glass":
        h.seed(staging_tag=OTHER_TAG)
        flags: tuple[str, ...] = ("--allow-unverified", "--yes")
    else:
        h.seed()
        flags = ("--dry-run",) if scenario == "dry-run" else ("--timeout", "30")
    first = h.prod.app_name(h.order[0])
    if scenario == "degraded":
        h.prod.scripts[first] = Script(outcome="degraded")
    if scenario == "timeout":
        h.prod.scripts[first] = Script(outcome="stuck")
    if scenario == "transient-error":
        h.prod.fail("get", first, 500)
    if scenario == "conflict":
        h.prod.before_patch[first] = lambda app: app["metadata"].setdefault("annotations", {})

    h.run(*flags)

    assert h.prod.used_verbs() <= set(rbac.DEPLOYER_VERBS)
    assert h.staging.used_verbs() <= set(rbac.VERIFIER_VERBS)
    assert [c for c in h.prod.calls + h.staging.calls if c.status == 403] == []


def test_the_roles_cover_the_resource_the_command_calls() -> None:
    for name, verbs in ((rbac.DEPLOYER_ROLE, rbac.DEPLOYER_VERBS), (rbac.VERIFIER_ROLE, rbac.VERIFIER_VERBS)):
        role = rbac.role(name, verbs)
        assert role["metadata"]["namespace"] == naming.ARGOCD_NAMESPACE
        assert role["rules"] == [
            {"apiGroups": [deploy_kube.GROUP], "resources": [deploy_kube.PLURAL], "verbs": list(verbs)}
        ]

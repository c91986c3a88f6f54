"""Each documented walk-through, performed on a copy of the project, then checked there.

The copy holds the files git tracks (plus untracked, not ignored ones, so a change under review is
included), with ``../shared`` linked beside it. The steps are ``tests.walkthroughs.steps``, the
same list docs/walkthroughs.md shows. On the copy, with the copy's own ``infra`` on PYTHONPATH (its
``PROJECT_ROOT`` is the copy, so no loader hook is needed), it runs:

* the offline plan of every stack (``python -m infra.plan --stack all``): the program, the policy
  pack over it, and the cross-stack checks (``infra.stackset``); its JSON is checked for what the
  walk-through promises;
* the chart checks and the stack-level invariant tests (``CHECKS``), not the whole suite.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from infra import config
from tests import changes
from tests.conftest import ROOT, SHARED
from tests.unit import test_workflows
from tests.walkthroughs import steps as w

# Checked on the changed copy: what derives expectations from the stack files and holds invariants.
# The config tests are here because they read the project's own stack files too (the checks of
# the validator itself use tests/fixtures/stacks, which no walk-through changes).
CHECKS = (
    "tests/stack/test_clusters.py",
    "tests/stack/test_gitops.py",
    "tests/stack/test_registry.py",
    "tests/unit/test_chart_values.py",
    "tests/unit/test_chart_render.py",
    "tests/unit/test_stackset.py",
    "tests/unit/test_config.py",
    "tests/unit/test_config_ecr.py",
    "tests/unit/test_config_files.py",
    "tests/unit/test_config_regions.py",
    "tests/unit/test_config_schema.py",
    "tests/contracts/test_config_contracts.py",
    # The account-wide provider must not follow a hub move (it once asserted the hub's region).
    "tests/components/test_github_stack.py",
    # The policy pack over both stacks, and variants of the stack files (a spoke opened to the internet).
    "tests/policies/test_policy_stacks.py",
    "tests/unit/test_workflows.py::test_the_deploy_fits_in_its_sessions",
    # The way in and canary releases, per region and service (issues 18, 19): a new region needs its
    # Ingresses, names, certificate and NetworkPolicy CIDRs; a new service stays internal and gets
    # its Rollout; every cluster runs the traffic add-ons with its own ExternalDNS owner ID.
    "tests/unit/test_chart_traffic.py",
    "tests/unit/test_chart_rollouts.py",
    "tests/unit/test_addon_traffic.py",
    # The add-ons on the plan: one ApplicationSet per add-on on the (moved) hub, each cluster's
    # roles and associations, the vpc-cni network policy setting.
    "tests/stack/test_addons_stack.py",
)
# Left out on the copy: the tests that apply a change of their own on top (the walk-throughs do),
# and the CRD validation of the Argo CD and Argo Rollouts objects, which no walk-through changes
# the shape of.
DESELECT = (
    "not new_region and not adding_a_service and not moving_the_hub and not missing_from_the_deploy_order"
    " and not validates_against_its_crd and not validate_against_the_pinned_crds"
)
REPOSITORY = "aws:ecr/repository:Repository"
REPLICATION = "aws:ecr/replicationConfiguration:ReplicationConfiguration"
RELEASE = "kubernetes:helm.sh/v3:Release"


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"the walk-throughs copy the files git tracks; git ls-files failed here: {exc}")
    return [f for f in out.decode().split("\0") if f and (ROOT / f).is_file()]


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[w.Checkout]:
    root = tmp_path / "platform"
    for name in tracked_files():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((ROOT / name).read_bytes())
    if SHARED.is_dir():
        (tmp_path / "shared").symlink_to(SHARED, target_is_directory=True)
    yield w.Checkout(root)


def run_in(c: w.Checkout, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(c.root), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, *args], cwd=c.root, env=env, capture_output=True, text=True, check=False
    )


def apply(walkthrough: w.Walkthrough, c: w.Checkout) -> None:
    for step in walkthrough.steps:
        if step.edit is not None:
            step.edit(c)


def plan_and_check(c: w.Checkout) -> dict[str, Any]:
    """The copy's offline plan of every stack (policies and cross-stack checks), then CHECKS on it."""
    plan = run_in(c, "-m", "infra.plan", "--stack", "all", "--json", "plan.json")
    assert plan.returncode == 0, plan.stdout[-4000:] + plan.stderr[-4000:]
    assert "warning:" not in plan.stderr, plan.stderr
    for stack in c.stack_names():
        assert f"policy pack: every rule passes for {stack}" in plan.stdout, plan.stdout[-4000:]
    tests = run_in(c, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-k", DESELECT, *CHECKS)
    assert tests.returncode == 0, tests.stdout[-6000:] + tests.stderr[-2000:]
    stacks: dict[str, Any] = json.loads((c.root / "plan.json").read_text())["stacks"]
    return stacks


def resources(stack: Mapping[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in stack["resources"] if r["type"] == type_]


# ---------------------------------------------------------------------------------------------
# The docs and the steps are one list
# ---------------------------------------------------------------------------------------------


def test_the_docs_show_exactly_the_steps_the_tests_apply() -> None:
    text = w.DOC.read_text()
    assert w.doc_blocks(text) == {x.slug: x.markdown() for x in w.WALKTHROUGHS}, (
        "docs/walkthroughs.md differs from tests/walkthroughs/steps.py: "
        "run `python -m tests.walkthroughs.steps --write`"
    )
    for x in w.WALKTHROUGHS:
        assert f"## {x.title}\n" in text


# ---------------------------------------------------------------------------------------------
# The walk-throughs
# ---------------------------------------------------------------------------------------------


def test_add_a_service(checkout: w.Checkout) -> None:
    stacks = [checkout.config(s) for s in checkout.stack_names()]
    service = checkout.params["service"] = changes.fresh_service(*stacks)
    apply(w.ADD_SERVICE, checkout)
    plans = plan_and_check(checkout)
    for name, stack in plans.items():
        raw = checkout.config(name)
        prefix = raw["platform:ecr"]["prefix"]
        new = [r for r in resources(stack, REPOSITORY) if r["inputs"]["name"] == f"{prefix}/{service}"]
        assert len(new) == len(raw["platform:regions"]), name
        assert raw["platform:services"][-1] == raw["platform:sentinelService"]
    # Step 1: build-images.yml's own check finds the service's Dockerfile on the copy (it lists
    # every service without one; the example's other services have no build context here).
    stack_step = test_workflows._step(test_workflows._build_job(), "stack")
    env = {
        "PYTHONPATH": str(checkout.root),
        "GITHUB_REF_NAME": "deploy/staging",
        "TAG": "20261122.063000-0123abc",
    }
    run = test_workflows._run_step(stack_step, checkout.root.parent, env, cwd=checkout.root)
    missing = re.search(r"no services/<service>/Dockerfile for: (.*)", run.stdout + run.stderr)
    assert missing is None or service not in missing.group(1).split(", "), run.stdout + run.stderr
    (checkout.root / "services" / service / "Dockerfile").unlink()
    run = test_workflows._run_step(stack_step, checkout.root.parent, env, cwd=checkout.root)
    missing = re.search(r"no services/<service>/Dockerfile for: (.*)", run.stdout + run.stderr)
    assert missing is not None and service in missing.group(1).split(", "), run.stdout + run.stderr


def test_add_a_region(checkout: w.Checkout) -> None:
    stacks = [checkout.config(s) for s in checkout.stack_names()]
    region = checkout.params["region"] = changes.fresh_region(*stacks)
    apply(w.ADD_REGION, checkout)
    plans = plan_and_check(checkout)
    for name, stack in plans.items():
        assert region in stack["outputs"]["clusters"], name
    staging = checkout.config("staging")
    (replication,) = resources(plans["staging"], REPLICATION)
    destinations = {
        (d["registryId"], d["region"])
        for rule in replication["inputs"]["replicationConfiguration"]["rules"]
        for d in rule["destinations"]
    }
    assert (str(staging["platform:peerAccountId"]), region) in destinations
    assert (str(staging["platform:accountId"]), region) in destinations


def test_move_the_hub(checkout: w.Checkout) -> None:
    stacks = [checkout.config(s) for s in checkout.stack_names()]
    # A spoke every stack runs.
    hub = checkout.params["hub"] = next(
        r
        for r in changes.region_names(stacks[0])
        if all(r in s["platform:regions"] and r != s["platform:hubRegion"] for s in stacks)
    )
    apply(w.MOVE_HUB, checkout)
    plans = plan_and_check(checkout)
    for name, stack in plans.items():
        assert stack["outputs"]["argocd"]["region"] == hub, name
        assert stack["outputs"]["hubRegion"] == hub, name
        # Step 2: the hub deploys last.
        assert config.load_stack_file(name, root=checkout.root).deploy.region_order[-1] == hub, name


def test_add_a_third_stack_in_stagings_account(checkout: w.Checkout) -> None:
    stacks = {s: checkout.config(s) for s in checkout.stack_names()}
    stack = checkout.params["stack"] = next(n for n in ("debug", "debug2", "debug3") if n not in stacks)
    accounts = {str(s["platform:accountId"]) for s in stacks.values()} | {
        str(s["platform:peerAccountId"]) for s in stacks.values()
    }
    checkout.params["peer"] = next(a for a in ("999988887777", "999988887778") if a not in accounts)
    apply(w.ADD_STACK, checkout)
    plans = plan_and_check(checkout)
    assert stack in plans
    assert plans[stack]["outputs"]["environment"] == stack


def test_a_third_stack_that_clashes_is_refused_by_the_plan(checkout: w.Checkout) -> None:
    """The same walk-through without the shared-account step: the plan names both files and keys."""
    stack = checkout.params["stack"] = "debug"
    checkout.params["peer"] = "999988887777"
    for step in w.ADD_STACK.steps:
        if step.edit is not None and step.edit is not w._shared_account:
            step.edit(checkout)
    plan = run_in(checkout, "-m", "infra.plan", "--stack", "staging", "--quiet")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "Traceback" not in plan.stderr
    lines = [line.strip() for line in plan.stderr.splitlines() if line.strip().startswith("error: ")]
    assert lines and all(f"Pulumi.{stack}.yaml and Pulumi.staging.yaml" in line for line in lines)
    assert any("platform:github.oidcProviderArn" in line and "allowed:" in line for line in lines)


def test_a_region_added_to_staging_alone_is_a_warning_in_the_plan(checkout: w.Checkout) -> None:
    """Staging would replicate into prod's account in a region prod does not run: the plan says so."""
    stacks = [checkout.config(s) for s in checkout.stack_names()]
    region = changes.fresh_region(*stacks)
    raw = checkout.config("staging")
    changes.add_region(raw, region)
    checkout.write_config("staging", raw)
    plan = run_in(checkout, "-m", "infra.plan", "--stack", "staging")
    assert plan.returncode == 0, plan.stdout[-4000:] + plan.stderr[-4000:]
    (warning,) = [line for line in plan.stderr.splitlines() if line.startswith("warning: ")]
    assert warning.startswith(
        f"warning: Pulumi.staging.yaml and Pulumi.prod.yaml: platform:regions: {region} is a region of "
        "Pulumi.staging.yaml but not of Pulumi.prod.yaml: "
    )
    # Adding it to prod alone instead is refused.
    checkout.write_config("staging", stacks[checkout.stack_names().index("staging")])
    raw = checkout.config("prod")
    changes.add_region(raw, region)
    checkout.write_config("prod", raw)
    plan = run_in(checkout, "-m", "infra.plan", "--stack", "prod")
    assert plan.returncode == 2 and "Traceback" not in plan.stderr, plan.stderr
    assert f"{region} is a region of Pulumi.prod.yaml but not of Pulumi.staging.yaml" in plan.stderr

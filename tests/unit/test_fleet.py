"""``platform fleet`` against the deploy tests' fake hubs (real client, real kubeconfig, real HTTP).

Expectations come from the loaded stack files (regions, Application names, the sentinel
repository), never from the example's values.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from infra import cli, fleet, naming
from infra.deploy_model import ExitCode
from tests.unit.test_deploy_fakehub import (
    NEW_TAG,
    OLD_TAG,
    OTHER_TAG,
    Harness,
    closed_port,
    make_application,
    write_kubeconfig,
)


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.close()


def seed_all_regions(h: Harness, *, prod_tag: str = NEW_TAG, staging_tag: str = NEW_TAG) -> None:
    """Every region of both stack files: staging Synced/Healthy on ``staging_tag``, prod moved to
    ``prod_tag`` by Image Updater and still running OLD_TAG."""
    for region in h.staging_config.region_names:
        h.staging.add(make_application(h.staging_config, region, tag=staging_tag, running_tag=staging_tag))
    for region in h.prod_config.region_names:
        h.prod.add(make_application(h.prod_config, region, tag=prod_tag, running_tag=OLD_TAG))


def run(h: Harness, *flags: str, kubeconfig: Path | None = None) -> tuple[int, str]:
    out = io.StringIO()
    console = Console(file=out, width=300, force_terminal=False, color_system=None)
    code = fleet.run(
        kubeconfig=str(kubeconfig or h.kubeconfig),
        as_json="--json" in flags,
        console=console,
    )
    return code, out.getvalue()


def rows(output: str) -> list[dict[str, Any]]:
    return list(json.loads(output)["applications"])


def repository(h: Harness) -> str:
    return naming.repository_name(h.prod_config.ecr.prefix, h.prod_config.sentinel_service)


def test_both_stacks_every_region_desired_running_and_verified(h: Harness) -> None:
    seed_all_regions(h)
    code, output = run(h, "--json")
    assert code == ExitCode.OK, output
    doc = json.loads(output)
    expected = [("staging", r) for r in h.staging_config.region_names] + [
        ("prod", r) for r in h.prod_config.region_names
    ]
    assert [(r["stack"], r["region"]) for r in doc["applications"]] == expected
    repo = repository(h)
    for row in doc["applications"]:
        assert row["desired"] == f"{repo}:{NEW_TAG}"
        if row["stack"] == "staging":
            assert row["running"] == [f"{repo}:{NEW_TAG}"] and row["verified"] is None
            assert (row["sync"], row["health"]) == ("Synced", "Healthy")
        else:
            # Image Updater moved the tag; the old one still runs; staging runs the new one.
            assert row["running"] == [f"{repo}:{OLD_TAG}"] and row["sync"] == "OutOfSync"
            assert row["verified"] is True, row
    assert all(h_["reachable"] for h_ in doc["hubs"])
    # Only reads, and only `get`: the staging verifier role grants nothing else.
    assert h.staging.used_verbs() == {"get"} and h.prod.used_verbs() == {"get"}
    assert h.prod.touched() == [] and h.staging.touched() == []


def test_an_image_staging_does_not_run_is_not_verified(h: Harness) -> None:
    seed_all_regions(h, prod_tag=NEW_TAG, staging_tag=OTHER_TAG)
    code, output = run(h, "--json")
    assert code == ExitCode.OK
    prod_rows = [r for r in rows(output) if r["stack"] == "prod"]
    assert prod_rows and all(r["verified"] is False for r in prod_rows)
    assert all(OTHER_TAG in r["verification"] for r in prod_rows)


def test_an_unreachable_hub_is_named_the_other_still_shown_exit_6(h: Harness, tmp_path: Path) -> None:
    seed_all_regions(h)
    kubeconfig = write_kubeconfig(
        tmp_path / "half",
        {h.prod_context: h.prod.url, h.staging_context: f"http://127.0.0.1:{closed_port()}"},
    )
    code, output = run(h, "--json", kubeconfig=kubeconfig)
    assert code == ExitCode.API_ERROR
    doc = json.loads(output)
    hubs = {hub["stack"]: hub for hub in doc["hubs"]}
    assert hubs["staging"]["reachable"] is False and "unreachable" in hubs["staging"]["error"]
    assert hubs["prod"]["reachable"] is True
    for row in doc["applications"]:
        if row["stack"] == "staging":
            assert row["problem"] == "hub unreachable" and row["desired"] is None
        else:
            assert row["desired"] and row["running"], row  # prod is still read
            assert row["verified"] is None and row["verification"] == "staging hub unreachable"
    # The table says it in words a person sees at once.
    code, text = run(h, kubeconfig=kubeconfig)
    assert code == ExitCode.API_ERROR
    assert f"staging hub NOT REACHED (context {h.staging_context})" in " ".join(text.split())


def test_a_context_missing_from_the_kubeconfig_is_an_unreachable_hub(h: Harness, tmp_path: Path) -> None:
    seed_all_regions(h)
    kubeconfig = write_kubeconfig(tmp_path / "prod-only", {h.prod_context: h.prod.url})
    code, output = run(h, "--json", kubeconfig=kubeconfig)
    assert code == ExitCode.API_ERROR
    hubs = {hub["stack"]: hub for hub in json.loads(output)["hubs"]}
    assert h.staging_context in hubs["staging"]["error"]
    assert hubs["prod"]["reachable"]


def test_a_missing_application_and_a_missing_tag_are_rows_not_failures(h: Harness) -> None:
    seed_all_regions(h)
    first, *_ = h.prod_config.region_names
    del h.prod.apps[h.prod.app_name(first)]
    last = h.staging_config.region_names[-1]
    h.staging.add(make_application(h.staging_config, last, tag=None, running_tag=OLD_TAG))
    code, output = run(h, "--json")
    assert code == ExitCode.OK
    by = {(r["stack"], r["region"]): r for r in rows(output)}
    assert "no Application" in by[("prod", first)]["problem"]
    assert "image.tag" in by[("staging", last)]["problem"] and by[("staging", last)]["desired"] is None


def test_the_canary_step_is_shown_when_a_rollout_exists(h: Harness) -> None:
    seed_all_regions(h)
    region = h.prod_config.region_names[0]
    app = h.prod.apps[h.prod.app_name(region)]
    app["status"]["health"] = {"status": "Suspended"}
    app["status"]["resources"] = [
        {
            "group": "argoproj.io",
            "kind": "Rollout",
            "name": "shop-web",
            # As the hub's Rollout health check writes it (infra/manifests/rollout_health.py).
            "health": {"status": "Suspended", "message": "CanaryPauseStep [canary step 1/6, weight 10%]"},
        }
    ]
    code, output = run(h, "--json")
    assert code == ExitCode.OK
    (row,) = [r for r in rows(output) if (r["stack"], r["region"]) == ("prod", region)]
    assert row["canary"] == ["shop-web: Paused at step 1/2, weight 10% (CanaryPauseStep)"]
    _, text = run(h)
    assert "shop-web: Paused at step 1/2, weight 10% (CanaryPauseStep)" in " ".join(text.split())


def test_without_persisted_rollout_health_a_suspended_application_reads_paused(h: Harness) -> None:
    seed_all_regions(h)
    region = h.prod_config.region_names[0]
    app = h.prod.apps[h.prod.app_name(region)]
    app["status"]["health"] = {"status": "Suspended"}
    app["status"]["resources"] = [{"group": "argoproj.io", "kind": "Rollout", "name": "shop-web"}]
    code, output = run(h, "--json")
    assert code == ExitCode.OK
    (row,) = [r for r in rows(output) if (r["stack"], r["region"]) == ("prod", region)]
    assert row["canary"] == ["paused (a Rollout is Suspended)"]


def test_the_cli_runs_the_fleet_view(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def fake_run(**kwargs: Any) -> int:
        calls.append(kwargs)
        return 6

    monkeypatch.setattr(fleet, "run", fake_run)
    assert cli.main(["fleet", "--json", "--staging-context", "s", "--context", "p"]) == 6
    assert calls[0]["as_json"] is True
    assert (calls[0]["prod_context"], calls[0]["staging_context"]) == ("p", "s")
    assert cli.main(["fleet", "--no-such-flag"]) == 2


def test_a_bad_stack_is_a_usage_error() -> None:
    out = io.StringIO()
    assert fleet.run(stack="nosuch", console=Console(file=out)) == ExitCode.USAGE
    assert "Pulumi.<stack>.yaml" in " ".join(out.getvalue().split()) or "nosuch" in out.getvalue()

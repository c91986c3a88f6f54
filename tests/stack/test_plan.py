"""The offline plan command: deterministic JSON, a diff that shows exactly what changed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from infra import config, offline
from infra import plan as plan_cli
from tests import changes
from tests.conftest import ROOT, stack_config_map


def test_same_config_gives_byte_identical_json(tmp_path: Path) -> None:
    # Two separate processes: nothing may depend on hash seeds, thread timing or dict order.
    files = []
    for name in ("a.json", "b.json"):
        out = tmp_path / name
        subprocess.run(
            [sys.executable, "-m", "infra.plan", "--stack", "prod", "--quiet", "--json", str(out)],
            check=True,
            cwd=ROOT,
            capture_output=True,
        )
        files.append(out.read_bytes())
    assert files[0] == files[1]
    assert b'"prod"' in files[0] and b"[secret]" in files[0]


def test_json_redacts_secrets_and_names_providers_and_dependencies() -> None:
    doc = plan_cli.document([offline.run("prod")])
    resources = doc["stacks"]["prod"]["resources"]
    assert resources == sorted(resources, key=lambda r: r["urn"])
    custom = [r for r in resources if r["custom"] and not r["type"].startswith("pulumi:providers:")]
    assert custom, "the plan declares custom resources"
    assert all(r["provider"] for r in custom), [r["urn"] for r in custom if not r["provider"]]
    assert any(r["dependencies"] for r in resources)
    assert (
        "kubeconfigs" not in doc["stacks"]["prod"]["outputs"]
        or doc["stacks"]["prod"]["outputs"]["kubeconfigs"] == "[secret]"
    )
    assert "desired state" in doc["note"] and "pulumi preview" in doc["note"]


def test_diff_of_one_config_value_shows_exactly_that_change() -> None:
    base = plan_cli.document([offline.run("prod")])
    raw = stack_config_map("prod")
    region = list(raw["platform:regions"])[-1]
    node_group = raw["platform:regions"][region]["nodeGroup"]
    node_group["maxSize"], old = node_group["maxSize"] + 3, node_group["maxSize"]
    head = plan_cli.document([offline.run("prod", flat_config=raw)])
    text, count = plan_cli.render_diff(base, head)
    assert count == 1, text
    assert "0 to add, 0 to remove, 1 to change" in text
    changed = [line for line in text.splitlines() if line.startswith("  ~ ")]
    assert len(changed) == 1 and "aws:eks/nodeGroup:NodeGroup" in changed[0], text
    assert f".maxSize: {old} => {old + 3}" in text


def test_diff_shows_added_resources_and_no_change_as_none() -> None:
    base = plan_cli.document([offline.run("staging")])
    text, count = plan_cli.render_diff(base, base)
    assert count == 0 and "No changes." in text
    raw = stack_config_map("staging")
    new = changes.fresh_service(raw)
    changes.add_service(raw, new)
    text, count = plan_cli.render_diff(base, plan_cli.document([offline.run("staging", flat_config=raw)]))
    added = [line for line in text.splitlines() if line.startswith("  + ")]
    assert added and all(new in line for line in added), text
    assert count == len(added), text


def test_plan_command_prints_both_stacks_and_says_it_is_not_a_live_diff() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "infra.plan", "--stack", "all"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "PATH": ""},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for stack in ("staging", "prod"):
        assert f"{stack} (environment {stack}" in result.stdout
    assert "not a diff against the live cloud" in " ".join(result.stdout.split())


def test_a_bad_stack_file_is_a_clear_error_and_no_traceback(tmp_path: Path) -> None:
    raw = stack_config_map("staging")
    raw["platform:hubRegion"] = "mars-1"
    try:
        offline.run("staging", flat_config=raw)
    except config.ConfigError as exc:
        assert "platform:hubRegion" in str(exc) and "mars-1" in str(exc)
    else:  # pragma: no cover - the assertion is the point
        raise AssertionError("a hub outside the regions was accepted")

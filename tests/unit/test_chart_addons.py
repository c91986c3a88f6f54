"""The add-ons the application's chart needs where it runs (infra/chart_addons.py), and the config
check that refuses a stack without them (infra/config.py ``_addons_the_chart_needs``)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from infra import chart_addons, naming
from infra import config as cfg
from tests.conftest import config_error as message
from tests.conftest import fixture_config_map, stack_config_map, stack_names
from tests.conftest import load_map as load
from tests.unit.test_chart_render import HELM, rendered

STACKS = stack_names()
# What each add-on serves in the chart's output (infra/chart_addons.py).
KIND = {
    chart_addons.ARGO_ROLLOUTS: "Rollout",
    chart_addons.EXTERNAL_SECRETS: "ExternalSecret",
    chart_addons.METRICS_SERVER: "HorizontalPodAutoscaler",
}


def chart(config: cfg.StackConfig) -> Path:
    return cfg.PROJECT_ROOT / config.application.path


def needed(config: cfg.StackConfig) -> dict[str, list[str]]:
    """add-on -> the regions of ``config`` whose chart values need it."""
    out: dict[str, list[str]] = {}
    for region in config.region_names:
        for need in chart_addons.needs(chart(config), config.environment, region):
            out.setdefault(need.addon, []).append(region)
    return out


@pytest.mark.skipif(HELM is None, reason="helm is not on PATH (/work/tools/helm in this project)")
@pytest.mark.parametrize("stack", STACKS)
def test_the_needs_are_what_helm_renders_in_each_region(stack: str) -> None:
    """The reader of the value files agrees with ``helm template`` of the chart with the same
    files: an add-on is needed exactly where the chart renders the kind it serves."""
    config = cfg.load_stack_file(stack)
    for region in config.region_names:
        kinds = {doc["kind"] for doc in rendered(stack, region)}
        needs = {n.addon for n in chart_addons.needs(chart(config), config.environment, region)}
        assert needs == {addon for addon, kind in KIND.items() if kind in kinds}, (stack, region)


def test_value_files_are_layered_as_helm_does(tmp_path: Path) -> None:
    """A later file overrides key by key, maps merge, null removes a key, a missing file adds
    nothing, and a service with ``enabled: false`` renders nothing."""
    files = naming.value_files("e", "r")
    (tmp_path / files[0]).write_text(
        yaml.safe_dump(
            {
                "rollouts": {"enabled": False},
                "services": {"a": {"secrets": ["K"]}, "b": {"autoscaling": {"enabled": True}}},
            }
        )
    )
    (tmp_path / files[1]).write_text(yaml.safe_dump({"rollouts": {"enabled": True}}))
    needs = chart_addons.needs(tmp_path, "e", "r")  # files[2] is missing
    assert [(n.addon, n.file, n.key) for n in needs] == [
        (chart_addons.ARGO_ROLLOUTS, files[1], "rollouts.enabled"),
        (chart_addons.EXTERNAL_SECRETS, files[0], "services.a.secrets"),
        (chart_addons.METRICS_SERVER, files[0], "services.b.autoscaling.enabled"),
    ]
    (tmp_path / files[2]).write_text(
        yaml.safe_dump({"services": {"a": {"secrets": None}, "b": {"enabled": False}}})
    )
    assert [n.addon for n in chart_addons.needs(tmp_path, "e", "r")] == [chart_addons.ARGO_ROLLOUTS]


@pytest.mark.parametrize("stack", STACKS)
def test_a_stack_without_an_addon_its_chart_needs_is_refused_naming_the_value(stack: str) -> None:
    config = cfg.load_stack_file(stack)
    needs = needed(config)
    assert needs, f"{stack}: the chart needs none of {', '.join(KIND)}"
    for name in needs:
        raw = stack_config_map(stack)
        raw["platform:addons"].pop(name)
        need = next(
            n
            for n in chart_addons.needs(chart(config), config.environment, needs[name][0])
            if n.addon == name
        )
        assert re.search(
            rf"platform:addons\.{name}: \(missing\) is not allowed; {config.application.path} renders "
            rf"{KIND[name]}s in .*\({re.escape(config.application.path)}/{re.escape(need.file)} "
            rf"{re.escape(need.key)}: .*add {name}: \{{chartVersion: ",
            message(raw, stack),
        ), name


@pytest.mark.parametrize("stack", STACKS)
def test_an_addon_the_chart_needs_left_out_of_a_region_is_refused(stack: str) -> None:
    config = cfg.load_stack_file(stack)
    for name, regions in needed(config).items():
        if len(regions) < 2:
            continue
        raw = stack_config_map(stack)
        raw["platform:addons"][name] = {**raw["platform:addons"][name], "regions": regions[1:]}
        assert re.search(
            rf"platform:addons\.{name}\.regions: .* renders {KIND[name]}s in {regions[0]} .*expected regions "
            rf"to include {regions[0]}",
            message(raw, stack),
        ), name


@pytest.mark.parametrize("stack", STACKS)
def test_an_addon_the_chart_does_not_need_may_be_left_out(stack: str) -> None:
    config = cfg.load_stack_file(stack)
    spare = [name for name in KIND if name not in needed(config) and name in config.addons]
    if not spare:
        pytest.skip(f"{stack}'s chart needs every one of {', '.join(KIND)}")
    raw = stack_config_map(stack)
    for name in spare:
        raw["platform:addons"].pop(name)
    assert not set(spare) & set(load(raw, stack).addons)


def test_the_check_follows_the_chart_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Turning the feature off in the chart's values lets the add-on go: the check reads the
    chart, not a fixed list."""
    config = load(fixture_config_map("staging"))
    copy = tmp_path / config.application.path
    shutil.copytree(chart(config), copy)
    env_file = copy / naming.value_files(config.environment, "r")[1]
    values = yaml.safe_load(env_file.read_text()) if env_file.is_file() else {}
    values["rollouts"] = {**(values.get("rollouts") or {}), "enabled": False}
    env_file.write_text(yaml.safe_dump(values))
    raw = fixture_config_map("staging")
    raw["platform:addons"].pop(chart_addons.ARGO_ROLLOUTS)
    assert "argo-rollouts" in message(raw)
    monkeypatch.setattr(cfg, "PROJECT_ROOT", tmp_path)
    assert chart_addons.ARGO_ROLLOUTS not in load(raw).addons


def test_the_check_is_reported_with_the_other_keys_errors() -> None:
    raw = fixture_config_map("staging")
    raw["platform:addons"].pop(chart_addons.EXTERNAL_SECRETS)
    raw["platform:accountId"] = "1"
    text = message(raw)
    assert "platform:accountId" in text and "platform:addons.external-secrets: (missing)" in text

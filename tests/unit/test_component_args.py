"""The add-on and ApplicationSet components take narrow, typed, frozen arguments (the project's
rule: "One ComponentResource per concept with typed, frozen, narrow args"): never the whole
StackConfig, and what ``from_config`` derives is what the pure functions say."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import pytest

from infra import addons
from infra.components import addons as addons_component
from infra.components import applicationset
from infra.config import StackConfig, load_stack_file
from infra.manifests import argocd as manifests
from tests.conftest import stack_names

ARGS = (
    addons_component.ClusterAddonsArgs,
    addons_component.AddonIdentitiesArgs,
    addons_component.AddonIdentityArgs,
    applicationset.ApplicationSetArgs,
)


@pytest.mark.parametrize("args", ARGS, ids=lambda a: a.__name__)
def test_args_are_frozen_and_never_the_whole_config(args: type[Any]) -> None:
    assert dataclasses.is_dataclass(args) and args.__dataclass_params__.frozen  # type: ignore[attr-defined]
    hints = typing.get_type_hints(args, vars(addons_component) | vars(applicationset))
    for field in dataclasses.fields(args):
        assert StackConfig not in (hints[field.name], *typing.get_args(hints[field.name])), field.name


@pytest.mark.parametrize("stack", stack_names())
def test_from_config_carries_what_the_pure_functions_say(stack: str) -> None:
    config = load_stack_file(stack)
    hub: Any = object()  # from_config only stores the hub and the clusters
    a = addons_component.ClusterAddonsArgs.from_config(config, hub)
    assert list(a.application_sets) == addons.application_sets(config)
    assert a.summary == addons.plan_summary(config)
    servers = {r: f"https://{r}.example" for r in config.region_names}
    assert a.project.manifest(servers) == addons.addons_project(config, servers)
    ids = addons_component.AddonIdentitiesArgs.from_config(config, {})
    assert [(i.region, i.addon) for i in ids.identities] == [
        (region, addon.name) for region, addon in addons.identities(config)
    ]
    for identity in ids.identities:
        addon = addons.CATALOG[identity.addon]
        assert addon.policy is not None
        assert identity.policy == addon.policy(config, identity.region)
        assert identity.role_name == addons.addon_role_name(config, identity.region, identity.addon)
    s = applicationset.ApplicationSetArgs.from_config(config, hub)
    assert s.application_set == manifests.application_set(config)
    urls = list(servers.values())
    app = s.application
    project = manifests.application_project(app.name, app.repo_url, app.namespace, s.environment, urls)
    assert project == manifests.app_project(config, urls)

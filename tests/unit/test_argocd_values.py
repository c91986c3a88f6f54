"""Helm values of Argo CD and Image Updater (pure functions), against the upstream chart defaults."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from infra import config as cfg
from infra import naming
from infra.manifests import argocd as m
from tests.argocd_support import chart_defaults, unknown_value_paths
from tests.conftest import stack_config_map


def load(stack: str, **changes: Any) -> cfg.StackConfig:
    raw = stack_config_map(stack)
    for key, value in changes.items():
        raw[f"platform:{key}"] = value
    return cfg.from_flat(cfg.as_pulumi_config(raw), stack)


STACKS = ("staging", "prod")


# --- The key walker itself: it must catch what it is there to catch ------------------------------


def test_walker_flags_unknown_and_mistyped_keys() -> None:
    defaults = {"server": {"replicas": 1, "podAnnotations": {}, "extraArgs": [], "name": ""}}
    assert unknown_value_paths({"server": {"replica": 2}}, defaults) == [
        "server.replica: not a key of the chart's values"
    ]
    assert unknown_value_paths({"server": {"replicas": "2"}}, defaults) == [
        "server.replicas: a string where the chart has a number"
    ]
    assert unknown_value_paths({"server": {"replicas": True}}, defaults) == [
        "server.replicas: a bool where the chart has a number"
    ]
    assert unknown_value_paths({"server": {"extraArgs": {"a": 1}}}, defaults) == [
        "server.extraArgs: a map where the chart has a list"
    ]


def test_walker_allows_free_form_maps_lists_and_empty_strings() -> None:
    defaults = {"server": {"podAnnotations": {}, "extraArgs": [], "name": ""}}
    values = {"server": {"podAnnotations": {"anything": "goes"}, "extraArgs": ["--x"], "name": "n"}}
    assert unknown_value_paths(values, defaults) == []


def test_walker_reads_dotted_keys_literally() -> None:
    defaults = {"configs": {"cm": {"admin.enabled": True}}}
    assert unknown_value_paths({"configs": {"cm": {"admin.enabled": False}}}, defaults) == []
    assert unknown_value_paths({"configs": {"cm": {"admin": {"enabled": False}}}}, defaults) == [
        "configs.cm.admin: not a key of the chart's values"
    ]


# --- Argo CD -------------------------------------------------------------------------------------


@pytest.mark.shared
@pytest.mark.parametrize("stack", STACKS)
def test_every_argocd_value_is_a_key_of_the_pinned_chart(stack: str) -> None:
    # argocd-cm keys Argo CD documents (v3.4.4 docs/operator-manual/argocd-cm.yaml) that the chart's
    # values.yaml does not list: the chart renders configs.cm verbatim into argocd-cm.
    defaults = copy.deepcopy(chart_defaults("argo-cd"))
    defaults["configs"]["cm"].update(dict.fromkeys(m.ARGOCD_CM_KEYS_BEYOND_CHART_DEFAULTS, ""))
    defaults["configs"]["params"].update(dict.fromkeys(m.ARGOCD_PARAMS_KEYS_BEYOND_CHART_DEFAULTS, ""))
    assert unknown_value_paths(m.argocd_values(load(stack)), defaults) == []


@pytest.mark.shared
@pytest.mark.parametrize("stack", STACKS)
def test_every_image_updater_value_is_a_key_of_the_pinned_chart(stack: str) -> None:
    values = m.image_updater_values(load(stack))
    assert unknown_value_paths(values, chart_defaults("argocd-image-updater")) == []


@pytest.mark.shared
def test_pinned_chart_defaults_are_the_ones_our_values_override() -> None:
    """What we rely on changing: the chart's own defaults are the insecure/non-HA ones."""
    defaults = chart_defaults("argo-cd")
    assert defaults["configs"]["cm"]["admin.enabled"] is True
    assert defaults["redis-ha"]["enabled"] is False
    assert defaults["dex"]["enabled"] is True


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("ha", [True, False])
def test_highly_available_or_not_as_configured(stack: str, ha: bool) -> None:
    argocd = stack_config_map(stack).get("platform:argocd") or {}
    values = m.argocd_values(load(stack, argocd={**argocd, "ha": ha}))
    assert values["redis-ha"]["enabled"] is ha
    for component in ("server", "repoServer", "applicationSet"):
        if ha:
            assert values[component]["replicas"] >= 2, component
            assert values[component]["pdb"]["enabled"] is True, component
        else:
            assert values[component]["replicas"] == 1, component
    # Chart HA docs: one application controller (more replicas only shard clusters).
    assert values["controller"]["replicas"] == 1


def test_ha_follows_config_not_the_environment_name() -> None:
    assert m.argocd_values(load("staging", argocd={"ha": True}))["redis-ha"]["enabled"] is True
    assert m.argocd_values(load("prod", argocd={"ha": False, "sync": "manual"}))["server"]["replicas"] == 1


@pytest.mark.parametrize("stack", STACKS)
def test_secure_defaults(stack: str) -> None:
    values = m.argocd_values(load(stack))
    assert values["configs"]["cm"]["admin.enabled"] is False
    assert values["configs"]["cm"]["exec.enabled"] is False
    assert values["server"]["service"]["type"] == "ClusterIP"
    assert values["server"]["ingress"]["enabled"] is False
    assert values["configs"]["rbac"]["policy.default"] == ""


def test_service_accounts_are_the_ones_pod_identity_binds() -> None:
    values = m.argocd_values(load("staging"))
    names = {
        values["controller"]["serviceAccount"]["name"],
        values["server"]["serviceAccount"]["name"],
        values["applicationSet"]["serviceAccount"]["name"],
    }
    assert names == set(naming.ARGOCD_CONTROLLER_SERVICE_ACCOUNTS)
    iu = m.image_updater_values(load("staging"))
    assert iu["serviceAccount"] == {"create": True, "name": naming.IMAGE_UPDATER_SERVICE_ACCOUNT}


def test_domain_and_output_describe_port_forward_access() -> None:
    out = m.argocd_output(load("staging"))
    assert out["url"] == "https://localhost:8080"
    assert out["portForward"] == "kubectl -n argocd port-forward svc/argocd-server 8080:443"
    assert out["region"] == load("staging").hub_region
    assert out["applicationSet"] == naming.application_set_name(load("staging").application.name, "staging")
    with_host = load("staging", argocd={"hostname": "argocd.internal.example.com"})
    assert m.argocd_values(with_host)["global"]["domain"] == "argocd.internal.example.com"


# --- Image Updater registries and ECR credentials ------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_one_registry_per_region_each_with_its_own_script(stack: str) -> None:
    config = load(stack)
    values = m.image_updater_values(config)
    registries = values["config"]["registries"]
    assert [r["prefix"] for r in registries] == [
        naming.registry_host(config.account_id, region) for region in config.region_names
    ]
    scripts = values["authScripts"]["scripts"]
    assert values["authScripts"]["enabled"] is True
    for region, registry in zip(config.region_names, registries, strict=True):
        assert registry["api_url"] == f"https://{registry['prefix']}"
        script_path = registry["credentials"].removeprefix("ext:")
        assert script_path.startswith(m.AUTH_SCRIPTS_DIR + "/")
        script = scripts[script_path.rsplit("/", 1)[1]]
        # The script asks the registry's own region for the token (tokens are per region).
        assert f"aws ecr get-login-password --region {region}" in script
        assert script.startswith("#!/bin/sh\n")
        assert "set -eu" in script


@pytest.mark.parametrize("stack", STACKS)
def test_credentials_expire_before_the_ecr_token_does(stack: str) -> None:
    for registry in m.image_updater_values(load(stack))["config"]["registries"]:
        match = re.fullmatch(r"([0-9]+)([hms])", registry["credsexpire"])
        assert match, registry["credsexpire"]
        seconds = int(match.group(1)) * {"h": 3600, "m": 60, "s": 1}[match.group(2)]
        assert 0 < seconds < m.ECR_TOKEN_LIFETIME_HOURS * 3600


def test_script_output_format_is_user_colon_token(tmp_path: Any) -> None:
    """Run the script with a fake `aws` on PATH: one line, AWS:<token>; a failing CLI fails it."""
    import os
    import subprocess

    script = tmp_path / "ecr.sh"
    script.write_text(m.ecr_auth_script("eu-west-1"))
    script.chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "aws"
    fake.write_text(
        '#!/bin/sh\n[ "$1 $2 $3 $4" = "ecr get-login-password --region eu-west-1" ] || exit 3\necho tok3n\n'
    )
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    done = subprocess.run([str(script)], capture_output=True, text=True, env=env, check=True)
    assert done.stdout == "AWS:tok3n\n"
    fake.write_text("#!/bin/sh\nexit 255\n")
    failed = subprocess.run([str(script)], capture_output=True, text=True, env=env)
    assert failed.returncode != 0
    assert failed.stdout == ""


def test_ha_stacks_give_redis_ha_three_hub_nodes() -> None:
    """redis-ha forces its pods onto separate nodes (hardAntiAffinity): the chart's HA docs ask
    for at least three worker nodes, which the hub's node group must guarantee at its minimum."""
    ha = [load(stack) for stack in STACKS if m.argocd_values(load(stack))["redis-ha"]["enabled"]]
    for config in ha:
        assert config.region(config.hub_region).node_group.min_size >= 3, config.stack

"""Argo CD on the hub, hardened (issue 15): disruption budgets that protect something, no
in-cluster destination, and a ``default`` AppProject with no permissions.

The budgets are checked on the argo-cd 10.1.1 chart rendered with the program's values: its PDB
templates write ``minAvailable: {{ .minAvailable | default 0 }}`` when no maxUnavailable is given
(templates/argocd-server/pdb.yaml and siblings), which is what the program rendered before.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import config as cfg
from infra.manifests import argocd as m
from infra.plan import available_stacks
from tests.argocd_support import crd_errors, require_shared, selector_matches
from tests.conftest import stack_config_map

STACKS = tuple(available_stacks())
HELM = shutil.which("helm")


def load(stack: str, **changes: Any) -> cfg.StackConfig:
    raw = stack_config_map(stack)
    for key, value in changes.items():
        raw[f"platform:{key}"] = value
    return cfg.from_flat(cfg.as_pulumi_config(raw), stack)


def render(config: cfg.StackConfig, tmp_path: Path) -> list[dict[str, Any]]:
    assert HELM is not None
    chart = require_shared() / "upstream-charts" / "argo-cd-10.1.1.tgz"
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(m.argocd_values(config)))
    proc = subprocess.run(
        [HELM, "template", "argocd", str(chart), "--namespace", "argocd", "--values", str(values)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


@pytest.mark.shared
@pytest.mark.skipif(HELM is None, reason="needs the helm binary to render the argo-cd chart")
@pytest.mark.parametrize("ha", [True, False])
def test_every_disruption_budget_keeps_a_replica_and_allows_a_drain(ha: bool, tmp_path: Path) -> None:
    config = load("prod", argocd={**stack_config_map("prod")["platform:argocd"], "ha": ha})
    docs = render(config, tmp_path)
    budgets = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    if ha:
        assert budgets, "HA Argo CD has no disruption budget"
    for pdb in budgets:
        name = pdb["metadata"]["name"]
        spec = pdb["spec"]
        targets = [
            w
            for w in workloads
            if selector_matches(spec["selector"], w["spec"]["template"]["metadata"].get("labels", {}))
        ]
        assert targets, f"{name} selects no workload"
        replicas = sum(int(w["spec"].get("replicas", 1)) for w in targets)
        if "minAvailable" in spec:
            assert 1 <= int(spec["minAvailable"]) < replicas, (name, spec, replicas)
        else:
            assert 1 <= int(spec["maxUnavailable"]) < replicas, (name, spec, replicas)


@pytest.mark.parametrize("stack", STACKS)
def test_the_in_cluster_destination_is_disabled(stack: str) -> None:
    assert m.argocd_values(load(stack))["configs"]["cm"]["cluster.inClusterEnabled"] == "false"


def test_the_default_project_permits_nothing() -> None:
    project = m.default_app_project()
    assert project["metadata"]["name"] == "default"
    spec = project["spec"]
    assert spec["sourceRepos"] == [] and spec["destinations"] == [] and spec["sourceNamespaces"] == []
    assert spec["namespaceResourceBlacklist"] == [{"group": "*", "kind": "*"}]
    assert "clusterResourceWhitelist" not in spec
    # Server-side apply takes the object over from argocd-server, which created it.
    assert project["metadata"]["annotations"] == {"pulumi.com/patchForce": "true"}


@pytest.mark.shared
def test_the_default_project_validates_against_the_crd() -> None:
    assert crd_errors(m.default_app_project()) == []

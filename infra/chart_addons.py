"""The cluster add-ons the application's chart needs on a cluster: read from what the chart renders
there, so that infra/config.py can refuse a stack that runs the chart without them.

Each cluster's Application renders ``charts/<application.chart>`` with the value files Argo CD
layers (:func:`infra.naming.value_files`: ``values.yaml``, ``values-<env>.yaml``,
``values-<env>-<region>.yaml``, in that order, infra/manifests/argocd.py ``application_set``). A
later file overrides an earlier one key by key, maps are merged and ``null`` removes a key (Helm
docs, https://helm.sh/docs/chart_template_guide/values_files/, "Deleting a default key"; Argo CD passes each value file as one more
``--values``, argo-cd v3.4.4 util/helm/cmd.go ``template``). The platform's ``valuesObject`` sets
``ingress`` only (infra/traffic.py ``chart_values``), which needs the traffic add-ons that
infra/config.py ``TRAFFIC_ADDONS`` already requires.

Three of the chart's templates render kinds only an add-on serves (a service is rendered unless
its ``enabled`` is false, charts/shop/templates/_helpers.tpl ``shop.enabled``; its image tag is
set by Image Updater, so it is taken as set):

* ``templates/deployment.yaml`` (and ``analysistemplate.yaml``): with ``rollouts.enabled``, each
  service is an Argo Rollout with AnalysisTemplates. Their CRDs and controller come with the
  argo-rollouts add-on; without it the Application does not sync ("no matches for kind Rollout").
* ``templates/externalsecret.yaml``: an ExternalSecret per service that lists ``secrets``. Its CRD,
  the store it names and the controller that writes the Secret come with the external-secrets
  add-on; without it the Application does not sync and the service's pods lack their Secret.
* ``templates/horizontalpodautoscaler.yaml``: an HPA per service with ``autoscaling.enabled``. The
  HPA reads CPU from the resource metrics API, which metrics-server serves; without it the HPA
  shows ``<unknown>`` and never scales.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra import naming

ARGO_ROLLOUTS = "argo-rollouts"
EXTERNAL_SECRETS = "external-secrets"
METRICS_SERVER = "metrics-server"

#: add-on -> what it does for the chart's objects (the config error says it).
CHART_ADDONS: dict[str, str] = {
    ARGO_ROLLOUTS: "installs the Rollout and AnalysisTemplate CRDs and runs their controller",
    EXTERNAL_SECRETS: "installs the ExternalSecret CRD and writes each service's Secret from Secrets Manager",
    METRICS_SERVER: "serves the CPU metrics the HorizontalPodAutoscalers scale on",
}


@dataclass(frozen=True)
class Need:
    """The chart needs ``addon`` on a cluster because it renders ``kind`` there, switched on by
    ``key`` (dotted, from the top of the values) being ``value`` in value file ``file``."""

    addon: str
    kind: str
    file: str
    key: str
    value: Any


def helm_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge like Helm layers ``-f`` value files: maps recursively, lists and scalars replaced,
    ``null`` deletes the key (Helm docs, "Values Files" and "Deleting a default key"). Returns a
    new map; neither argument is changed or shared with the result."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = helm_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read(path: Path) -> dict[str, Any]:
    # A value file the chart lacks (a region without its own file) adds nothing.
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text())
    return data if isinstance(data, dict) else {}


def _get(values: Mapping[str, Any], key: Sequence[str]) -> Any:
    for part in key:
        if not isinstance(values, Mapping):
            return None
        values = values.get(part)  # type: ignore[assignment]
    return values


def needs(chart: Path, environment: str, region: str) -> list[Need]:
    """What the chart at ``chart`` (a directory) needs on the cluster of ``environment`` in
    ``region``: one :class:`Need` per add-on (the first thing that needs it), in CHART_ADDONS
    order; ``[]`` when it renders none of those kinds. Reads only the value files."""
    files = naming.value_files(environment, region)
    layers = [(name, _read(chart / name)) for name in files]
    values: dict[str, Any] = {}
    for _, layer in layers:
        values = helm_merge(values, layer)

    def found(addon: str, kind: str, key: Sequence[str]) -> Need:
        # The file a reader should change: the last one that sets the key.
        file = next((name for name, layer in reversed(layers) if _get(layer, key) is not None), files[0])
        return Need(addon, kind, file, ".".join(key), _get(values, key))

    services = {
        name: svc
        for name, svc in (values.get("services") or {}).items()
        if isinstance(svc, Mapping) and svc.get("enabled", True) is not False
    }
    out: list[Need] = []
    if services and (values.get("rollouts") or {}).get("enabled"):
        out.append(found(ARGO_ROLLOUTS, "Rollout", ("rollouts", "enabled")))
    with_secrets = [name for name, svc in sorted(services.items()) if svc.get("secrets")]
    if with_secrets:
        out.append(found(EXTERNAL_SECRETS, "ExternalSecret", ("services", with_secrets[0], "secrets")))
    scaled = [name for name, svc in sorted(services.items()) if (svc.get("autoscaling") or {}).get("enabled")]
    if scaled:
        out.append(
            found(
                METRICS_SERVER, "HorizontalPodAutoscaler", ("services", scaled[0], "autoscaling", "enabled")
            )
        )
    return out

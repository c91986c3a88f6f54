"""The shop chart's templates.

Two kinds of test:

* offline (always run): the templates are read as text and checked for balanced actions,
  namespaced helpers, no hard-coded namespace, and that every value they read exists in
  values.yaml or in the schema's per-service keys, so a typo such as ``.Values.imgae.tag`` fails
  here instead of rendering an empty string in a cluster;
* rendered (where ``helm`` is on PATH): ``helm lint`` and ``helm template`` for every stack and
  region with the value files Argo CD uses, the manifests validated against the Kubernetes
  OpenAPI schemas of ``kubernetes-validate`` and held to the chart's secure defaults.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from infra import naming
from infra.config import PROJECT_ROOT, StackConfig, load_stack_file
from infra.manifests.argocd import IMAGE_TAG_GUARD_KIND
from tests.conftest import stack_names
from tests.unit.test_chart_values import merged_values

STACKS = stack_names()
CI_TAG = "20261122.063000-0123abc"
DIGEST = "sha256:" + "0123456789abcdef" * 4
CHART = PROJECT_ROOT / "charts" / "shop"
TEMPLATES = CHART / "templates"
HELM = shutil.which("helm")

needs_helm = pytest.mark.skipif(
    HELM is None,
    reason="helm is not on PATH: the chart is not linted or rendered here (the offline template "
    "checks and tests/unit/test_chart_values.py still run)",
)

Manifest = dict[str, Any]


@cache
def stack(name: str) -> StackConfig:
    return load_stack_file(name)


COMBOS = [(name, region) for name in STACKS for region in stack(name).region_names]
COMBO_IDS = [f"{s}-{r}" for s, r in COMBOS]
# A region of each example stack, and services of the chart, for the single-render cases below.
STAGING_REGION, PROD_REGION = stack("staging").region_names[0], stack("prod").region_names[-1]
SERVICE, OTHER_SERVICE = stack("prod").services[0], stack("staging").services[-1]


def template_files() -> list[Path]:
    return sorted(p for p in TEMPLATES.iterdir() if p.is_file())


# --------------------------------------------------------------------------------------------
# Offline: the templates as text
# --------------------------------------------------------------------------------------------

_ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_BLOCK_OPENERS = ("if", "range", "with", "define", "block")


def actions(text: str) -> Iterator[str]:
    """The body of every template action, trim markers and comments removed."""
    for match in _ACTION.finditer(text):
        body = match.group(1).removeprefix("-").removesuffix("-").strip()
        if not body.startswith("/*"):
            yield body


def check_blocks(text: str) -> list[str]:
    """Problems with the nesting of if/range/with/define ... end, as Go's parser would see them."""
    problems: list[str] = []
    if text.count("{{") != text.count("}}"):
        problems.append(f"{text.count('{{')} '{{{{' but {text.count('}}')} '}}}}'")
    open_blocks: list[str] = []
    for body in actions(text):
        word = body.split(maxsplit=1)[0] if body else ""
        if word in _BLOCK_OPENERS:
            open_blocks.append(word)
        elif word == "else":
            if not open_blocks or open_blocks[-1] not in ("if", "with", "range"):
                problems.append(f"'else' outside if/with/range: {{{{ {body} }}}}")
        elif word == "end":
            if not open_blocks:
                problems.append("'end' without an open block")
            else:
                open_blocks.pop()
    problems.extend(f"'{word}' never closed with 'end'" for word in open_blocks)
    return problems


def test_block_checker_finds_unbalanced_templates() -> None:
    assert check_blocks("{{- if .a }}x{{ else }}y{{ end }}") == []
    assert check_blocks("{{- range .a }}{{ if .b }}{{ end }}") == ["'range' never closed with 'end'"]
    assert check_blocks("{{ end }}") == ["'end' without an open block"]
    assert check_blocks("{{ else }}") == ["'else' outside if/with/range: {{ else }}"]
    assert check_blocks("{{ .a }") == ["1 '{{' but 0 '}}'"]


@pytest.mark.parametrize("path", template_files(), ids=lambda p: p.name)
def test_template_parses_as_text(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.strip(), f"{path.name} is empty"
    assert check_blocks(text) == []


def _defined_and_included() -> tuple[set[str], set[str]]:
    defined: set[str] = set()
    included: set[str] = set()
    for path in template_files():
        for body in actions(path.read_text()):
            defined.update(re.findall(r'^define\s+"([^"]+)"', body))
            included.update(re.findall(r'\b(?:include|template)\s+"([^"]+)"', body))
    return defined, included


def test_helpers_are_namespaced_and_every_include_is_defined() -> None:
    defined, included = _defined_and_included()
    assert {"shop.name", "shop.fullname", "shop.labels", "shop.selectorLabels", "shop.image"} <= defined
    # Helper names are global across a chart and its subcharts: an unprefixed "labels" collides.
    assert sorted(name for name in defined if not name.startswith("shop.")) == []
    assert sorted(included - defined) == []


def test_no_hard_coded_namespace() -> None:
    offenders = []
    for path in template_files():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = re.match(r"\s*namespace:\s*(.*)$", line)
            if match and not re.fullmatch(
                r"\{\{-?\s*\$?\.Release\.Namespace\s*-?\}\}", match.group(1).strip()
            ):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert offenders == []


_VALUES_REF = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
# A service's values reach the templates as $svc (range $name, $svc := .Values.services) or, in
# helpers, as .svc of the context dict; a variable assigned from either is followed too.
_SVC_REF = re.compile(r"(?:\$svc\b|(?<![\w$])\.svc\b)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)")
_SVC_ALIAS = re.compile(
    r"\$([A-Za-z_]\w*)\s*:?=\s*(?:\$svc\b|(?<![\w$])\.svc\b)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
)
_SVC_DIG = re.compile(r'\bdig\s+"([A-Za-z_]\w*)"[^|]*?(?:\$svc|\.svc)\b')


def template_value_paths() -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
    """(paths read under .Values, paths read under one service), from every template."""
    values: set[tuple[str, ...]] = set()
    service: set[tuple[str, ...]] = set()
    for path in template_files():
        bodies = list(actions(path.read_text()))
        aliases: dict[str, tuple[str, ...]] = {}
        for body in bodies:
            for name, rest in _SVC_ALIAS.findall(body):
                aliases[name] = tuple(rest.split(".")[1:])
        for body in bodies:
            values.update(tuple(ref.split(".")[1:]) for ref in _VALUES_REF.findall(body))
            service.update(tuple(ref.split(".")[1:]) for ref in _SVC_REF.findall(body))
            service.update((key,) for key in _SVC_DIG.findall(body))
            for name, prefix in aliases.items():
                for ref in re.findall(rf"\${name}((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", body):
                    service.add(prefix + tuple(ref.split(".")[1:]))
    return values, {p for p in service if p}


def _exists(tree: Any, path: tuple[str, ...]) -> bool:
    for key in path:
        if not isinstance(tree, Mapping) or key not in tree:
            return False
        tree = tree[key]
    return True


@cache
def values_yaml() -> dict[str, Any]:
    return dict(yaml.safe_load((CHART / "values.yaml").read_text()))


@cache
def service_schema() -> dict[str, Any]:
    schema = yaml.safe_load((CHART / "values.schema.json").read_text())
    return dict(schema["definitions"]["service"])


def _schema_leaves(node: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, sub in node.get("properties", {}).items():
        if "properties" in sub:
            yield from _schema_leaves(sub, (*prefix, key))
        else:
            yield (*prefix, key)


def _service_key_exists(path: tuple[str, ...]) -> bool:
    node: Mapping[str, Any] = service_schema()
    for key in path:
        properties = node.get("properties", {})
        if key not in properties:
            return False
        node = properties[key]
    return True


def test_templates_read_only_values_that_exist() -> None:
    values, service = template_value_paths()
    assert ("global", "registry") in values and ("port",) in service, "the scanner found nothing"
    assert sorted(".".join(p) for p in values if not _exists(values_yaml(), p)) == []
    assert sorted("services.*." + ".".join(p) for p in service if not _service_key_exists(p)) == []


def test_every_value_and_service_key_is_read_by_a_template() -> None:
    values, service = template_value_paths()

    def leaves(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
        for key, value in tree.items():
            if isinstance(value, Mapping) and value and key != "services":
                yield from leaves(value, (*prefix, key))
            else:
                yield (*prefix, key)

    unread = [p for p in leaves(values_yaml()) if not any(p[: len(r)] == r for r in values)]
    assert sorted(".".join(p) for p in unread) == [], "values.yaml keys no template reads"
    unread_service = [
        p for p in _schema_leaves(service_schema()) if not any(p[: len(r)] == r for r in service)
    ]
    assert sorted(".".join(p) for p in unread_service) == [], "per-service keys no template reads"


def test_scanner_catches_a_misspelt_value() -> None:
    text = "{{- $x := $svc.autoscaling }}{{ .Values.imgae.tag }} {{ $x.maxReplica }} {{ $svc.prot }}"
    values = {tuple(r.split(".")[1:]) for b in actions(text) for r in _VALUES_REF.findall(b)}
    assert values == {("imgae", "tag")} and not _exists(values_yaml(), ("imgae", "tag"))
    alias = dict(_SVC_ALIAS.findall(text))
    assert alias == {"x": ".autoscaling"}
    assert not _service_key_exists(("autoscaling", "maxReplica"))
    assert not _service_key_exists(("prot",))


def test_values_yaml_is_documented_key_by_key() -> None:
    """helm-docs reads a `# --` comment right above a key; every setting and every service has one."""
    text = (CHART / "values.yaml").read_text()
    lines = text.splitlines()
    undocumented: list[str] = []

    def documented(line: int) -> bool:
        above = line - 1
        while (
            above >= 0
            and lines[above].strip().startswith("#")
            and not lines[above].strip().startswith("# --")
        ):
            above -= 1
        return above >= 0 and lines[above].strip().startswith("# --")

    def walk(node: yaml.Node, prefix: tuple[str, ...]) -> None:
        if not isinstance(node, yaml.MappingNode):
            return
        for key_node, value_node in node.value:
            path = (*prefix, str(key_node.value))
            is_leaf = not isinstance(value_node, yaml.MappingNode) or not value_node.value
            must_document = (path[0] != "services" and is_leaf) or (len(path) == 2 and path[0] == "services")
            if must_document and not documented(key_node.start_mark.line):
                undocumented.append(".".join(path))
            if path[0] != "services" or len(path) < 2:
                walk(value_node, path)

    root = yaml.compose(text)
    assert root is not None
    walk(root, ())
    assert undocumented == []


# --------------------------------------------------------------------------------------------
# Rendered with helm
# --------------------------------------------------------------------------------------------


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM is not None
    return subprocess.run([HELM, *args], capture_output=True, text=True, check=False, timeout=120)


def value_file_args(cfg: StackConfig, region: str) -> list[str]:
    args: list[str] = []
    for name in naming.value_files(cfg.environment, region):
        args += ["-f", str(PROJECT_ROOT / cfg.application.path / name)]
    return args


def template(
    stack_name: str, region: str, *extra: str, namespace: str | None = None
) -> subprocess.CompletedProcess[str]:
    cfg = stack(stack_name)
    return helm(
        "template",
        naming.application_name(cfg.application.name, cfg.environment, region),
        str(PROJECT_ROOT / cfg.application.path),
        "--namespace",
        namespace or cfg.application.namespace,
        "--kube-version",
        cfg.region(region).kubernetes_version,
        *value_file_args(cfg, region),
        *extra,
    )


@cache
def rendered(stack_name: str, region: str, *extra: str) -> list[Manifest]:
    result = template(stack_name, region, "--set", f"image.tag={CI_TAG}", *extra)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_component(manifests: list[Manifest]) -> dict[str, dict[str, Manifest]]:
    out: dict[str, dict[str, Manifest]] = {}
    for doc in manifests:
        if doc["kind"] == "AnalysisTemplate":
            continue  # one per canary step: analysis_templates()
        component = doc["metadata"]["labels"]["app.kubernetes.io/component"]
        kinds = out.setdefault(component, {})
        assert doc["kind"] not in kinds, f"two {doc['kind']} objects for {component}"
        kinds[doc["kind"]] = doc
    return out


def analysis_templates(manifests: list[Manifest], component: str) -> dict[str, Manifest]:
    """A service's AnalysisTemplates (one per canary step), by name."""
    return {
        d["metadata"]["name"]: d
        for d in manifests
        if d["kind"] == "AnalysisTemplate"
        and d["metadata"]["labels"]["app.kubernetes.io/component"] == component
    }


def rollouts_on(stack_name: str, region: str) -> bool:
    """Whether the stack's value files release this region's services as Argo Rollouts."""
    return bool(merged_values(stack(stack_name), region)["rollouts"]["enabled"])


WORKLOAD_KINDS = ("Deployment", "Rollout")


def workload(kinds: Mapping[str, Manifest]) -> Manifest:
    """A service's workload: its Deployment, or its Rollout where rollouts are on (never both)."""
    (found,) = [kinds[k] for k in WORKLOAD_KINDS if k in kinds]
    return found


def validation_version(kubernetes_version: str) -> str:
    # The cluster's own version when kubernetes-validate ships it, else the newest it has.
    latest = kubernetes_validate.latest_version()

    def key(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in v.split(".")[:2])

    return kubernetes_version if key(kubernetes_version) <= key(latest) else latest


def is_custom_resource(doc: Manifest) -> bool:
    """Objects kubernetes-validate has no schema for: validated against the CRDs of the pinned
    charts instead, external-secrets in tests/unit/test_addon_external_secrets.py (issue 17),
    Argo Rollouts' in tests/unit/test_chart_rollouts.py (issue 19)."""
    return doc["kind"] == "ExternalSecret" or doc["apiVersion"].startswith("argoproj.io/")


def assert_valid_kubernetes(doc: Manifest, kubernetes_version: str) -> None:
    """``doc`` validates, strictly, against the Kubernetes schemas of ``kubernetes_version``
    (or the newest kubernetes-validate ships)."""
    try:
        kubernetes_validate.validate(doc, validation_version(kubernetes_version), strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc}")


@needs_helm
@pytest.mark.parametrize(("stack_name", "region"), COMBOS, ids=COMBO_IDS)
def test_helm_lint(stack_name: str, region: str) -> None:
    cfg = stack(stack_name)
    result = helm(
        "lint",
        "--strict",
        # Deprecation checks against the version the cluster runs, not helm's built-in default.
        "--kube-version",
        cfg.region(region).kubernetes_version,
        str(PROJECT_ROOT / cfg.application.path),
        *value_file_args(cfg, region),
        "--set",
        f"image.tag={CI_TAG}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@needs_helm
@pytest.mark.parametrize(("stack_name", "region"), COMBOS, ids=COMBO_IDS)
def test_rendered_manifests_are_valid_kubernetes(stack_name: str, region: str) -> None:
    version = stack(stack_name).region(region).kubernetes_version
    manifests = rendered(stack_name, region)
    assert manifests
    for doc in manifests:
        if not is_custom_resource(doc):
            assert_valid_kubernetes(doc, version)


@needs_helm
@pytest.mark.parametrize(("stack_name", "region"), COMBOS, ids=COMBO_IDS)
def test_every_service_gets_its_objects(stack_name: str, region: str) -> None:
    cfg = stack(stack_name)
    manifests = rendered(stack_name, region)
    components = by_component(manifests)
    assert sorted(components) == sorted(cfg.services)
    expected = {"Service", "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy"}
    # Where rollouts are on, a Rollout and its AnalysisTemplate replace the Deployment.
    on = rollouts_on(stack_name, region)
    expected |= {"Rollout"} if on else {"Deployment"}
    if cfg.is_prod:
        expected.add("HorizontalPodAutoscaler")
    for service, kinds in components.items():
        (container,) = workload(kinds)["spec"]["template"]["spec"]["containers"]
        # A service that lists secrets also gets its ExternalSecret (issue 17).
        reads_secrets = any("secretKeyRef" in (e.get("valueFrom") or {}) for e in container.get("env", []))
        assert set(kinds) == expected | ({"ExternalSecret"} if reads_secrets else set()), service
        assert len({doc["metadata"]["name"] for doc in kinds.values()}) == 1, "one name per service"
        # Where rollouts are on, one AnalysisTemplate per canary step.
        steps = len(merged_values(cfg, region)["rollouts"]["steps"]) if on else 0
        assert len(analysis_templates(manifests, service)) == steps, service


@needs_helm
@pytest.mark.parametrize(("stack_name", "region"), COMBOS, ids=COMBO_IDS)
def test_labels_and_namespace(stack_name: str, region: str) -> None:
    cfg = stack(stack_name)
    release = naming.application_name(cfg.application.name, cfg.environment, region)
    for doc in rendered(stack_name, region):
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        assert doc["metadata"]["namespace"] == cfg.application.namespace, where
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == cfg.application.chart, where
        assert labels["app.kubernetes.io/instance"] == release, where
        assert labels["app.kubernetes.io/version"] == CI_TAG, where
        assert labels["app.kubernetes.io/part-of"] == cfg.application.chart, where
        assert labels["app.kubernetes.io/managed-by"] == "Helm", where
        assert labels["helm.sh/chart"] == f"{cfg.application.chart}-0.1.0", where


@needs_helm
@pytest.mark.parametrize(("stack_name", "region"), COMBOS, ids=COMBO_IDS)
def test_deployments_have_secure_defaults(stack_name: str, region: str) -> None:
    cfg = stack(stack_name)
    for service, kinds in by_component(rendered(stack_name, region)).items():
        pod = workload(kinds)["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert kinds["ServiceAccount"]["automountServiceAccountToken"] is False
        assert pod["serviceAccountName"] == kinds["ServiceAccount"]["metadata"]["name"]
        pod_sc = pod["securityContext"]
        assert pod_sc["runAsNonRoot"] is True
        assert isinstance(pod_sc["runAsUser"], int) and pod_sc["runAsUser"] > 0
        assert isinstance(pod_sc["runAsGroup"], int) and pod_sc["runAsGroup"] > 0
        assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
        (container,) = pod["containers"]
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] is True
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["privileged"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        tmp = [v for v in pod["volumes"] if v["name"] == "tmp"]
        assert len(tmp) == 1 and "emptyDir" in tmp[0]
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert set(container["resources"]["requests"]) == {"cpu", "memory"}, service
        assert "memory" in container["resources"]["limits"], service
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert container[probe]["httpGet"]["port"] == "http", f"{service} {probe}"
            assert container[probe]["httpGet"]["path"].startswith("/"), f"{service} {probe}"
        assert container["image"] == naming.image_repository(
            cfg.account_id, region, cfg.ecr.prefix, service
        ) + (f":{CI_TAG}")
        # Secrets (issue 17) come as valueFrom.secretKeyRef; the rest are plain values.
        env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
        assert env["AWS_REGION"] == region
        assert env["DEPLOY_ENVIRONMENT"] == cfg.environment
        assert len(env) == len(container["env"]), f"{service}: duplicate environment variables"


@needs_helm
@pytest.mark.parametrize(("stack_name", "region"), COMBOS, ids=COMBO_IDS)
def test_selectors_spread_and_scaling(stack_name: str, region: str) -> None:
    cfg = stack(stack_name)
    zones = len(cfg.region(region).availability_zones)
    for service, kinds in by_component(rendered(stack_name, region)).items():
        deployment = workload(kinds)["spec"]
        selector = deployment["selector"]["matchLabels"]
        assert selector["app.kubernetes.io/component"] == service
        assert selector.items() <= deployment["template"]["metadata"]["labels"].items()
        assert kinds["Service"]["spec"]["selector"] == selector
        assert kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector
        assert kinds["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"] == selector
        spread = {c["topologyKey"]: c for c in deployment["template"]["spec"]["topologySpreadConstraints"]}
        assert set(spread) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        assert all(c["labelSelector"]["matchLabels"] == selector for c in spread.values())
        if cfg.is_prod:
            # The HPA owns the count: a replicas field would reset it at every sync.
            assert "replicas" not in deployment, service
            hpa = kinds["HorizontalPodAutoscaler"]["spec"]
            target = workload(kinds)
            assert hpa["scaleTargetRef"] == {
                "apiVersion": target["apiVersion"],
                "kind": target["kind"],
                "name": target["metadata"]["name"],
            }
            assert hpa["minReplicas"] >= zones, f"{service}: fewer pods than zones"
            assert spread["topology.kubernetes.io/zone"]["whenUnsatisfiable"] == "DoNotSchedule"
        else:
            assert deployment["replicas"] >= 1


@needs_helm
@pytest.mark.parametrize(("stack_name", "region"), COMBOS, ids=COMBO_IDS)
def test_network_policy_denies_all_but_the_service_port_and_dns(stack_name: str, region: str) -> None:
    for service, kinds in by_component(rendered(stack_name, region)).items():
        (container,) = workload(kinds)["spec"]["template"]["spec"]["containers"]
        (port,) = container["ports"]
        assert kinds["Service"]["spec"]["ports"] == [
            {"name": "http", "port": port["containerPort"], "targetPort": "http", "protocol": "TCP"}
        ]
        policy = kinds["NetworkPolicy"]["spec"]
        assert policy["policyTypes"] == ["Ingress", "Egress"]
        for rule in policy["ingress"]:
            assert rule["ports"] == [{"port": port["containerPort"], "protocol": "TCP"}], service
            assert {"podSelector": {}} in rule["from"], f"{service}: same-namespace pods must be allowed"
        dns = [r for r in policy["egress"] if {"port": 53, "protocol": "UDP"} in r.get("ports", [])]
        assert dns and dns[0]["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
        # An egress rule without `to` would allow every destination.
        assert all(rule.get("to") for rule in policy["egress"]), service


@needs_helm
def test_render_refuses_a_cluster_older_than_the_charts_kube_version() -> None:
    cfg = stack("staging")
    result = helm(
        "template",
        "shop",
        str(PROJECT_ROOT / cfg.application.path),
        "--kube-version",
        "1.30",
        *value_file_args(cfg, STAGING_REGION),
        "--set",
        f"image.tag={CI_TAG}",
    )
    assert result.returncode != 0
    assert "kubeVersion" in result.stderr or "Kubernetes version" in result.stderr, result.stderr


@needs_helm
@pytest.mark.parametrize("stack_name", STACKS)
def test_without_an_image_tag_the_release_is_only_the_guard(stack_name: str) -> None:
    # The render must succeed (Argo CD sets status.sourceType only from a successful render, and
    # Image Updater needs it to write the first tag) and hold no workload, only the guard object
    # whose unserved kind makes every sync fail before it prunes (templates/image-tag-missing.yaml).
    cfg = stack(stack_name)
    for region in cfg.region_names:
        result = template(stack_name, region)
        assert result.returncode == 0, result.stderr
        (guard,) = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        assert (guard["apiVersion"], guard["kind"]) == ("v1", IMAGE_TAG_GUARD_KIND)
        assert guard["metadata"]["namespace"] == cfg.application.namespace
        assert "image.tag is empty" in guard["metadata"]["annotations"]["platform.example.com/reason"]
        # An empty tag written as a parameter is the same as none.
        result = template(stack_name, region, "--set", "image.tag=")
        assert [d["kind"] for d in yaml.safe_load_all(result.stdout) if d] == [IMAGE_TAG_GUARD_KIND]


@needs_helm
def test_with_a_tag_there_is_no_guard() -> None:
    assert IMAGE_TAG_GUARD_KIND not in {doc["kind"] for doc in rendered("prod", PROD_REGION)}


@needs_helm
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("services.catalog.replicas=-1", "replicas"),
        ("services.catalog.replicaCount=3", "replicaCount"),
        ("global.registry=docker.io", "registry"),
    ],
)
def test_helm_enforces_the_schema(override: str, message: str) -> None:
    result = template("staging", STAGING_REGION, "--set", f"image.tag={CI_TAG}", "--set", override)
    assert result.returncode != 0
    assert message in result.stderr


@needs_helm
def test_render_fails_when_autoscaling_minimum_exceeds_maximum() -> None:
    bad = f"services.{SERVICE}.autoscaling.minReplicas=9,services.{SERVICE}.autoscaling.maxReplicas=3"
    result = template("prod", PROD_REGION, "--set", f"image.tag={CI_TAG}", "--set", bad)
    assert result.returncode != 0
    assert f"services.{SERVICE}.autoscaling: minReplicas (9) is greater than maxReplicas (3)" in result.stderr


@needs_helm
def test_digest_pins_only_its_service() -> None:
    cfg = stack("prod")
    components = by_component(rendered("prod", PROD_REGION, "--set", f"image.digest.{SERVICE}={DIGEST}"))
    images = {
        s: workload(k)["spec"]["template"]["spec"]["containers"][0]["image"] for s, k in components.items()
    }
    repository = naming.image_repository(cfg.account_id, PROD_REGION, cfg.ecr.prefix, SERVICE)
    assert images[SERVICE] == f"{repository}:{CI_TAG}@{DIGEST}"
    assert all("@" not in image for service, image in images.items() if service != SERVICE)


@needs_helm
def test_digest_for_an_unknown_service_fails() -> None:
    result = template(
        "prod", PROD_REGION, "--set", f"image.tag={CI_TAG}", "--set", f"image.digest.{SERVICE}x={DIGEST}"
    )
    assert result.returncode != 0
    assert f"image.digest.{SERVICE}x: there is no service {SERVICE}x" in result.stderr


@needs_helm
def test_a_disabled_service_renders_nothing() -> None:
    components = by_component(
        rendered("staging", STAGING_REGION, "--set", f"services.{OTHER_SERVICE}.enabled=false")
    )
    assert sorted(components) == sorted(s for s in stack("staging").services if s != OTHER_SERVICE)


@needs_helm
def test_objects_follow_the_release_namespace() -> None:
    result = template("staging", STAGING_REGION, "--set", f"image.tag={CI_TAG}", namespace="shop-preview")
    assert result.returncode == 0, result.stderr
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert docs and {doc["metadata"]["namespace"] for doc in docs} == {"shop-preview"}

"""GitOps rules: how the ApplicationSet syncs per environment, what it must not revert, pinned
Helm charts and an HA Argo CD in prod.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from semver import Version

from policies.engine import (
    Finding,
    ResourceView,
    Rule,
    StackView,
    as_list,
    is_unknown,
    resource_rule,
    stack_rule,
)

APPLICATION_SET = "kubernetes:argoproj.io/v1alpha1:ApplicationSet"
IMAGE_UPDATER = "kubernetes:argocd-image-updater.argoproj.io/v1alpha1:ImageUpdater"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
HELM_CHART_V4 = "kubernetes:helm.sh/v4:Chart"
ARGO_CD_CHART = "argo-cd"

# Image Updater writes these Helm parameters when an image's manifestTargets.helm leaves them
# unset (argocd-image-updater v1, pkg/argocd/update.go: DefaultHelmImageName/DefaultHelmImageTag).
DEFAULT_HELM_NAME_PARAMETER = "image.name"
DEFAULT_HELM_TAG_PARAMETER = "image.tag"
HELM_PARAMETERS_POINTER = "/spec/source/helm/parameters"
HELM_PARAMETERS_JQ = ".spec.source.helm.parameters"

_EXACT_VERSION = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


# Label the program puts on each cluster add-on's ApplicationSet (infra/addons.py LABEL_ADDON).
# Those sets deploy upstream charts that Image Updater never targets, and sync automatically in
# every environment: an add-on version reaches prod only through a reviewed change of prod's
# stack file and prod's approved `pulumi up`, never ahead of the version staging runs
# (gitops-addon-staged-before-prod), and an add-on waiting for a manual sync (the HPAs'
# metrics, their nodes) is an outage (docs/addons.md). The rules about the application's
# ApplicationSet (manual sync in prod, Image Updater's parameters) skip them.
ADDON_LABEL = "platform.example.com/addon"
# Policy config of gitops-addon-staged-before-prod: staging's stack output `addons`
# ({region: {add-on: chart version}}, infra/naming.py OUTPUT_ADDONS).
STAGED_ADDONS_KEY = "stagedAddons"
STAGED_RULE = "gitops-addon-staged-before-prod"


def staged_addons(clusters: Any) -> dict[str, frozenset[str]] | None:
    """``{region: {add-on: version}}`` (staging's ``addons`` output) -> {add-on: versions staging
    runs on any cluster}; None when absent or not of that shape (nothing known)."""
    if not isinstance(clusters, Mapping):
        return None
    out: dict[str, set[str]] = {}
    for running in clusters.values():
        if not isinstance(running, Mapping):
            return None
        for addon, version in running.items():
            out.setdefault(str(addon), set()).add(str(version))
    return {addon: frozenset(versions) for addon, versions in out.items()}


def _is_addon_set(view: ResourceView) -> bool:
    labels = view.get("metadata.labels")
    return isinstance(labels, Mapping) and ADDON_LABEL in labels


def _set_name(view: ResourceView) -> str:
    name = view.get("metadata.name")
    return name if isinstance(name, str) else view.name


# --- gitops-prod-manual-sync / gitops-non-prod-automated-sync ----------------------------------


def _automated(view: ResourceView) -> Any:
    """The template's ``syncPolicy.automated`` block; UNKNOWN while unknown; None when absent.

    An ``automated`` block with ``enabled: false`` (Argo CD 3.x) does not sync by itself.
    """
    automated = view.get("spec.template.spec.syncPolicy.automated")
    if isinstance(automated, Mapping) and automated.get("enabled") is False:
        return None
    return automated


def _patch_automates(view: ResourceView) -> bool:
    # A goTemplate templatePatch can add syncPolicy.automated per Application behind the template.
    patch = view.get("spec.templatePatch")
    return isinstance(patch, str) and "automated" in patch


def _prod_manual(view: ResourceView) -> list[str]:
    if view.type != APPLICATION_SET or _is_addon_set(view):
        return []
    automated = _automated(view)
    if is_unknown(automated):
        return []
    if automated is not None or _patch_automates(view):
        return [
            f"ApplicationSet {_set_name(view)} in prod syncs its Applications automatically; remove "
            "spec.template.spec.syncPolicy.automated (and any templatePatch that adds it) so prod "
            "changes only through the deploy command (platform:argocd.sync manual)."
        ]
    return []


def _non_prod_automated(view: ResourceView) -> list[str]:
    if view.type != APPLICATION_SET:
        return []
    automated = _automated(view)
    if is_unknown(automated):
        return []
    if not isinstance(automated, Mapping):
        return [
            f"ApplicationSet {_set_name(view)} does not sync automatically; set "
            "spec.template.spec.syncPolicy.automated with prune and selfHeal true so every pushed "
            "image reaches this environment (platform:argocd.sync automated)."
        ]
    missing = [k for k in ("prune", "selfHeal") if automated.get(k) is not True]
    if missing:
        return [
            f"ApplicationSet {_set_name(view)} syncs automatically without {' and '.join(missing)}; set "
            "automated.prune and automated.selfHeal to true so the cluster always converges to Git."
        ]
    return []


# --- gitops-prod-preserve-resources ------------------------------------------------------------


def _preserve(view: ResourceView) -> list[str]:
    if view.type != APPLICATION_SET:
        return []
    preserve = view.get("spec.syncPolicy.preserveResourcesOnDeletion")
    if is_unknown(preserve) or preserve is True:
        return []
    return [
        f"ApplicationSet {_set_name(view)} in prod deletes the running workloads if it or an "
        "Application is deleted; set spec.syncPolicy.preserveResourcesOnDeletion to true."
    ]


# --- gitops-template-keeps-image-updater-parameters --------------------------------------------


def _template_parameters(view: ResourceView) -> list[str]:
    """The ApplicationSet controller updates an Application with a JSON merge patch from the
    normalised live object to the template (argo-cd v3.4.4 applicationset/utils/createOrUpdate.go),
    and a merge patch replaces a list whole: a template Helm parameter (or a ``sources`` list, or a
    templatePatch that writes either) would replace the Application's whole ``parameters`` list on
    its next change and delete the tag Image Updater wrote."""
    if view.type != APPLICATION_SET:
        return []
    parameters = view.get("spec.template.spec.source.helm.parameters")
    sources = view.get("spec.template.spec.sources")
    patch = view.get("spec.templatePatch")
    if is_unknown(parameters) or is_unknown(sources) or is_unknown(patch):
        return []
    found = []
    if as_list(parameters):
        found.append("spec.template.spec.source.helm.parameters")
    if sources is not None:
        found.append("spec.template.spec.sources")
    if isinstance(patch, str) and ("parameters" in patch or "sources" in patch):
        found.append("spec.templatePatch (writes parameters or sources)")
    if not found:
        return []
    return [
        f"ApplicationSet {_set_name(view)} sets {', '.join(found)}: the controller's merge patch replaces "
        "the whole list on the next change and deletes the Helm parameters Image Updater writes "
        f"({DEFAULT_HELM_NAME_PARAMETER}, {DEFAULT_HELM_TAG_PARAMETER}); put values in a value file and "
        "use spec.template.spec.source."
    ]


# --- gitops-ignore-image-updater-parameters ----------------------------------------------------


def written_parameters(image_updater: ResourceView) -> set[str]:
    """The Helm parameters an ImageUpdater writes into Applications (write-back ``argocd``).

    With ``git`` write-back the tag goes to Git and nothing is written to the Application.
    https://argocd-image-updater.readthedocs.io/en/stable/basics/update-methods/
    """
    spec = image_updater.get("spec")
    if not isinstance(spec, Mapping):
        return set()
    default_method = str(image_updater.get("spec.writeBackConfig.method") or "argocd")
    written: set[str] = set()
    for ref in as_list(spec.get("applicationRefs")):
        if not isinstance(ref, Mapping):
            continue
        override = ref.get("writeBackConfig")
        method = (
            str(override.get("method") or default_method) if isinstance(override, Mapping) else default_method
        )
        if method != "argocd":
            continue
        for image in as_list(ref.get("images")):
            if not isinstance(image, Mapping):
                continue
            targets = image.get("manifestTargets")
            helm = targets.get("helm") if isinstance(targets, Mapping) else None
            if isinstance(targets, Mapping) and "helm" not in targets and targets:
                continue  # kustomize targets write no Helm parameters
            helm = helm if isinstance(helm, Mapping) else {}
            written.add(str(helm.get("name") or DEFAULT_HELM_NAME_PARAMETER))
            written.add(str(helm.get("tag") or DEFAULT_HELM_TAG_PARAMETER))
    return written


def _is_parent_path(path: str, target: str, separator: str) -> bool:
    """``path`` names ``target`` itself or one of its parents (plain field segments only)."""
    path = path.rstrip(separator) if separator == "/" else path
    return bool(path) and target.startswith(path) and target[len(path) :][:1] in ("", separator)


def ignores_parameter_list(entries: Any) -> bool:
    """Whether ``ignoreApplicationDifferences`` keeps the ApplicationSet off the *whole* Helm
    ``parameters`` list.

    Only the whole list (a JSON pointer or a plain jq path on it or on a parent) is enough. A jq
    ``select`` of Image Updater's parameters is not: a parameter set by hand survives it, the
    normalised live list then differs from the template's, and the controller's merge patch
    replaces the whole list, deleting ``image.tag`` too (argoproj/argo-cd v3.4.4
    applicationset/utils/createOrUpdate.go; "Limitations of ignoreApplicationDifferences",
    https://argo-cd.readthedocs.io/en/stable/operator-manual/applicationset/Controlling-Resource-Modification/#limitations-of-ignoreapplicationdifferences;
    infra/manifests/argocd.py ``ignore_application_differences``, since c01e96f).
    """
    for entry in as_list(entries):
        if not isinstance(entry, Mapping):
            continue
        for pointer in as_list(entry.get("jsonPointers")):
            if _is_parent_path(str(pointer), HELM_PARAMETERS_POINTER, "/"):
                return True
        for expression in as_list(entry.get("jqPathExpressions")):
            text = str(expression).strip()
            if _JQ_PLAIN_PATH.fullmatch(text) and _is_parent_path(text, HELM_PARAMETERS_JQ, "."):
                return True
    return False


# A jq path of plain field accesses (".spec.source.helm"): no iteration, no select, no pipe.
_JQ_PLAIN_PATH = re.compile(r"(\.[A-Za-z_][A-Za-z0-9_]*)+")


def _ignores_written(stack: StackView) -> list[Finding]:
    written: set[str] = set()
    for updater in stack.of_type(IMAGE_UPDATER):
        written |= written_parameters(updater)
    if not written:
        return []
    findings = []
    for app_set in stack.of_type(APPLICATION_SET):
        if _is_addon_set(app_set):
            continue
        entries = app_set.get("spec.ignoreApplicationDifferences")
        if is_unknown(entries):
            continue
        if not ignores_parameter_list(entries):
            findings.append(
                Finding(
                    f"ApplicationSet {_set_name(app_set)} would revert the Helm parameters Image Updater "
                    f"writes ({', '.join(sorted(written))}): spec.ignoreApplicationDifferences must ignore "
                    f"the whole list, jqPathExpressions {HELM_PARAMETERS_JQ} (a select of some parameters "
                    "lets a hand-set parameter make the merge patch replace the list).",
                    app_set.urn,
                )
            )
    return findings


# --- gitops-addon-staged-before-prod -----------------------------------------------------------


def _semver(text: str) -> Version | None:
    try:
        return Version.parse(text)
    except ValueError:
        return None


def _staged_first(stack: StackView) -> list[Finding]:
    """Prod's add-on ApplicationSets sync automatically, so the chart version an add-on set names
    is what prod's clusters run minutes after `pulumi up`. It must not be newer than the newest
    version staging runs (``stack.staged_addons``: staging's stack output ``addons`` in CI,
    staging's stack file in the offline plan): prod may equal staging, stay behind it (staging
    bumped first, the documented order) or roll back, never run ahead of it or run an add-on
    staging does not run. Order is SemVer 2.0 precedence (Helm's: chart versions are SemVer 2,
    https://helm.sh/docs/topics/charts/#the-chartyaml-file), by the `semver` library: a
    pre-release sorts before its release (3.14.0-rc.1 < 3.14.0), build metadata has no order, so
    a version that differs from staging's only in it is refused unless staging runs that exact
    string. Unknown staged versions judge nothing."""
    staged = stack.staged_addons
    if staged is None:
        return []
    prod_file = f"Pulumi.{stack.stack or 'prod'}.yaml"
    findings = []
    for app_set in stack.of_type(APPLICATION_SET):
        labels = app_set.get("metadata.labels")
        version = app_set.get("spec.template.spec.source.targetRevision")
        if not isinstance(labels, Mapping) or ADDON_LABEL not in labels or is_unknown(version):
            continue
        addon, version = str(labels[ADDON_LABEL]), str(version)
        runs = staged.get(addon, frozenset())
        if version in runs:
            continue
        ordered = sorted(
            ((v, parsed) for v in runs if (parsed := _semver(v)) is not None), key=lambda vp: vp[1]
        )
        newest = ordered[-1] if ordered else None
        wanted = _semver(version)
        if newest is not None and wanted is not None and wanted < newest[1]:
            continue
        key = f"platform:addons.{addon}.chartVersion"
        if not runs:
            why = "staging does not run this add-on"
            allowed = f"remove {key} from {prod_file}, or add the add-on to staging's stack file first"
        elif newest is None or wanted is None:
            why = f"staging runs {', '.join(sorted(runs))} and SemVer 2.0 cannot order them"
            allowed = f"exactly a version staging runs ({', '.join(sorted(runs))})"
        else:
            why = (
                f"staging runs {newest[0]}, older"
                if wanted > newest[1]
                else f"staging runs {newest[0]}, a different build of the same version"
            )
            allowed = f"{newest[0]} or older (SemVer 2.0 order: prod may stay behind staging or roll back)"
        findings.append(
            Finding(
                f"ApplicationSet {_set_name(app_set)} would sync add-on {addon} chart {version} to prod's "
                f"clusters ahead of staging: {prod_file} {key}: {version}, but {why}; allowed: {allowed}. "
                "To upgrade, bump it in staging's stack file first and let staging's up apply it, then "
                'change prod\'s in a later commit (docs/addons.md, "Versions per environment").',
                app_set.urn,
            )
        )
    return findings


# --- gitops-helm-chart-pinned ------------------------------------------------------------------


def _local_chart(chart: str) -> bool:
    # A chart from this repository is pinned by the commit itself.
    return chart.startswith(("./", "../", "/"))


def _pinned(view: ResourceView) -> list[str]:
    if view.type not in (HELM_RELEASE, HELM_CHART_V4):
        return []
    chart = view.get("chart")
    version = view.get("version")
    if is_unknown(chart) or is_unknown(version) or (isinstance(chart, str) and _local_chart(chart)):
        return []
    if isinstance(version, str) and _EXACT_VERSION.match(version):
        return []
    shown = "no version" if not version else f"version {version}"
    return [
        f"Helm release {view.name} installs chart {chart} with {shown}; pin an exact chart version "
        "(infra/versions.py) so a preview shows every upgrade."
    ]


# --- gitops-argocd-ha-in-prod ------------------------------------------------------------------


def _replicas(values: Mapping[str, Any], component: str) -> int:
    block = values.get(component)
    if not isinstance(block, Mapping):
        return 1
    autoscaling = block.get("autoscaling")
    if isinstance(autoscaling, Mapping) and autoscaling.get("enabled") is True:
        return int(autoscaling.get("minReplicas") or 1)
    replicas = block.get("replicas")
    return int(replicas) if isinstance(replicas, int | float) else 1


def ha_problems(values: Mapping[str, Any]) -> list[str]:
    """What keeps argo-cd chart values from the chart's HA setup (README, "High Availability"):
    redis-ha (or an external Redis) and at least two replicas of server, repo server and
    ApplicationSet controller. https://argo-cd.readthedocs.io/en/stable/operator-manual/high_availability/
    """
    problems = []
    redis_ha = values.get("redis-ha")
    external = values.get("externalRedis")
    if not (isinstance(redis_ha, Mapping) and redis_ha.get("enabled") is True) and not (
        isinstance(external, Mapping) and external.get("host")
    ):
        problems.append("redis-ha.enabled is not true")
    for component in ("server", "repoServer", "applicationSet"):
        if _replicas(values, component) < 2:
            problems.append(f"{component} runs fewer than 2 replicas")
    return problems


def _argocd_ha(view: ResourceView) -> list[str]:
    if view.type not in (HELM_RELEASE, HELM_CHART_V4):
        return []
    chart = view.get("chart")
    if not isinstance(chart, str) or chart.rstrip("/").rsplit("/", 1)[-1] != ARGO_CD_CHART:
        return []
    values = view.get("values")
    if is_unknown(values):
        return []
    problems = ha_problems(values if isinstance(values, Mapping) else {})
    if not problems:
        return []
    return [
        f"Argo CD release {view.name} in prod is not highly available ({'; '.join(problems)}); set "
        "platform:argocd.ha to true."
    ]


RULES: tuple[Rule, ...] = (
    resource_rule(
        "gitops-prod-manual-sync",
        "gitops",
        "Prod's ApplicationSet never syncs its Applications automatically.",
        "mandatory",
        _prod_manual,
        applies_to="prod",
        resource_types=(APPLICATION_SET,),
        url="https://argo-cd.readthedocs.io/en/stable/user-guide/auto_sync/",
    ),
    resource_rule(
        "gitops-non-prod-automated-sync",
        "gitops",
        "Outside prod, the ApplicationSet syncs automatically with prune and self-heal.",
        "mandatory",
        _non_prod_automated,
        applies_to="non-prod",
        resource_types=(APPLICATION_SET,),
        url="https://argo-cd.readthedocs.io/en/stable/user-guide/auto_sync/",
    ),
    resource_rule(
        "gitops-prod-preserve-resources",
        "gitops",
        "Prod's ApplicationSet keeps the workloads when it or an Application is deleted.",
        "advisory",
        _preserve,
        applies_to="prod",
        resource_types=(APPLICATION_SET,),
        url="https://argo-cd.readthedocs.io/en/stable/operator-manual/applicationset/Application-Deletion/",
    ),
    stack_rule(
        "gitops-ignore-image-updater-parameters",
        "gitops",
        "With argocd write-back, the ApplicationSet ignores the whole Helm parameter list Image Updater writes into.",
        "mandatory",
        _ignores_written,
        resource_types=(APPLICATION_SET, IMAGE_UPDATER),
        url="https://argo-cd.readthedocs.io/en/stable/operator-manual/applicationset/Controlling-Resource-Modification/",
    ),
    resource_rule(
        "gitops-template-keeps-image-updater-parameters",
        "gitops",
        "The ApplicationSet template sets no Helm parameters or sources, so its merge patch never replaces the parameters Image Updater writes.",
        "mandatory",
        _template_parameters,
        resource_types=(APPLICATION_SET,),
        url="https://argo-cd.readthedocs.io/en/stable/operator-manual/applicationset/Controlling-Resource-Modification/",
    ),
    stack_rule(
        STAGED_RULE,
        "gitops",
        "A cluster add-on in prod never runs a chart version newer than the one staging runs.",
        "mandatory",
        _staged_first,
        applies_to="prod",
        resource_types=(APPLICATION_SET,),
        url="https://argo-cd.readthedocs.io/en/stable/operator-manual/applicationset/Generators-Cluster/",
    ),
    resource_rule(
        "gitops-helm-chart-pinned",
        "gitops",
        "Every Helm release pins an exact chart version.",
        "mandatory",
        _pinned,
        resource_types=(HELM_RELEASE, HELM_CHART_V4),
        url="https://www.pulumi.com/registry/packages/kubernetes/api-docs/helm/v3/release/",
    ),
    resource_rule(
        "gitops-argocd-ha-in-prod",
        "gitops",
        "Argo CD in prod runs the chart's highly available setup.",
        "mandatory",
        _argocd_ha,
        applies_to="prod",
        resource_types=(HELM_RELEASE, HELM_CHART_V4),
        url="https://argo-cd.readthedocs.io/en/stable/operator-manual/high_availability/",
    ),
)

"""GitOps rules: sync per environment, the Image Updater ignore rule, pinned charts, HA Argo CD."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra import versions
from infra.config import load_stack_file
from infra.manifests import argocd as manifests
from policies import gitops
from policies.engine import UNKNOWN, Finding
from tests.policies.support import check, check_stack, stack, view


def app_set(spec: dict[str, Any], environment: str = "prod") -> Any:
    props = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": f"shop-{environment}"},
        "spec": spec,
    }
    return view(gitops.APPLICATION_SET, "application-set", props, environment=environment)


def template_spec(sync_policy: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"project": "platform", "destination": {"server": "{{ .server }}"}}
    if sync_policy is not None:
        spec["syncPolicy"] = sync_policy
    return {"generators": [], "template": {"metadata": {"name": "x"}, "spec": spec}}


AUTOMATED = {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]}
MANUAL = {"syncOptions": ["CreateNamespace=true"]}

PROD_AUTOMATED = (
    "ApplicationSet shop-prod in prod syncs its Applications automatically; remove "
    "spec.template.spec.syncPolicy.automated (and any templatePatch that adds it) so prod changes only through "
    "the deploy command (platform:argocd.sync manual)."
)


# --- prod never syncs automatically ------------------------------------------------------------


@pytest.mark.parametrize("sync_policy", [MANUAL, None, {"automated": {"enabled": False}}])
def test_prod_manual_sync_passes(sync_policy: dict[str, Any] | None) -> None:
    assert check("gitops-prod-manual-sync", app_set(template_spec(sync_policy))) == []


@pytest.mark.parametrize("automated", [{"prune": True, "selfHeal": True}, {}])
def test_prod_automated_sync_is_refused(automated: dict[str, Any]) -> None:
    subject = app_set(template_spec({"automated": automated}))
    assert check("gitops-prod-manual-sync", subject) == [PROD_AUTOMATED]


def test_prod_template_patch_that_automates_is_refused() -> None:
    spec = template_spec(MANUAL)
    spec["templatePatch"] = "spec:\n  syncPolicy:\n    automated:\n      prune: true\n"
    assert check("gitops-prod-manual-sync", app_set(spec)) == [PROD_AUTOMATED]


def test_prod_rule_ignores_staging_and_staging_rule_ignores_prod() -> None:
    assert check("gitops-prod-manual-sync", app_set(template_spec(AUTOMATED), "staging")) == []
    assert check("gitops-non-prod-automated-sync", app_set(template_spec(MANUAL), "prod")) == []


# --- staging syncs automatically with prune and self-heal --------------------------------------


def test_staging_automated_sync_with_prune_and_self_heal_passes() -> None:
    assert check("gitops-non-prod-automated-sync", app_set(template_spec(AUTOMATED), "staging")) == []


@pytest.mark.parametrize("sync_policy", [MANUAL, None])
def test_staging_without_automated_sync_is_refused(sync_policy: dict[str, Any] | None) -> None:
    assert check("gitops-non-prod-automated-sync", app_set(template_spec(sync_policy), "staging")) == [
        "ApplicationSet shop-staging does not sync automatically; set spec.template.spec.syncPolicy.automated "
        "with prune and selfHeal true so every pushed image reaches this environment (platform:argocd.sync "
        "automated)."
    ]


def test_staging_automated_sync_without_self_heal_is_refused() -> None:
    subject = app_set(template_spec({"automated": {"prune": True}}), "staging")
    assert check("gitops-non-prod-automated-sync", subject) == [
        "ApplicationSet shop-staging syncs automatically without selfHeal; set automated.prune and "
        "automated.selfHeal to true so the cluster always converges to Git."
    ]


# --- prod preserves resources ------------------------------------------------------------------


def test_prod_application_set_preserving_resources_passes_and_otherwise_is_reported() -> None:
    preserving = {**template_spec(MANUAL), "syncPolicy": {"preserveResourcesOnDeletion": True}}
    assert check("gitops-prod-preserve-resources", app_set(preserving)) == []
    assert check("gitops-prod-preserve-resources", app_set(template_spec(MANUAL))) == [
        "ApplicationSet shop-prod in prod deletes the running workloads if it or an Application is deleted; set "
        "spec.syncPolicy.preserveResourcesOnDeletion to true."
    ]


# --- the ApplicationSet ignores what Image Updater writes --------------------------------------


def updater(method: str = "argocd", helm: dict[str, Any] | None = None, ref_method: str | None = None) -> Any:
    image: dict[str, Any] = {
        "alias": "web",
        "imageName": "444455556666.dkr.ecr.us-west-2.amazonaws.com/shop/web",
    }
    if helm is not None:
        image["manifestTargets"] = {"helm": helm}
    ref: dict[str, Any] = {"namePattern": "shop-prod-us-west-2", "images": [image]}
    if ref_method:
        ref["writeBackConfig"] = {"method": ref_method}
    spec = {"writeBackConfig": {"method": method}, "applicationRefs": [ref]}
    return view(gitops.IMAGE_UPDATER, "image-updater", {"kind": "ImageUpdater", "spec": spec})


def ignoring(*entries: dict[str, Any]) -> Any:
    return app_set({**template_spec(MANUAL), "ignoreApplicationDifferences": list(entries)})


JQ_BOTH = {
    "jqPathExpressions": [
        '.spec.source.helm.parameters[]? | select(.name == "image.name" or .name == "image.tag")'
    ]
}


def test_written_parameters_follow_image_updater_defaults_and_overrides() -> None:
    assert gitops.written_parameters(updater()) == {"image.name", "image.tag"}
    assert gitops.written_parameters(updater(helm={"name": "app.repo", "tag": "app.tag"})) == {
        "app.repo",
        "app.tag",
    }
    assert gitops.written_parameters(updater(method="git")) == set()
    assert gitops.written_parameters(updater(method="git", ref_method="argocd")) == {
        "image.name",
        "image.tag",
    }


@pytest.mark.parametrize(
    "entry",
    [
        {"jqPathExpressions": [".spec.source.helm.parameters"]},
        {"jqPathExpressions": [".spec.source.helm"]},
        {"jsonPointers": ["/spec/source/helm/parameters"]},
        {"jsonPointers": ["/spec/source"]},
    ],
)
def test_ignore_rules_on_the_whole_parameter_list_pass(entry: dict[str, Any]) -> None:
    assert check_stack("gitops-ignore-image-updater-parameters", stack(updater(), ignoring(entry))) == []


@pytest.mark.parametrize(
    "entry",
    [
        JQ_BOTH,
        {"jqPathExpressions": ['.spec.source.helm.parameters[]? | select(.name == "image.tag")']},
        {"jqPathExpressions": [".spec.source.helm.parameters[]"]},
        {"jqPathExpressions": [".spec.source.helm.parametersX"]},
        {"jsonPointers": ["/spec/source/helm/parameters/0"]},
    ],
)
def test_ignore_rules_narrower_than_the_whole_list_are_refused(entry: dict[str, Any]) -> None:
    """Since c01e96f the ignore rule must be the whole list: a select of Image Updater's
    parameters lets a hand-set parameter make the ApplicationSet's merge patch replace the list
    (tests/contracts/test_applicationset_merge_patch.py shows the wipe)."""
    subject = ignoring(entry)
    assert check_stack("gitops-ignore-image-updater-parameters", stack(updater(), subject)) == [
        Finding(
            "ApplicationSet shop-prod would revert the Helm parameters Image Updater writes (image.name, "
            "image.tag): spec.ignoreApplicationDifferences must ignore the whole list, jqPathExpressions "
            ".spec.source.helm.parameters (a select of some parameters lets a hand-set parameter make the "
            "merge patch replace the list).",
            subject.urn,
        )
    ]


def test_missing_ignore_rule_is_refused_and_unrelated_pointers_do_not_count() -> None:
    for subject in (app_set(template_spec(MANUAL)), ignoring({"jsonPointers": ["/spec/source/helmfoo"]})):
        found = check_stack("gitops-ignore-image-updater-parameters", stack(updater(), subject))
        assert [f.message.split(":")[0] for f in found] == [
            "ApplicationSet shop-prod would revert the Helm parameters Image Updater writes (image.name, image.tag)"
        ]


def test_git_write_back_needs_no_ignore_rule() -> None:
    assert (
        check_stack(
            "gitops-ignore-image-updater-parameters", stack(updater("git"), app_set(template_spec(MANUAL)))
        )
        == []
    )


def test_the_manifests_the_program_builds_pass_the_ignore_rule() -> None:
    for name in ("staging", "prod"):
        config = load_stack_file(name)
        iu = view(gitops.IMAGE_UPDATER, "iu", manifests.image_updater(config), environment=name)
        aps = view(gitops.APPLICATION_SET, "as", manifests.application_set(config), environment=name)
        assert check_stack("gitops-ignore-image-updater-parameters", stack(iu, aps, environment=name)) == []


# --- every Helm release pins its chart version -------------------------------------------------


def release(
    chart: Any = "argo-cd", version: Any = "10.1.1", values: Any = None, environment: str = "prod"
) -> Any:
    props: dict[str, Any] = {"name": "argocd", "chart": chart, "values": {} if values is None else values}
    if version is not None:
        props["version"] = version
    return view(gitops.HELM_RELEASE, "argocd", props, environment=environment)


@pytest.mark.parametrize("version", ["10.1.1", "1.2.4", "0.1.0-rc.1", "v3.0.0"])
def test_exact_chart_versions_pass(version: str) -> None:
    assert check("gitops-helm-chart-pinned", release(version=version)) == []


@pytest.mark.parametrize(
    ("version", "shown"),
    [("^10.1.0", "version ^10.1.0"), ("10.x", "version 10.x"), ("", "no version"), (None, "no version")],
)
def test_floating_or_missing_chart_versions_are_refused(version: Any, shown: str) -> None:
    assert check("gitops-helm-chart-pinned", release(version=version)) == [
        f"Helm release argocd installs chart argo-cd with {shown}; pin an exact chart version (infra/versions.py) "
        "so a preview shows every upgrade."
    ]


def test_local_chart_and_v4_chart_types() -> None:
    assert check("gitops-helm-chart-pinned", release(chart="./charts/shop", version=None)) == []
    v4 = view(gitops.HELM_CHART_V4, "c", {"chart": "oci://registry/charts/app", "version": "1.0"})
    assert check("gitops-helm-chart-pinned", v4) == [
        "Helm release c installs chart oci://registry/charts/app with version 1.0; pin an exact chart version "
        "(infra/versions.py) so a preview shows every upgrade."
    ]


# --- Argo CD in prod is HA ---------------------------------------------------------------------


def test_the_program_values_are_ha_in_prod_and_not_in_staging() -> None:
    assert gitops.ha_problems(manifests.argocd_values(load_stack_file("prod"))) == []
    assert gitops.ha_problems(manifests.argocd_values(load_stack_file("staging"))) != []


def test_ha_argocd_in_prod_passes() -> None:
    values = manifests.argocd_values(load_stack_file("prod"))
    assert (
        check("gitops-argocd-ha-in-prod", release(values=values, version=versions.ARGO_CD_CHART_VERSION))
        == []
    )


def test_non_ha_argocd_in_prod_is_refused() -> None:
    values = copy.deepcopy(manifests.argocd_values(load_stack_file("prod")))
    values["redis-ha"] = {"enabled": False}
    values["repoServer"]["replicas"] = 1
    assert check("gitops-argocd-ha-in-prod", release(values=values)) == [
        "Argo CD release argocd in prod is not highly available (redis-ha.enabled is not true; repoServer runs "
        "fewer than 2 replicas); set platform:argocd.ha to true."
    ]


def test_argocd_release_without_values_is_refused_in_prod_only() -> None:
    expected = [
        "Argo CD release argocd in prod is not highly available (redis-ha.enabled is not true; server runs fewer "
        "than 2 replicas; repoServer runs fewer than 2 replicas; applicationSet runs fewer than 2 replicas); set "
        "platform:argocd.ha to true."
    ]
    assert check("gitops-argocd-ha-in-prod", release(values={})) == expected
    assert check("gitops-argocd-ha-in-prod", release(values={}, environment="staging")) == []


def test_ha_rule_accepts_autoscaling_and_external_redis_and_skips_other_charts() -> None:
    values = {
        "externalRedis": {"host": "redis.example.internal"},
        "server": {"autoscaling": {"enabled": True, "minReplicas": 2}},
        "repoServer": {"autoscaling": {"enabled": True, "minReplicas": 3}},
        "applicationSet": {"replicas": 2},
    }
    assert gitops.ha_problems(values) == []
    assert check("gitops-argocd-ha-in-prod", release(chart="argocd-image-updater", values={})) == []
    assert check("gitops-argocd-ha-in-prod", release(chart="https://example/argo/argo-cd", values={})) != []
    assert check("gitops-argocd-ha-in-prod", release(values=UNKNOWN)) == []


# --- the template never carries Helm parameters --------------------------------------------------

KEEP_RULE = "gitops-template-keeps-image-updater-parameters"


def test_the_programs_application_sets_carry_no_template_parameters() -> None:
    for stack_name in ("staging", "prod"):
        config = load_stack_file(stack_name)
        props = manifests.application_set(config)
        subject = view(gitops.APPLICATION_SET, "application-set", props, environment=config.environment)
        assert check(KEEP_RULE, subject) == []


@pytest.mark.parametrize(
    ("mutate", "shown"),
    [
        (
            lambda t: t["spec"].update(source={"helm": {"parameters": [{"name": "x", "value": "1"}]}}),
            "helm.parameters",
        ),
        (lambda t: t["spec"].update(sources=[{"repoURL": "r"}]), "spec.template.spec.sources"),
    ],
)
def test_a_template_with_parameters_or_sources_is_refused(mutate: Any, shown: str) -> None:
    spec = template_spec(MANUAL)
    mutate(spec["template"])
    (message,) = check(KEEP_RULE, app_set(spec))
    assert shown in message and "image.tag" in message


def test_a_template_patch_writing_parameters_is_refused_and_unknowns_pass() -> None:
    spec = template_spec(MANUAL)
    spec["templatePatch"] = "spec:\n  source:\n    helm:\n      parameters: []\n"
    assert "templatePatch" in check(KEEP_RULE, app_set(spec))[0]
    unknown = template_spec(MANUAL)
    unknown["template"]["spec"]["source"] = {"helm": {"parameters": UNKNOWN}}
    assert check(KEEP_RULE, app_set(unknown)) == []


# --- add-ons reach prod only at a version staging runs ------------------------------------------


def addon_set(addon: str, version: Any, environment: str = "prod") -> Any:
    props = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": f"addon-{addon}", "labels": {gitops.ADDON_LABEL: addon}},
        "spec": {"template": {"metadata": {"name": "x"}, "spec": {"source": {"targetRevision": version}}}},
    }
    return view(gitops.APPLICATION_SET, f"addon-{addon}", props, environment=environment)


def staged(**versions: str) -> dict[str, frozenset[str]] | None:
    return gitops.staged_addons({"us-west-2": {k.replace("_", "-"): v for k, v in versions.items()}})


def with_staged(subject: Any, staged_addons: dict[str, frozenset[str]] | None) -> Any:
    s = stack(*subject.resources)
    return type(s)(
        resources=s.resources, stack=s.stack, environment=s.environment, staged_addons=staged_addons
    )


def test_a_prod_addon_at_a_version_staging_runs_passes() -> None:
    subject = with_staged(stack(addon_set("metrics-server", "3.13.1")), staged(metrics_server="3.13.1"))
    assert check_stack(gitops.STAGED_RULE, subject) == []


@pytest.mark.parametrize(
    ("prod", "staging"),
    [
        ("3.13.0", "3.13.1"),  # staging bumped first: prod stays behind until its own commit
        ("2.9.9", "3.13.1"),  # a roll back
        ("3.13.1-rc.1", "3.13.1"),  # a pre-release sorts before its release (SemVer 2.0 item 11)
        ("3.13.1-alpha.beta", "3.13.1-beta"),
        ("3.13.1-beta.2", "3.13.1-beta.11"),  # numeric identifiers compare as numbers
        ("3.13.1+build.2", "3.13.1+build.2"),
    ],
)
def test_a_prod_addon_at_or_behind_the_version_staging_runs_passes(prod: str, staging: str) -> None:
    subject = with_staged(stack(addon_set("metrics-server", prod)), staged(metrics_server=staging))
    assert check_stack(gitops.STAGED_RULE, subject) == []


@pytest.mark.parametrize(
    ("prod", "staging", "why"),
    [
        ("3.13.1", "3.13.0", "staging runs 3.13.0, older"),
        ("3.13.1", "3.13.1-rc.1", "staging runs 3.13.1-rc.1, older"),
        ("3.13.1-beta.11", "3.13.1-beta.2", "staging runs 3.13.1-beta.2, older"),
        ("3.13.1+b", "3.13.1+a", "staging runs 3.13.1+a, a different build of the same version"),
        ("3.13.1", None, "staging does not run this add-on"),
    ],
)
def test_a_prod_addon_ahead_of_staging_is_refused(prod: str, staging: str | None, why: str) -> None:
    versions = {} if staging is None else {"metrics_server": staging}
    subject = with_staged(stack(addon_set("metrics-server", prod)), staged(**versions))
    (finding,) = check_stack(gitops.STAGED_RULE, subject)
    key = "platform:addons.metrics-server.chartVersion"
    assert finding.message.startswith(
        f"ApplicationSet addon-metrics-server would sync add-on metrics-server chart {prod} to prod's clusters "
        f"ahead of staging: Pulumi.prod.yaml {key}: {prod}, but {why}; allowed: "
    )
    if staging is not None:
        assert f"allowed: {staging} or older" in finding.message
    assert finding.urn == subject.resources[0].urn


def test_the_newest_of_several_staged_versions_bounds_prod() -> None:
    runs = gitops.staged_addons(
        {"us-west-2": {"metrics-server": "3.13.0"}, "eu-west-1": {"metrics-server": "3.13.2"}}
    )
    assert (
        check_stack(gitops.STAGED_RULE, with_staged(stack(addon_set("metrics-server", "3.13.1")), runs)) == []
    )
    (finding,) = check_stack(
        gitops.STAGED_RULE, with_staged(stack(addon_set("metrics-server", "3.14.0")), runs)
    )
    assert "but staging runs 3.13.2, older; allowed: 3.13.2 or older" in finding.message


def test_unknown_staged_versions_or_versions_judge_nothing_and_the_application_set_is_skipped() -> None:
    assert check_stack(gitops.STAGED_RULE, stack(addon_set("metrics-server", "3.13.1"))) == []
    unknown = with_staged(stack(addon_set("metrics-server", UNKNOWN)), staged())
    assert check_stack(gitops.STAGED_RULE, unknown) == []
    application = with_staged(stack(app_set(template_spec(MANUAL))), staged())
    assert check_stack(gitops.STAGED_RULE, application) == []
    assert gitops.staged_addons(None) is None and gitops.staged_addons({"r": "x"}) is None


def test_the_example_stacks_prod_runs_only_what_staging_runs() -> None:
    """The offline plan's source for staging's versions: staging's stack file in the checkout."""
    from policies.offline import staged_from_checkout

    prod, staging = load_stack_file("prod"), load_stack_file("staging")
    found = staged_from_checkout(prod)
    assert found is not None
    for addon, settings in prod.addons.items():
        if prod.addon_regions(addon):
            assert settings.chart_version in found[addon]
    assert staged_from_checkout(staging) is None

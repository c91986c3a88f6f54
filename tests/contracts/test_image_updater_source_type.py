"""Image Updater's first tag (issue 13 item 2): the source-type rule and the chart that satisfies it.

Image Updater (write-back ``argocd``) updates an Application only once Argo CD has reported it
as Helm in ``status.sourceType``, which Argo CD does only after a successful render. So a
brand-new Application (first run, a new region, a rebuilt hub, a wiped tag) must render without
``image.tag``; the shop chart then renders only its guard object
(``charts/shop/templates/image-tag-missing.yaml``). The helm tests render the real chart exactly
as Argo CD renders each generated Application (value files, then the parameters Image Updater
writes) and skip where helm is absent.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from infra import naming
from infra.config import PROJECT_ROOT, StackConfig, load_stack_file
from infra.manifests import argocd as m
from tests.argocd_support import (
    generated_applications,
    helm_template_application,
    image_updater_parameters,
    raw_crd_schema,
    rendered_objects,
    with_parameters,
)
from tests.contracts import upstream

STACKS = ("staging", "prod")
TAG = "20261122.063000-0123abc"

needs_helm = pytest.mark.skipif(
    shutil.which("helm") is None,
    reason="helm is not on PATH: the chart is not rendered here (CI installs it; the source-type "
    "rules without a render still run)",
)


def argocd_write_back_target(app: dict[str, Any]) -> str:
    """argocd-image-updater v1.2.2 pkg/argocd/argocd.go ``newWBCFromSettings``: for write-back
    argocd the target stays ``parseDefaultTarget``'s ``<path>/.argocd-source-<app>.yaml``."""
    return f"{app['spec']['source']['path']}/.argocd-source-{app['metadata']['name']}.yaml"


def kube_version(config: StackConfig, region: str) -> str:
    return config.region(region).kubernetes_version


def test_with_argocd_write_back_only_status_source_type_counts() -> None:
    """argoproj-labs/argocd-image-updater v1.2.2, pkg/argocd/argocd.go ``getApplicationSourceType``
    and ``processApplicationForUpdate``: with write-back argocd the source type is
    ``status.sourceType``; an Application whose status has none is skipped before forceUpdate is
    looked at."""
    config = load_stack_file("staging")
    assert config.image_updater.write_back_method == "argocd"
    for app in generated_applications(config).values():
        target = argocd_write_back_target(app)
        assert not upstream.image_updater_processes(app, target)  # brand new: no status yet
        reported = {**app, "status": {"sourceType": upstream.HELM}}
        assert upstream.image_updater_processes(reported, target)


def test_a_render_failure_empties_source_type() -> None:
    """argoproj/argo-cd v3.4.4: reposerver/repository/repository.go ``GenerateManifests`` reports
    the source type with the manifests; controller/state.go ``CompareAppState`` takes it only from
    those responses and controller/appcontroller.go writes it to ``status.sourceType``: a failed
    render leaves it empty. A chart that refused to render without a tag would never get one."""
    config = load_stack_file("prod")
    for app in generated_applications(config).values():
        source = app["spec"]["source"]
        assert upstream.argocd_status_source_type(source, render_succeeded=False) == ""
        # The generated source is explicitly Helm (spec.source.helm), so a render that succeeds
        # reports Helm, however few objects it yields.
        assert upstream.argocd_status_source_type(source, render_succeeded=True) == upstream.HELM


def test_force_update_makes_the_not_yet_running_sentinel_eligible() -> None:
    """argocd-image-updater v1.2.2 pkg/argocd/argocd.go ``GetImagesFromApplication`` and
    pkg/argocd/update.go ``UpdateApplication``: only live images (status.summary.images) are
    updated, unless ``forceUpdate`` adds the image with no tag, which updates on the first run.
    Before the first tag nothing runs, so the program's ImageUpdater CR sets forceUpdate. What
    counts is the image's *effective* forceUpdate: the CR as the API server stores it (chart 1.2.4
    CRD defaults ``forceUpdate: false`` in every settings block present) merged by
    ``mergeCommonUpdateSettings``/``parseImageList`` (see test_image_updater_settings.py)."""
    for stack in STACKS:
        config = load_stack_file(stack)
        cr = m.image_updater(config)
        stored = upstream.crd_default(cr, raw_crd_schema("argocd-image-updater.argoproj.io", "ImageUpdater"))
        effective = {(e.name_pattern, e.alias): e for e in upstream.image_updater_effective_settings(stored)}
        for ref in cr["spec"]["applicationRefs"]:
            (image,) = ref["images"]
            force = effective[(ref["namePattern"], image["alias"])].settings["forceUpdate"]
            assert force is True
            assert upstream.image_updater_considers_image([], image["imageName"], force)


@needs_helm
@pytest.mark.parametrize("stack", STACKS)
def test_a_brand_new_application_renders_and_its_first_tag_flows(stack: str) -> None:
    """The real chart rendered as Argo CD renders each generated Application
    (argo-cd v3.4.4 reposerver/repository/repository.go ``helmTemplate``): without parameters it
    succeeds (so status.sourceType becomes Helm and Image Updater writes the first tag) and holds
    only the guard; with Image Updater's parameters it renders every service from the region's
    own registry."""
    config = load_stack_file(stack)
    for region, app in generated_applications(config).items():
        fresh = rendered_objects(helm_template_application(app, PROJECT_ROOT, kube_version(config, region)))
        assert [(o["apiVersion"], o["kind"]) for o in fresh] == [
            (m.IMAGE_TAG_GUARD_API_VERSION, m.IMAGE_TAG_GUARD_KIND)
        ], region
        source_type = upstream.argocd_status_source_type(app["spec"]["source"], render_succeeded=True)
        reported = {**app, "status": {"sourceType": source_type}}
        assert upstream.image_updater_processes(reported, argocd_write_back_target(app))

        updated = with_parameters(app, image_updater_parameters(config, region, TAG))
        objects = rendered_objects(
            helm_template_application(updated, PROJECT_ROOT, kube_version(config, region))
        )
        deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] in ("Deployment", "Rollout")}
        assert m.IMAGE_TAG_GUARD_KIND not in {o["kind"] for o in objects}
        registry = naming.registry_host(config.account_id, region)
        images = {
            c["image"] for d in deployments.values() for c in d["spec"]["template"]["spec"]["containers"]
        }
        assert images == {f"{registry}/{config.ecr.prefix}/{service}:{TAG}" for service in config.services}, (
            region
        )


def test_git_write_back_would_not_depend_on_status() -> None:
    """argocd-image-updater v1.2.2 pkg/argocd/argocd.go ``getApplicationSourceType``: a git
    write-back target that is a Helm values file makes the type Helm whatever the status says
    (the alternative design docs/argocd.md weighs)."""
    config = load_stack_file("staging")
    for region, app in generated_applications(config).items():
        values_file = naming.value_files(config.environment, region)[-1]
        target = f"{config.application.path}/{values_file}"
        assert upstream.image_updater_processes(app, target)

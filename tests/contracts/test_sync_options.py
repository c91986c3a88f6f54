"""What a sync applies and prunes (issue 13 items 2 and 7).

The prod deploy writes ``operation.sync`` through the Kubernetes API with ``prune: true`` and
PruneLast plus the Application's own options; a release without ``image.tag`` renders only the
chart's guard, which no sync can get past. Each test pins one Argo CD v3.4.4 rule against the
program's pure functions and, where helm is on PATH, the real chart rendered as Argo CD renders it.
"""

from __future__ import annotations

import re
import shutil
from typing import Any

import kubernetes_validate
import pytest

from infra.config import PROJECT_ROOT, load_stack_file
from infra.deploy_model import PRUNE_LAST
from infra.manifests import argocd as m
from tests.argocd_support import (
    generated_applications,
    helm_template_application,
    image_updater_parameters,
    rendered_objects,
    with_parameters,
)
from tests.contracts import upstream
from tests.contracts.sync_support import VERIFIED_TAG as TAG
from tests.contracts.sync_support import DeployOperation

needs_helm = pytest.mark.skipif(
    shutil.which("helm") is None,
    reason="helm is not on PATH: the chart is not rendered here (CI installs it)",
)


def tagged_and_tagless(
    config: Any,
) -> list[tuple[str, dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]]:
    """Per region: the generated Application, what runs once Image Updater wrote the first tag
    (the live objects), and the tag-less render (the guard alone), each as Argo CD renders it."""
    out = []
    for region, app in generated_applications(config).items():
        version = config.region(region).kubernetes_version
        running = with_parameters(app, image_updater_parameters(config, region, TAG))
        live = rendered_objects(helm_template_application(running, PROJECT_ROOT, version))
        guard_only = rendered_objects(helm_template_application(app, PROJECT_ROOT, version))
        out.append((region, app, live, guard_only))
    return out


def served_by(objects: list[dict[str, Any]]) -> upstream.Served:
    return frozenset((str(o["apiVersion"]), str(o["kind"])) for o in objects)


def test_the_controller_uses_only_the_operations_options(deploy_operation: DeployOperation) -> None:
    """argo-cd v3.4.4 controller/sync.go reads ``operation.sync.syncOptions`` and ``.prune`` only;
    the API server (server/application/application.go) and auto-sync copy the Application's
    options into the operation, an operation written with kubectl
    (docs/user-guide/sync-kubectl.md) does not. The deploy's operation therefore carries the
    Application's options (CreateNamespace, ServerSideApply), PruneLast and prune."""
    for app in generated_applications(load_stack_file("prod")).values():
        own = list(app["spec"]["syncPolicy"]["syncOptions"])
        assert m.PRUNE_NEEDS_CONFIRMATION in own
        options, prune = upstream.operation_sync_options(deploy_operation(app))
        assert options == [*(o for o in own if o != m.PRUNE_NEEDS_CONFIRMATION), PRUNE_LAST]
        assert prune is True


@needs_helm
def test_a_release_that_removes_a_resource_is_synced_only_with_prune(
    deploy_operation: DeployOperation,
) -> None:
    """gitops-engine (argo-cd v3.4.4) sync_context.go ``pruneObject`` deletes a live resource the
    targets no longer hold only when the operation prunes; docs/user-guide/sync-options.md: "The
    app will be out of sync if Argo CD expects a resource to be pruned"."""
    config = load_stack_file("prod")
    region = config.deploy.region_order[0]
    app = with_parameters(
        generated_applications(config)[region], image_updater_parameters(config, region, TAG)
    )
    version = config.region(region).kubernetes_version
    live = rendered_objects(helm_template_application(app, PROJECT_ROOT, version))
    dropped = config.services[0]
    smaller = with_parameters(app, [{"name": f"services.{dropped}.enabled", "value": "false"}])
    targets = rendered_objects(helm_template_application(smaller, PROJECT_ROOT, version))
    served = served_by(live)

    kept = upstream.sync(targets, live, prune=False, served=served)
    assert (kept.phase, kept.sync_status, kept.pruned) == ("Succeeded", "OutOfSync", ())
    options, prune = upstream.operation_sync_options(deploy_operation(app))
    done = upstream.sync(targets, live, prune=prune, served=served, sync_options=options)
    assert (done.phase, done.sync_status) == ("Succeeded", "Synced")
    # Every object of the dropped service (with canary releases: its per-step AnalysisTemplates too).
    assert done.pruned and all(re.search(rf"-{dropped}(-step-[0-9]+)?$", name) for name in done.pruned)
    # With the Application's own options (Prune=confirm) the same prune would wait for an approval.
    own = app["spec"]["syncPolicy"]["syncOptions"]
    waiting = upstream.sync(targets, live, prune=True, served=served, sync_options=own)
    assert (waiting.phase, waiting.pruned) == ("Running", ())


def test_no_cluster_serves_the_guard_kind() -> None:
    """The guard's apiVersion ``v1`` is the core group, which no CustomResourceDefinition can
    extend (kubernetes/kubernetes apiextensions-apiserver validation: a CRD's spec.group "should
    be a domain with at least one dot"), and the core API has no such kind: the Kubernetes
    OpenAPI schemas of kubernetes-validate have none, for any version they ship."""
    guard = {
        "apiVersion": m.IMAGE_TAG_GUARD_API_VERSION,
        "kind": m.IMAGE_TAG_GUARD_KIND,
        "metadata": {"name": "g"},
    }
    assert "/" not in m.IMAGE_TAG_GUARD_API_VERSION  # the core group
    for version in kubernetes_validate.utils.all_versions():
        with pytest.raises(kubernetes_validate.SchemaNotFoundError):
            kubernetes_validate.validate(guard, version, strict=True)


@needs_helm
@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_a_sync_without_a_tag_fails_before_it_prunes(stack: str, deploy_operation: DeployOperation) -> None:
    """gitops-engine (argo-cd v3.4.4) sync_context.go ``Sync``/``getSyncTasks``: an object whose
    API resource is not served fails the whole operation before any task, prune included. The
    tag-less render is the guard alone, so syncing it (the deploy's operation, or any manual
    sync with prune) deletes nothing that runs; an *empty* render would have been pruned."""
    config = load_stack_file(stack)
    for region, app, live, guard_only in tagged_and_tagless(config):
        _, prune = upstream.operation_sync_options(deploy_operation(app))
        result = upstream.sync(guard_only, live, prune=prune, served=served_by(live))
        assert (result.phase, result.pruned) == ("Failed", ()), region
        assert upstream.sync([], live, prune=True, served=served_by(live)).pruned  # what it prevents


@needs_helm
@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_a_sync_of_selected_resources_skips_the_guard_and_prods_prune_waits(stack: str) -> None:
    """argo-cd v3.4.4 controller/sync.go ``WithResourcesFilter`` and gitops-engine sync_context.go
    ``getSyncTasks``: a sync of selected resources (UI per-resource sync, ``argocd app sync
    --resource``) makes tasks of those only, so the unselected guard is never looked up, and a
    selected workload of a tag-less render is pruned. The API server copies the Application's
    syncOptions into the operation unless the request carries its own
    (server/application/application.go ``Sync``); prod's carry ``Prune=confirm``
    (``objRequiresPruneConfirmation``): the prune waits for ``deletion-approved``. Staging
    (automated, no confirm) and a CLI ``--sync-option`` list without it stay unguarded, as
    docs/argocd.md says."""
    config = load_stack_file(stack)
    for region, app, live, guard_only in tagged_and_tagless(config):
        served = served_by(live)
        deployment = next(
            f"{o['kind']}/{o['metadata']['name']}" for o in live if o["kind"] in ("Deployment", "Rollout")
        )
        # The rule bites: a selected Deployment is pruned past the guard.
        bare = upstream.sync(guard_only, live, prune=True, served=served, resources=[deployment])
        assert bare.pruned == (deployment,), region
        # What the UI or `argocd app sync --resource` asks for, with the Application's options.
        ui = upstream.api_server_sync_operation(app, prune=True, resources=[deployment], sync_options=None)
        options, prune = upstream.operation_sync_options(ui)
        result = upstream.sync(
            guard_only, live, prune=prune, served=served, resources=[deployment], sync_options=options
        )
        if config.argocd.sync == "manual":
            assert (result.phase, result.pruned) == ("Running", ()), region
        else:
            assert result.pruned == (deployment,), region  # staging: documented as not guarded
        # `--sync-option` replaces the Application's list: not guarded (docs/argocd.md).
        cli = upstream.api_server_sync_operation(app, prune=True, resources=[deployment], sync_options=[])
        options, prune = upstream.operation_sync_options(cli)
        overridden = upstream.sync(
            guard_only, live, prune=prune, served=served, resources=[deployment], sync_options=options
        )
        assert overridden.pruned == (deployment,)


def test_staging_auto_sync_never_wipes_out_a_release() -> None:
    """argo-cd v3.4.4 controller/appcontroller.go ``autoSync``: automated prune without
    ``allowEmpty`` skips an attempt in which every resource would be pruned; the staging template
    never sets allowEmpty (check_application_template refuses it)."""
    for app in generated_applications(load_stack_file("staging")).values():
        automated = app["spec"]["syncPolicy"]["automated"]
        assert automated["prune"] is True
        assert upstream.auto_sync_skips_wipe_out(
            automated["prune"], bool(automated.get("allowEmpty")), [True, True, True]
        )

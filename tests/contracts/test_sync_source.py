"""The prod deploy's sync applies the verified source, whatever is written to the spec after it.

argoproj/argo-cd v3.4.4 controller/sync.go ``newSyncOperationResult`` (transcribed in
``tests/contracts/upstream.py`` ``argocd_sources_synced``): the source is fixed when the
controller starts the operation, from the operation if it carries one, else from the spec as it
is then. The deploy's patch is conditional on the resourceVersion it verified, but Image Updater
may write a newer tag between the patch and the start.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.config import load_stack_file
from tests.argocd_support import generated_applications, image_updater_parameters, with_parameters
from tests.contracts import upstream
from tests.contracts.sync_support import VERIFIED_TAG as VERIFIED
from tests.contracts.sync_support import DeployOperation

NEWER = "20261122.101500-4567def"
STACKS = ("staging", "prod")


def tag_of(source: dict[str, Any]) -> list[str]:
    return [p["value"] for p in source["helm"]["parameters"] if p["name"] == "image.tag"]


@pytest.mark.parametrize("stack", STACKS)
def test_a_tag_written_after_the_patch_is_not_synced(stack: str, deploy_operation: DeployOperation) -> None:
    """argo-cd v3.4.4 controller/sync.go ``newSyncOperationResult``/``SyncAppState``: the deploy's
    operation carries the verified spec.source (Helm parameters included), so an Image Updater
    write between the patch and the start changes nothing the sync applies; the old operation
    (no source) would have synced the newer, unverified tag."""
    config = load_stack_file(stack)
    for region, app in generated_applications(config).items():
        verified = with_parameters(app, image_updater_parameters(config, region, VERIFIED))
        for pinned, expected in ((True, VERIFIED), (False, NEWER)):
            started = deploy_operation(verified, pinned=pinned)
            moved = with_parameters(started, image_updater_parameters(config, region, NEWER))
            moved["operation"] = copy.deepcopy(started["operation"])
            (synced,) = upstream.argocd_sources_synced(moved)
            assert tag_of(synced) == [expected], (region, pinned)
            if pinned:
                assert synced == verified["spec"]["source"]


def test_a_multi_source_application_would_pin_every_source(deploy_operation: DeployOperation) -> None:
    """argo-cd v3.4.4 controller/sync.go ``newSyncOperationResult``: ``op.Sources`` replaces the
    spec's sources as ``op.Source`` does for one (server/application/application.go ``Sync``
    fills ``Sources: a.Spec.Sources`` the same way). The platform's Applications are single-source."""
    config = load_stack_file("prod")
    app = next(iter(generated_applications(config).values()))
    assert "sources" not in app["spec"]
    multi = copy.deepcopy(app)
    multi["spec"]["sources"] = [
        multi["spec"].pop("source"),
        {"repoURL": "https://example.com/v.git", "ref": "v"},
    ]
    started = deploy_operation(multi)
    moved = copy.deepcopy(started)
    moved["spec"]["sources"][1]["targetRevision"] = "other"
    assert upstream.argocd_sources_synced(moved) == multi["spec"]["sources"]

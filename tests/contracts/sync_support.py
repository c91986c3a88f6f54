"""The prod deploy's operation on an Application, shared by the sync contract tests
(test_sync_options.py, test_sync_source.py; the ``deploy_operation`` fixture in conftest.py)."""

from __future__ import annotations

from typing import Any, Protocol

from infra.deploy_model import ImageRef, operation_patch, sync_options, sync_sources
from tests.contracts import upstream

# The tag the deploy verified (and Image Updater wrote before it).
VERIFIED_TAG = "20261122.063000-0123abc"


class DeployOperation(Protocol):
    def __call__(self, app: dict[str, Any], *, pinned: bool = True) -> dict[str, Any]: ...


def with_deploy_operation(app: dict[str, Any], *, pinned: bool = True) -> dict[str, Any]:
    """``app`` with the operation ``python -m infra.deploy prod`` writes for ``VERIFIED_TAG``:
    its sources pinned to the spec it verified (``pinned=False``: the operation as it was
    before the sources were pinned), and the Application's own sync options."""
    patch = operation_patch(
        username="github:alice",
        deploy_id="d1",
        image=ImageRef("shop/web", VERIFIED_TAG),
        verified="yes",
        reason="python -m infra.deploy prod",
        revision="a" * 40,
        resource_version="7",
        sources=sync_sources(app) if pinned else {},
        options=sync_options(app),
    )
    return upstream.apply_merge_patch(app, patch)

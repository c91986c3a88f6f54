"""Image Updater's effective settings: what the API server stores, then how Image Updater merges it.

The ImageUpdater CRD (argocd-image-updater chart 1.2.4, ``../shared/crds/crd-imageupdaters.yaml``,
generated from v1.2.2 api/v1alpha1/imageupdater_types.go) carries OpenAPI defaults inside every
``commonUpdateSettings`` block (``updateStrategy: semver``, ``forceUpdate: false``), in every
``writeBackConfig`` (``method: argocd``) and on each ref (``useAnnotations: false``). The API server
applies them to any object that is present (structural-schema defaulting), and Image Updater
then lets the most specific block win. So what counts is the CR *as stored*, merged as Image
Updater merges it: it must equal the stack config for every image.
"""

from __future__ import annotations

import copy
from typing import Any, get_args

import pytest

from infra.config import StackConfig, UpdateStrategy, load_stack_file
from infra.manifests import argocd as m
from tests.argocd_support import raw_crd_schema
from tests.contracts import upstream
from tests.unit.test_argocd_manifests import load

STACKS = ("staging", "prod")


def image_updater_schema() -> dict[str, Any]:
    """The chart 1.2.4 CRD's served openAPIV3Schema, unmodified."""
    group, _, _ = m.IMAGE_UPDATER_API.rpartition("/")
    return raw_crd_schema(group, "ImageUpdater")


def stored(cr: dict[str, Any]) -> dict[str, Any]:
    stored_cr = upstream.crd_default(cr, image_updater_schema())
    assert isinstance(stored_cr, dict)
    return stored_cr


def expected_settings(config: StackConfig) -> dict[str, Any]:
    iu = config.image_updater
    return {"updateStrategy": iu.update_strategy, "allowTags": iu.allow_tags, "forceUpdate": True}


def assert_effective_settings_follow_the_config(config: StackConfig, cr: dict[str, Any]) -> None:
    effective = upstream.image_updater_effective_settings(stored(cr))
    assert [e.name_pattern for e in effective] == [r["namePattern"] for r in cr["spec"]["applicationRefs"]]
    for e in effective:
        assert e.alias == config.sentinel_service
        assert e.settings == expected_settings(config), e.name_pattern
        assert e.write_back["method"] == config.image_updater.write_back_method, e.name_pattern


def test_the_crd_defaults_every_settings_block_that_is_present() -> None:
    """Kubernetes doc "CustomResourceDefinition defaulting"
    (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#defaulting),
    kubernetes/apiextensions-apiserver v0.36.3 pkg/apiserver/schema/defaulting/algorithm.go
    ``Default``, applied to the chart 1.2.4 CRD (argocd-image-updater v1.2.2
    api/v1alpha1/imageupdater_types.go ``+kubebuilder:default:="semver"`` on UpdateStrategy): an
    image-level block holding only forceUpdate is stored with ``updateStrategy: semver``; an
    absent block stays absent."""
    cr = {
        "apiVersion": m.IMAGE_UPDATER_API,
        "kind": "ImageUpdater",
        "metadata": {"name": "x", "namespace": "argocd"},
        "spec": {
            "applicationRefs": [
                {
                    "namePattern": "a",
                    "images": [{"alias": "s", "imageName": "r/s", "commonUpdateSettings": {}}],
                },
                {"namePattern": "b", "images": [{"alias": "s", "imageName": "r/s"}]},
            ]
        },
    }
    spec = stored(cr)["spec"]
    assert "commonUpdateSettings" not in spec  # a missing object is not created
    assert "writeBackConfig" not in spec
    a, b = spec["applicationRefs"]
    assert a["useAnnotations"] is False and b["useAnnotations"] is False
    assert a["images"][0]["commonUpdateSettings"] == {"updateStrategy": "semver", "forceUpdate": False}
    assert "commonUpdateSettings" not in a and "commonUpdateSettings" not in b
    assert "commonUpdateSettings" not in b["images"][0]


@pytest.mark.parametrize("stack", STACKS)
def test_each_image_gets_the_configured_settings_after_defaulting_and_merge(stack: str) -> None:
    """argoproj-labs/argocd-image-updater v1.2.2 pkg/argocd/argocd.go ``FilterApplicationsForUpdate``,
    ``mergeCommonUpdateSettings``, ``parseImageList``, ``mergeWBCSettings`` over the CR as the API
    server stores it (chart 1.2.4 CRD defaults; Kubernetes doc "CustomResourceDefinition
    defaulting"): every image's updateStrategy, allowTags and forceUpdate, and every ref's
    write-back method, are the stack config's, for every strategy and write-back the config allows."""
    config = load_stack_file(stack)
    assert_effective_settings_follow_the_config(config, m.image_updater(config))
    for strategy in get_args(UpdateStrategy):
        for write_back in (
            {"writeBackMethod": "argocd"},
            {"writeBackMethod": "git", "gitBranch": "image-updates"},
        ):
            changed = load(stack, imageUpdater={"updateStrategy": strategy, **write_back})
            assert_effective_settings_follow_the_config(changed, m.image_updater(changed))


@pytest.mark.parametrize("stack", STACKS)
def test_git_write_back_keeps_each_regions_target_after_defaulting(stack: str) -> None:
    """argocd-image-updater v1.2.2 pkg/argocd/argocd.go ``mergeWBCSettings`` over the stored CR
    (chart 1.2.4 CRD defaults ``method: argocd`` in each writeBackConfig present): each ref keeps
    method git, its branch and its own region's values file."""
    config = load(stack, imageUpdater={"writeBackMethod": "git", "gitBranch": "image-updates"})
    cr = m.image_updater(config)
    effective = upstream.image_updater_effective_settings(stored(cr))
    for ref, e in zip(cr["spec"]["applicationRefs"], effective, strict=True):
        assert e.write_back == {
            "method": "git",
            "gitConfig": {
                "branch": "image-updates",
                "writeBackTarget": ref["writeBackConfig"]["gitConfig"]["writeBackTarget"],
            },
        }


def test_a_nested_settings_block_would_make_the_strategy_semver() -> None:
    """The old shape (forceUpdate in each image's own commonUpdateSettings) under the same rules
    (chart 1.2.4 CRD defaults, argocd-image-updater v1.2.2 ``mergeCommonUpdateSettings``): the
    effective strategy becomes semver whatever the config says (registry-scanner v1.2.2
    pkg/image/version.go ``GetNewestVersionFromTags`` then sorts and filters by semver, skipping
    any tag Masterminds/semver v3.4.0 ``NewVersion`` refuses)."""
    config = load("staging", imageUpdater={"updateStrategy": "alphabetical"})
    old = copy.deepcopy(m.image_updater(config))
    old["spec"]["commonUpdateSettings"].pop("forceUpdate", None)
    for ref in old["spec"]["applicationRefs"]:
        for image in ref["images"]:
            image["commonUpdateSettings"] = {"forceUpdate": True}
    with pytest.raises(AssertionError):
        assert_effective_settings_follow_the_config(config, old)
    for e in upstream.image_updater_effective_settings(stored(old)):
        assert e.settings["updateStrategy"] == "semver"

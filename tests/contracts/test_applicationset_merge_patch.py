"""The ApplicationSet never wipes Image Updater's parameters (issue 13 item 3).

argoproj/argo-cd v3.4.4, applicationset/utils/createOrUpdate.go ``CreateOrUpdate``: the generated
Application is mutated onto the live one, ``ignoreApplicationDifferences`` removes the ignored
fields from both, equal objects are left alone, and otherwise ``client.MergeFrom(normalisedLive)``
sends a JSON merge patch (RFC 7386), which replaces any list it mentions. The upstream doc says
so: https://argo-cd.readthedocs.io/en/stable/operator-manual/applicationset/Controlling-Resource-Modification/#limitations-of-ignoreapplicationdifferences
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.config import load_stack_file
from infra.manifests import argocd as m
from tests.argocd_support import (
    generated_applications,
    image_updater_parameters,
    jq_available,
    jq_delete,
    normalise_application,
    with_parameters,
)
from tests.contracts import upstream

STACKS = ("staging", "prod")
TAG = "20261122.063000-0123abc"

needs_jq = pytest.mark.skipif(
    not jq_available(), reason="jq is not on PATH: the ignore rules' jq expressions cannot be evaluated"
)


def controller_update(
    live: dict[str, Any], generated: dict[str, Any], rules: list[dict[str, Any]]
) -> dict[str, Any]:
    """What the live Application becomes after one reconcile of the ApplicationSet controller
    (createOrUpdate.go v3.4.4): the generated spec, labels and annotations replace the live ones,
    the ignored fields are removed from both sides, an empty diff patches nothing, and otherwise
    the merge patch from the normalised live object to the normalised desired one is applied to
    the real live object. Empty and absent are equal (Go's omitempty and the semantic DeepEqual)."""

    def ignored(app: dict[str, Any]) -> dict[str, Any]:
        out: Any = copy.deepcopy(app)
        for rule in rules:
            for expression in rule.get("jqPathExpressions", []):
                out = jq_delete(out, expression)
        return normalise_application(out)

    desired = copy.deepcopy(live)
    desired["spec"] = copy.deepcopy(generated["spec"])
    desired["metadata"]["labels"] = copy.deepcopy(generated["metadata"].get("labels", {}))
    desired["metadata"]["annotations"] = copy.deepcopy(generated["metadata"].get("annotations", {}))
    normalised_live, normalised_desired = ignored(live), ignored(desired)
    if normalised_live == normalised_desired:
        return live
    patch = upstream.create_merge_patch(normalised_live, normalised_desired)
    return upstream.apply_merge_patch(live, patch)


def parameters(app: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in app["spec"]["source"]["helm"].get("parameters") or []}


def test_a_merge_patch_replaces_a_list_whole() -> None:
    """RFC 7386 (https://www.rfc-editor.org/rfc/rfc7386), as controller-runtime's MergeFrom
    creates it: one changed element sends the whole new list, deleting the others."""
    live = {"helm": {"parameters": [{"name": "a", "value": "1"}, {"name": "image.tag", "value": "t"}]}}
    normalised_live = {"helm": {"parameters": [{"name": "a", "value": "1"}]}}  # image.tag ignored
    desired = {"helm": {"parameters": [{"name": "a", "value": "2"}]}}
    patch = upstream.create_merge_patch(normalised_live, desired)
    assert patch == {"helm": {"parameters": [{"name": "a", "value": "2"}]}}
    assert upstream.apply_merge_patch(live, patch) == desired  # image.tag is gone


# A rule that ignores only the parameters Image Updater writes, the shape the upstream doc's
# Limitations example uses for one element of a list.
SELECT_ONLY = [
    {
        "jqPathExpressions": [
            '.spec.source.helm.parameters[]? | select(.name == "image.name" or .name == "image.tag")'
        ]
    }
]


@needs_jq
def test_a_template_parameter_would_wipe_image_updaters_parameters() -> None:
    """createOrUpdate.go v3.4.4 with a template that carries a Helm parameter and a rule that
    ignores only Image Updater's parameters: when the template's parameter changes, the patch
    replaces the list and Image Updater's tag is deleted. With the program's rule (the whole
    list) the template's parameter would instead never reach an existing Application; either way
    a template parameter is refused (check_application_template)."""
    config = load_stack_file("staging")
    for region, generated in generated_applications(config).items():
        before = with_parameters(generated, [{"name": "replicaHint", "value": "1"}])
        live = with_parameters(before, image_updater_parameters(config, region, TAG))
        changed = with_parameters(generated, [{"name": "replicaHint", "value": "2"}])
        after = controller_update(live, changed, SELECT_ONLY)
        assert m.IMAGE_TAG_PARAMETER not in parameters(after), region
        kept = controller_update(live, changed, m.ignore_application_differences(config))
        assert parameters(kept) == parameters(live), region


@needs_jq
@pytest.mark.parametrize("stack", STACKS)
def test_the_programs_template_changes_never_touch_image_updaters_parameters(stack: str) -> None:
    """createOrUpdate.go v3.4.4 with the program's template (no parameters): reconciling an
    unchanged template, a moved revision or new value files keeps the parameters Image Updater
    wrote, byte for byte."""
    config = load_stack_file(stack)
    rules = m.ignore_application_differences(config)
    for region, generated in generated_applications(config).items():
        written = image_updater_parameters(config, region, TAG)
        live = with_parameters(generated, written)
        moved = copy.deepcopy(generated)
        moved["spec"]["source"]["targetRevision"] = "release-2"
        moved["spec"]["source"]["helm"]["valueFiles"] = [
            *moved["spec"]["source"]["helm"]["valueFiles"],
            "extra.yaml",
        ]
        for template in (generated, moved):
            after = controller_update(live, template, rules)
            assert parameters(after) == {p["name"]: p["value"] for p in written}, region
            assert after["spec"]["source"]["targetRevision"] == template["spec"]["source"]["targetRevision"]


@needs_jq
@pytest.mark.parametrize("stack", STACKS)
def test_a_parameter_set_by_hand_never_takes_image_updaters_parameters_with_it(stack: str) -> None:
    """createOrUpdate.go v3.4.4 and the doc's Limitations: if any element of the live
    ``parameters`` list survives the ignore rules (a parameter set by hand, ``argocd app set -p``
    or the UI), the normalised live object and the template differ in that list, and the merge
    patch sets the whole list (here to null), deleting Image Updater's ``image.tag`` and
    ``image.name`` with it, as a rule ignoring only those two shows. The program's rule hides
    the whole list."""
    config = load_stack_file(stack)
    rules = m.ignore_application_differences(config)
    for region, generated in generated_applications(config).items():
        written = image_updater_parameters(config, region, TAG)
        live = with_parameters(generated, [*written, {"name": "services.web.replicas", "value": "3"}])
        assert m.IMAGE_TAG_PARAMETER not in parameters(controller_update(live, generated, SELECT_ONLY))
        moved = copy.deepcopy(generated)
        moved["spec"]["source"]["targetRevision"] = "release-2"
        for template in (generated, moved):
            after = controller_update(live, template, rules)
            kept = parameters(after)
            assert {p["name"]: kept.get(p["name"]) for p in written} == {
                p["name"]: p["value"] for p in written
            }, region


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s["source"]["helm"].update(parameters=[{"name": "x", "value": "1"}]), "helm.parameters"),
        (lambda s: s.update(sources=[s.pop("source")]), "spec.sources"),
        (lambda s: s["syncPolicy"].update(automated={"prune": True, "allowEmpty": True}), "allowEmpty"),
        (lambda s: s["syncPolicy"].update(syncOptions=["SkipDryRunOnMissingResource=true"]), "SkipDryRun"),
    ],
)
def test_the_manifest_function_refuses_a_template_that_could_wipe(mutate: Any, message: str) -> None:
    """The same createOrUpdate.go / appcontroller.go / sync_context.go v3.4.4 rules, enforced by
    construction: ``application_set`` checks its template, and the check refuses each shape."""
    for stack in STACKS:
        template = copy.deepcopy(m.application_set(load_stack_file(stack))["spec"]["template"])
        m.check_application_template(template)  # the program's own template passes
        template["spec"].setdefault("syncPolicy", {})
        mutate(template["spec"])
        with pytest.raises(ValueError, match=message):
            m.check_application_template(template)

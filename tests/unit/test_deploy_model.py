"""The deploy's pure decisions: image references, verification, progress, the sync patch.

No cluster and no fake API: plain Application dicts in, answers out. The sync patch is held to
the Application CRD of the pinned Argo CD chart (../shared), and the names the deploy looks for
to what the ApplicationSet and the ImageUpdater of issue 6 actually generate.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra import deploy_model, naming
from infra.config import load_stack_file
from infra.deploy import load_stacks
from infra.deploy_model import (
    ExitCode,
    ImageRef,
    Outcome,
    Phase,
    assess,
    desired_image,
    exit_code,
    is_up_to_date,
    operation_in_progress,
    operation_patch,
    parse_image,
    running_images,
    split_tag_value,
    sync_revision,
    sync_sources,
    verify,
)
from infra.manifests import argocd as argocd_manifests
from tests.argocd_support import (
    cluster_generator_params,
    crd_errors,
    example_traffic_facts,
    fake_vpc_id,
    render_template,
)
from tests.unit.test_deploy_fakehub import NEW_TAG, OLD_TAG, OTHER_TAG, make_application, merge_patch

PROD = load_stack_file("prod")
STAGING = load_stack_file("staging")
REPO = naming.repository_name(PROD.ecr.prefix, PROD.sentinel_service)
SERVICE = PROD.sentinel_service
REGION = PROD.deploy.region_order[0]
DIGEST = "sha256:" + "ab" * 32


def prod_app(tag: str | None = NEW_TAG, running: str = OLD_TAG, **kw: Any) -> dict[str, Any]:
    return make_application(PROD, REGION, tag=tag, running_tag=running, **kw)


def staging_app(tag: str = NEW_TAG, **kw: Any) -> dict[str, Any]:
    return make_application(STAGING, REGION, tag=tag, running_tag=tag, **kw)


def image(tag: str = NEW_TAG, digest: str | None = None) -> ImageRef:
    return ImageRef(REPO, tag, digest)


# --------------------------------------------------------------------------------------------
# Image references
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "registry", "repository", "tag", "digest"),
    [
        ("111122223333.dkr.ecr.us-west-2.amazonaws.com/shop/web:1.2", "111122223333.dkr.ecr.us-west-2.amazonaws.com",
         "shop/web", "1.2", None),
        ("localhost:5000/shop/web:t@" + DIGEST, "localhost:5000", "shop/web", "t", DIGEST),
        ("localhost/web", "localhost", "web", None, None),
        ("shop/web:20260102.100000-abc1234", None, "shop/web", "20260102.100000-abc1234", None),
        ("shop/web@" + DIGEST, None, "shop/web", None, DIGEST),
        ("nginx", None, "nginx", None, None),
    ],
)  # fmt: skip
def test_parse_image(
    reference: str, registry: str | None, repository: str, tag: str | None, digest: str | None
) -> None:
    assert parse_image(reference) == ImageRef(repository, tag, digest, registry)


_component = st.from_regex(r"[a-z0-9]+(?:[._-][a-z0-9]+)*", fullmatch=True).filter(lambda s: len(s) <= 30)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}", fullmatch=True)
_host = st.sampled_from(
    ["444455556666.dkr.ecr.eu-west-1.amazonaws.com", "localhost:5000", "registry.example.com"]
)


@given(
    host=st.none() | _host,
    path=st.lists(_component, min_size=1, max_size=3).map("/".join),
    tag=st.none() | _tag,
    digest=st.none() | st.just(DIGEST),
)
def test_parse_image_round_trips(host: str | None, path: str, tag: str | None, digest: str | None) -> None:
    if host is None and "." in path.split("/")[0] and "/" in path:
        return  # ambiguous by the grammar: a dotted first component is a registry
    ref = ImageRef(path, tag, digest, host)
    text = (f"{host}/" if host else "") + str(ref)
    assert parse_image(text) == ref


def test_same_image_ignores_the_registry_and_compares_digests_only_when_both_know_one() -> None:
    staging = parse_image(f"{naming.image_repository(STAGING.account_id, REGION, 'shop', 'web')}:{NEW_TAG}")
    prod = parse_image(f"{naming.image_repository(PROD.account_id, REGION, 'shop', 'web')}:{NEW_TAG}")
    assert staging.registry != prod.registry and staging.same_image(prod)
    assert image().same_image(image(digest=DIGEST))
    assert not image(digest=DIGEST).same_image(image(digest="sha256:" + "cd" * 32))
    assert not image().same_image(image(OTHER_TAG))
    assert not image().same_image(ImageRef("shop/api", NEW_TAG))


def test_split_tag_value() -> None:
    assert split_tag_value(NEW_TAG) == (NEW_TAG, None)
    assert split_tag_value(f"{NEW_TAG}@{DIGEST}") == (NEW_TAG, DIGEST)


# --------------------------------------------------------------------------------------------
# What an Application would deploy
# --------------------------------------------------------------------------------------------


def test_desired_image_is_the_tag_image_updater_wrote() -> None:
    assert desired_image(prod_app(), REPO, SERVICE) == (image(), None)


def test_desired_image_with_a_digest_in_the_tag_or_the_chart_pin() -> None:
    app = prod_app(tag=f"{NEW_TAG}@{DIGEST}")
    assert desired_image(app, REPO, SERVICE) == (image(digest=DIGEST), None)
    pinned = prod_app()
    pinned["spec"]["source"]["helm"]["parameters"].append(
        {"name": f"image.digest.{SERVICE}", "value": DIGEST}
    )
    assert desired_image(pinned, REPO, SERVICE) == (image(digest=DIGEST), None)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda a: a["spec"]["source"]["helm"].update(parameters=[]), "no Helm parameter image.tag"),
        (
            lambda a: a["spec"]["source"]["helm"]["parameters"][1].update(value=""),
            "no Helm parameter image.tag",
        ),
        (
            lambda a: a["spec"].update(
                sources=[
                    {"repoURL": "x", "helm": {"parameters": [{"name": "image.tag", "value": OTHER_TAG}]}}
                ]
            ),
            "ambiguous",
        ),
        (
            lambda a: a["spec"]["source"]["helm"]["parameters"][1].update(value="t@sha256:nothex"),
            "malformed digest",
        ),
        (
            lambda a: a["spec"]["source"]["helm"]["parameters"][0].update(
                value="1.dkr.ecr.x.amazonaws.com/shop/api"
            ),
            "not an image of shop/web",
        ),
    ],
    ids=["no-parameter", "empty", "two-sources-disagree", "bad-digest", "other-repository"],
)
def test_desired_image_refuses_what_it_cannot_read(change: Any, problem: str) -> None:
    app = prod_app()
    change(app)
    found, why = desired_image(app, REPO, SERVICE)
    assert found is None and why is not None and problem in why


def test_running_images_are_the_sentinel_repository_only() -> None:
    assert running_images(prod_app(), REPO) == (
        ImageRef(REPO, OLD_TAG, None, naming.registry_host(PROD.account_id, REGION)),
    )


# --------------------------------------------------------------------------------------------
# Verification against staging
# --------------------------------------------------------------------------------------------


def test_staging_synced_and_healthy_on_the_same_image_verifies() -> None:
    result = verify(image(), staging_app())
    assert result.verified
    assert naming.application_name("shop", "staging", REGION) in result.reason


@pytest.mark.parametrize(
    ("app", "words"),
    [
        (staging_app(OTHER_TAG), [f"runs shop/web:{OTHER_TAG}", f"not shop/web:{NEW_TAG}"]),
        (staging_app(health="Degraded"), ["Synced/Degraded", "not yet Synced and Healthy"]),
        (staging_app(health="Progressing"), ["Synced/Progressing"]),
        (staging_app(sync="OutOfSync"), ["OutOfSync/Healthy"]),
    ],
    ids=["other-tag", "degraded", "progressing", "out-of-sync"],
)
def test_staging_not_running_the_image_healthy_is_not_verified(app: dict[str, Any], words: list[str]) -> None:
    result = verify(image(), app)
    assert not result.verified
    for word in words:
        assert word in result.reason


def test_staging_reporting_no_sentinel_image_is_not_verified() -> None:
    app = staging_app()
    app["status"]["summary"]["images"] = [i for i in app["status"]["summary"]["images"] if "/web:" not in i]
    result = verify(image(), app)
    assert not result.verified and "reports no image of shop/web" in result.reason


def test_a_digest_disagreement_is_not_verified() -> None:
    app = staging_app()
    app["status"]["summary"]["images"][-1] += "@sha256:" + "cd" * 32
    assert not verify(image(digest=DIGEST), app).verified
    assert verify(image(digest="sha256:" + "cd" * 32), app).verified


# --------------------------------------------------------------------------------------------
# Before the sync
# --------------------------------------------------------------------------------------------


def test_up_to_date_only_when_synced_healthy_and_running_the_image() -> None:
    assert is_up_to_date(prod_app(running=NEW_TAG), image())
    assert not is_up_to_date(prod_app(), image())
    assert not is_up_to_date(prod_app(running=NEW_TAG, health="Degraded"), image())
    assert not is_up_to_date(prod_app(running=NEW_TAG, sync="OutOfSync"), image())


def test_operation_in_progress() -> None:
    assert operation_in_progress(prod_app()) is None
    queued = prod_app()
    queued["operation"] = {"initiatedBy": {"username": "carol"}, "sync": {}}
    assert "carol" in (operation_in_progress(queued) or "")
    running = prod_app()
    running["status"]["operationState"]["phase"] = "Running"
    assert "running" in (operation_in_progress(running) or "")


def test_sync_revision_prefers_the_compared_commit() -> None:
    app = prod_app()
    assert sync_revision(app) == app["status"]["sync"]["revision"]
    del app["status"]["sync"]["revision"]
    assert sync_revision(app) == PROD.application.revision


# --------------------------------------------------------------------------------------------
# The sync patch, against the CRD
# --------------------------------------------------------------------------------------------


def patch_body(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "username": "github:alice",
        "deploy_id": "d1",
        "image": image(),
        "verified": "yes",
        "reason": "python -m infra.deploy prod",
        "revision": "a" * 40,
        "resource_version": "7",
        "sources": sync_sources(prod_app()),
    }
    args.update(kw)
    return operation_patch(**args)


def test_patch_has_the_documented_operation_shape() -> None:
    body = patch_body()
    assert body["metadata"] == {"resourceVersion": "7"}
    operation = body["operation"]
    assert operation["initiatedBy"] == {"username": "github:alice"}
    assert operation["sync"] == {
        "revision": "a" * 40,
        "syncStrategy": {"hook": {}},
        "prune": True,
        "syncOptions": ["PruneLast=true"],
        "source": prod_app()["spec"]["source"],
    }
    assert {i["name"]: i["value"] for i in operation["info"]}["image"] == f"shop/web:{NEW_TAG}"
    assert "revision" not in patch_body(revision=None)["operation"]["sync"]
    assert "metadata" not in patch_body(resource_version=None)


def test_the_operation_pins_a_copy_of_the_verified_source_with_its_parameters() -> None:
    app = prod_app()
    pinned = sync_sources(app)
    assert pinned == {"source": app["spec"]["source"]}
    tags = [p["value"] for p in pinned["source"]["helm"]["parameters"] if p["name"] == "image.tag"]
    assert tags == [NEW_TAG]
    app["spec"]["source"]["helm"]["parameters"].clear()  # a later change does not reach the copy
    assert pinned["source"]["helm"]["parameters"]


def test_a_multi_source_application_pins_its_sources_as_the_api_server_does() -> None:
    app = prod_app()
    source = app["spec"].pop("source")
    app["spec"]["sources"] = [source, {"repoURL": "https://example.com/values.git", "ref": "values"}]
    assert sync_sources(app) == {"sources": app["spec"]["sources"]}
    del app["spec"]["sources"]
    with pytest.raises(ValueError, match=r"neither spec\.source nor spec\.sources"):
        sync_sources(app)


@pytest.mark.shared
@pytest.mark.parametrize("revision", ["a" * 40, None])
def test_patched_application_is_valid_against_the_crd_and_nothing_is_pruned(revision: str | None) -> None:
    # crd_errors makes the structural schema strict: a field the API server would silently
    # prune (a misspelt syncStrategy, say) is an error here.
    app = prod_app()
    assert crd_errors(app) == []
    patched = merge_patch(app, patch_body(revision=revision))
    assert crd_errors(patched) == []
    misspelt = patch_body()
    misspelt["operation"]["sync"]["syncstrategy"] = misspelt["operation"]["sync"].pop("syncStrategy")
    assert crd_errors(merge_patch(app, misspelt)) != []


# --------------------------------------------------------------------------------------------
# Progress of the sync
# --------------------------------------------------------------------------------------------


def started(app: dict[str, Any], phase: str, deploy_id: str = "d1", message: str = "") -> dict[str, Any]:
    app = copy.deepcopy(app)
    operation = patch_body(deploy_id=deploy_id)["operation"]
    app["status"]["operationState"] = {"operation": operation, "phase": phase, "message": message}
    return app


def finished(tag: str = NEW_TAG, health: str = "Healthy", sync: str = "Synced") -> dict[str, Any]:
    app = started(prod_app(tag=tag, running=tag, health=health, sync=sync), "Succeeded")
    app["status"]["operationState"]["syncResult"] = {"revision": "a" * 40, "source": app["spec"]["source"]}
    return app


def phase(app: dict[str, Any]) -> Phase:
    return assess(app, "d1", image(), SERVICE).phase


def test_assess_an_operation_not_yet_ours() -> None:
    assert phase(prod_app()) is Phase.QUEUED  # the previous sync's state
    queued = prod_app()
    queued["operation"] = patch_body()["operation"]
    assert phase(queued) is Phase.QUEUED
    assert phase(started(prod_app(), "Succeeded", deploy_id="someone-else")) is Phase.QUEUED


def test_assess_the_operation_lifecycle() -> None:
    assert phase(started(prod_app(), "Running")) is Phase.RUNNING
    assert phase(started(prod_app(), "Terminating")) is Phase.RUNNING
    assert phase(started(prod_app(), "Failed", message="boom")) is Phase.FAILED
    assert phase(started(prod_app(), "Error")) is Phase.FAILED
    assert phase(finished()) is Phase.SUCCEEDED
    assert phase(finished(health="Progressing")) is Phase.SETTLING
    assert phase(finished(sync="OutOfSync")) is Phase.SETTLING
    degraded = finished(health="Degraded")
    assert phase(degraded) is Phase.DEGRADED


def test_assess_waits_for_argo_cd_to_report_the_new_image() -> None:
    app = finished()
    app["status"]["summary"]["images"] = [
        i.replace(NEW_TAG, OLD_TAG) for i in app["status"]["summary"]["images"]
    ]
    assert phase(app) is Phase.SETTLING


def test_assess_fails_when_the_sync_applied_another_image() -> None:
    app = finished(tag=OTHER_TAG)
    result = assess(app, "d1", image(), SERVICE)
    assert result.phase is Phase.FAILED
    assert f"applied shop/web:{OTHER_TAG}" in result.detail


def test_exit_code_is_the_first_failure() -> None:
    assert exit_code([Outcome.SYNCED, Outcome.UNCHANGED]) is ExitCode.OK
    assert exit_code([Outcome.SYNCED, Outcome.DEGRADED, Outcome.NOT_STARTED]) is ExitCode.FAILED
    assert exit_code([Outcome.NOT_STARTED, Outcome.REFUSED, Outcome.API_ERROR]) is ExitCode.REFUSED
    assert exit_code([Outcome.TIMED_OUT]) is ExitCode.TIMED_OUT
    assert len({int(c) for c in ExitCode}) == len(ExitCode)


# --------------------------------------------------------------------------------------------
# Contract with issue 6: the deploy looks for what the ApplicationSet and Image Updater produce
# --------------------------------------------------------------------------------------------


def _generated_applications() -> list[dict[str, Any]]:
    appset = argocd_manifests.application_set(PROD)
    apps = []
    for region in PROD.region_names:
        secret = argocd_manifests.cluster_secret(
            PROD,
            region,
            cluster_name=naming.cluster_name(PROD.environment, region),
            endpoint=f"https://{region}.eks.example.com",
            vpc_id=fake_vpc_id(region),
            ca_data="Y2E=",
            traffic_facts=example_traffic_facts(PROD, region),
        )
        apps.append(render_template(appset["spec"]["template"], cluster_generator_params(secret)))
    return apps


def test_the_deploy_finds_exactly_the_applications_the_application_set_generates() -> None:
    stacks = load_stacks("prod", "staging")
    key, _, value = stacks.label_selector.partition("=")
    generated = {a["metadata"]["name"]: a["metadata"]["labels"] for a in _generated_applications()}
    assert sorted(generated) == sorted(t.application for t in stacks.targets)
    assert all(labels.get(key) == value for labels in generated.values())
    staging_set = argocd_manifests.application_set(STAGING)
    assert staging_set["spec"]["template"]["metadata"]["labels"][key] != value  # staging's are not selected


def test_the_deploy_reads_the_parameters_and_repository_image_updater_writes() -> None:
    stacks = load_stacks("prod", "staging")
    updater = argocd_manifests.image_updater(PROD)
    for ref in updater["spec"]["applicationRefs"]:
        (watched,) = ref["images"]
        assert parse_image(watched["imageName"]).repository == stacks.repository
        target = watched["manifestTargets"]["helm"]
        app = prod_app()
        app["spec"]["source"]["helm"]["parameters"] = [
            {"name": target["name"], "value": watched["imageName"]},
            {"name": target["tag"], "value": NEW_TAG},
        ]
        assert desired_image(app, stacks.repository, stacks.service) == (image(), None)


# --- Argo Rollouts (issue 19) ----------------------------------------------------------------------


def test_canary_failure_reads_step_and_metric_from_the_abort_message() -> None:
    message = (
        "RolloutAborted: Rollout aborted update to revision 4: Step-based analysis phase error/failed: "
        'Metric "step-1-response-time" assessed Failed due to failed (2) > failureLimit (1)'
    )
    failure = deploy_model.canary_failure(message)
    assert (failure.step, failure.metric, failure.phase) == (1, "response-time", "Failed")
    assert failure.why == "failed (2) > failureLimit (1)"
    # An abort without an analysis (by hand, a progress deadline) keeps the whole message.
    by_hand = deploy_model.canary_failure("RolloutAborted: Rollout aborted update to revision 4")
    assert (by_hand.step, by_hand.metric) == (None, None) and "revision 4" in by_hand.why


def test_rollout_states_need_persisted_health_and_ignore_other_kinds() -> None:
    app = {
        "status": {
            "resources": [
                {"group": "apps", "kind": "Deployment", "name": "old", "health": {"status": "Healthy"}},
                {"group": "argoproj.io", "kind": "Rollout", "name": "b", "health": {"status": "Suspended"}},
                {"group": "argoproj.io", "kind": "Rollout", "name": "a", "health": {"status": "Healthy"}},
            ]
        }
    }
    states = deploy_model.rollout_states(app)
    assert states is not None
    assert [(r.name, r.phase, r.done) for r in states] == [("a", "Healthy", True), ("b", "Paused", False)]
    assert deploy_model.rollout_states({"status": {"resources": []}}) == []


# --------------------------------------------------------------------------------------------
# Rollouts: the one reader (rollout_state for a Rollout object, rollout_states for the health the
# hub persists in an Application), shared by the deploy and the fleet view. Moved here with the
# fleet's former copy (infra/rollout_status.py).
# --------------------------------------------------------------------------------------------


def _rollout(index: int | None, phase: str, *, abort: bool = False, **status: Any) -> dict[str, Any]:
    steps = [{"setWeight": 20}, {"pause": {"duration": "5m"}}, {"setWeight": 50}, {"pause": {}}]
    body: dict[str, Any] = {"phase": phase, **status}
    if index is not None:
        body["currentStepIndex"] = index
    if abort:
        body["abort"] = True
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "shop-web"},
        "spec": {"strategy": {"canary": {"steps": steps}}},
        "status": body,
    }


def _app(*health: dict[str, str] | None) -> dict[str, Any]:
    resources: list[dict[str, Any]] = [{"group": "apps", "kind": "Deployment", "name": "other"}]
    for i, h in enumerate(health):
        entry: dict[str, Any] = {"group": "argoproj.io", "kind": "Rollout", "name": f"shop-{i}"}
        if h is not None:
            entry["health"] = h
        resources.append(entry)
    return {"status": {"resources": resources}}


def test_rollout_state_reads_step_weight_and_promotion() -> None:
    paused = deploy_model.rollout_state(
        _rollout(1, "Paused", message="CanaryPauseStep", canary={"weights": {"canary": {"weight": 20}}})
    )
    assert (paused.step_index, paused.steps, paused.weight, paused.done) == (1, 4, 20, False)
    # Four Rollout steps are not the chart's setWeight/pause/analysis triples: the Rollout's own index.
    assert paused.describe() == "shop-web: Paused at rollout step 1/4, weight 20% (CanaryPauseStep)"
    done = deploy_model.rollout_state(_rollout(4, "Healthy", stableRS="a", currentPodHash="a"))
    assert done.done and done.describe() == "shop-web: Healthy at rollout step 4/4"
    # Healthy but not promoted (the stable ReplicaSet is another one) is not done.
    assert not deploy_model.rollout_state(_rollout(2, "Healthy", stableRS="a", currentPodHash="b")).done


def test_the_hubs_health_message_gives_step_and_weight_and_keeps_the_abort_readable() -> None:
    run = 'Metric "step-2-error-rate" assessed Failed due to failed (1) > failureLimit (0)'
    aborted = (
        "RolloutAborted: Rollout aborted update to revision 3: Step-based analysis phase error/failed: "
        f"{run} [canary step 5/6, weight 0%]"
    )
    states = deploy_model.rollout_states(
        _app(
            {"status": "Suspended", "message": "CanaryPauseStep [canary step 1/6, weight 10%]"},
            {"status": "Degraded", "message": aborted},
            {"status": "Progressing", "message": "[canary step 2/6]"},
            {"status": "Healthy", "message": "[canary step 6/6, weight 100%]"},
        )
    )
    assert states is not None
    paused, failed, analysing, promoted = states
    assert (paused.phase, paused.message, paused.step_index, paused.steps, paused.weight) == (
        "Paused",
        "CanaryPauseStep",
        1,
        6,
        10,
    )
    assert failed.aborted and failed.step_index == 5 and failed.failure is not None
    assert (failed.failure.step, failed.failure.metric, failed.failure.why) == (
        2,
        "error-rate",
        "failed (1) > failureLimit (0)",
    )
    assert (analysing.message, analysing.step_index, analysing.weight) == ("", 2, None)
    assert promoted.done and promoted.describe() == "shop-3: Healthy at step 2/2"
    # The chart's step numbering, the one abort messages use (step-<n>-<metric>): Rollout step
    # index 1 (the first entry's pause) is chart step 1 of 2.
    assert paused.describe() == "shop-0: Paused at step 1/2, weight 10% (CanaryPauseStep)"
    assert failed.describe().startswith("shop-1: canary aborted at step 2,")


def test_a_rollout_paused_on_an_inconclusive_analysis_is_final_and_named_by_chart_step() -> None:
    """argo-rollouts v1.9.0: an Inconclusive step analysis adds the pause condition
    InconclusiveAnalysisRun (pkg/apis/rollouts/v1alpha1/types.go PauseReasonInconclusiveAnalysis),
    the paused Rollout's message is that reason alone (utils/rollout/rolloututil.go
    CalculateRolloutPhase), and it stays paused until promoted or aborted by hand. At the
    first entry's analysis (Rollout step index 2) that is chart step 1, as an abort would say."""
    states = deploy_model.rollout_states(
        _app({"status": "Suspended", "message": "InconclusiveAnalysisRun [canary step 2/6, weight 10%]"})
    )
    assert states is not None
    (state,) = states
    assert state.inconclusive and not state.aborted and not state.done
    assert state.chart_step() == (1, 2)
    text = state.describe()
    assert text.startswith("shop-0: analysis inconclusive at step 1/2, weight 10% (InconclusiveAnalysisRun)")
    assert "promotes or aborts" in text
    # A plain pause step is not inconclusive.
    states = deploy_model.rollout_states(
        _app({"status": "Suspended", "message": "CanaryPauseStep [canary step 4/6, weight 50%]"})
    )
    assert states is not None
    (paused,) = states
    assert not paused.inconclusive and paused.chart_step() == (2, 2)


def test_a_message_without_the_canary_part_is_kept_whole() -> None:
    read = deploy_model.read_health_message("Rollout is paused [not ours]")
    assert read == deploy_model.HealthMessage("Rollout is paused [not ours]")


def test_rollouts_without_persisted_health_are_unknown() -> None:
    assert deploy_model.rollout_states(_app(None)) is None
    states = deploy_model.rollout_states(
        _app({"status": "Degraded", "message": "RolloutAborted: Rollout aborted update"})
    )
    assert states is not None
    (aborted,) = states
    assert aborted.aborted and aborted.describe().startswith("shop-0: canary aborted")


def test_rollout_state_fields_exist_in_the_pinned_rollouts_crd() -> None:
    """The fields rollout_state (and the hub's health check) read are in the Rollout CRD the
    pinned argo-rollouts chart installs (../shared/crds/argo-rollouts/rollouts.argoproj.io.yaml)."""
    import yaml

    from tests.conftest import SHARED

    path = SHARED / "crds" / "argo-rollouts" / "rollouts.argoproj.io.yaml"
    if not path.exists():
        pytest.skip(f"{path} is absent (CI always has ../shared)")
    crd = yaml.safe_load(path.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    status = schema["status"]["properties"]
    assert {"phase", "message", "abort", "currentStepIndex", "stableRS", "currentPodHash"} <= set(status)
    assert "weight" in status["canary"]["properties"]["weights"]["properties"]["canary"]["properties"]
    assert "steps" in schema["spec"]["properties"]["strategy"]["properties"]["canary"]["properties"]

"""Argo Rollouts v1.9.0 behaviour the canary releases rely on (issue 19), one test per rule.

Sources: argoproj/argo-rollouts at tag v1.9.0 (transcribed in tests/contracts/rollouts_upstream.py),
the argo-rollouts 2.41.0 chart in ../shared/upstream-charts, and the Elastic Load Balancing guide
"CloudWatch metrics for your Application Load Balancer"
(https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html,
"Metric dimensions for Application Load Balancers").
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from infra import addons, deploy_model, versions
from infra.config import PROJECT_ROOT, load_stack_file
from infra.documents import addons_iam
from infra.manifests import argocd as argocd_manifests
from tests.argocd_support import (
    generated_applications,
    helm_template_application,
    image_updater_parameters,
    rendered_objects,
    require_shared,
    with_parameters,
)
from tests.contracts import rollouts_upstream as upstream
from tests.unit.test_chart_render import COMBOS, rendered
from tests.unit.test_chart_rollouts import routed
from tests.unit.test_chart_values import merged_values

STACKS = ("staging", "prod")
TAG = "20261122.063000-0123abc"
# ARNs of the shape ELBv2 gives (API_LoadBalancer / API_TargetGroup), and the dimension values
# the ELB guide gives for them: "LoadBalancer ... the final portion of the load balancer ARN
# (app/load-balancer-name/1234567890123456)", "TargetGroup ... the final portion of the target
# group ARN (targetgroup/target-group-name/1234567890123456)".
LB_ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/k8s-shop-shopingr-0a1b2c3d4e/50dc6c495c0c9188"
TG_ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/k8s-shop-shopwebc-9f8e7d6c5b/73e2d6bc24d8a067"
CLOUDWATCH_DIMENSIONS = {
    "LoadBalancer": "app/k8s-shop-shopingr-0a1b2c3d4e/50dc6c495c0c9188",
    "TargetGroup": "targetgroup/k8s-shop-shopwebc-9f8e7d6c5b/73e2d6bc24d8a067",
}


def canary_combos() -> list[tuple[str, str]]:
    return [(s, r) for s, r in COMBOS if merged_values(load_stack_file(s), r)["rollouts"]["enabled"]]


def release(stack: str, region: str) -> list[dict[str, Any]]:
    if shutil.which("helm") is None:
        pytest.skip("helm is not on PATH")
    return rendered(stack, region, *routed())


@pytest.mark.parametrize("stack", STACKS)
def test_the_controller_role_allows_exactly_the_aws_calls_of_v1_9_0(stack: str) -> None:
    """utils/aws/aws.go (ClientAdapter: DescribeLoadBalancers, DescribeTargetGroups, DescribeTags,
    DescribeListeners, DescribeRules, DescribeTargetHealth) and metricproviders/cloudwatch/
    cloudwatch.go (GetMetricData) are every AWS call of the controller; the role allows those, in
    its own region, and nothing else."""
    config = load_stack_file(stack)
    for region in config.addon_regions(addons.ARGO_ROLLOUTS):
        policy = addons.CATALOG[addons.ARGO_ROLLOUTS].policy
        assert policy is not None
        doc = policy(config, region)
        allowed = {a for s in doc["Statement"] for a in s["Action"]}
        assert allowed == upstream.ELB_CALLS_OF_THE_CONTROLLER | upstream.CLOUDWATCH_CALLS_OF_THE_PROVIDER
        for statement in doc["Statement"]:
            assert statement["Effect"] == "Allow"
            assert statement["Condition"] == {"StringEquals": {"aws:RequestedRegion": region}}
        assert set(addons_iam.ARGO_ROLLOUTS_ELB_ACTIONS) == upstream.ELB_CALLS_OF_THE_CONTROLLER


def test_the_chart_turns_on_weight_verification_and_gives_the_region() -> None:
    """rollout/trafficrouting/alb/alb.go VerifyWeight: without weight verification
    (``--aws-verify-target-group``) ``Status.ALB`` is nil and the analysis has no names to read.
    The argo-rollouts 2.41.0 chart adds the flag for ``controller.awsVerifyTargetGroup``
    (templates/controller/deployment.yaml); the AWS SDK reads the region from AWS_REGION
    (docs/analysis/cloudwatch.md "Setup"). Rendered from the real package with the add-on's values."""
    shared = require_shared()
    helm = shutil.which("helm")
    if helm is None:
        pytest.skip("helm is not on PATH")
    config = load_stack_file("prod")
    values = addons.argo_rollouts_values(config, None)
    values["controller"]["extraEnv"] = [{"name": "AWS_REGION", "value": "eu-west-1"}]
    package = (
        shared / "upstream-charts" / f"argo-rollouts-{versions.ADDON_CHARTS['argo-rollouts']['tested']}.tgz"
    )
    result = subprocess.run(
        [
            helm,
            "template",
            "argo-rollouts",
            str(package),
            "--namespace",
            addons.ARGO_ROLLOUTS_NAMESPACE,
            "-f",
            "-",
        ],
        input=yaml.safe_dump(values),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    (controller,) = [d for d in docs if d["kind"] == "Deployment"]
    pod = controller["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == addons.ARGO_ROLLOUTS_SERVICE_ACCOUNT
    (container,) = pod["containers"]
    assert "--aws-verify-target-group" in container["args"]
    assert {"name": "AWS_REGION", "value": "eu-west-1"} in container["env"]


@pytest.mark.parametrize(("stack", "region"), canary_combos())
def test_the_canary_analysis_reads_the_canary_target_groups_cloudwatch_series(
    stack: str, region: str
) -> None:
    """rollout/trafficrouting/alb/alb.go updateLoadBalancerStatus / updateTargetGroupStatus cut
    the type prefix off the ARNs' tails (fullName ``<name>/<id>``); utils/analysis/factory.go
    extractValueFromRollout reads them for ``valueFrom.fieldRef`` args and utils/template
    ResolveArgs puts them in the queries. The dimensions that reach GetMetricData must be the
    ones CloudWatch keys the load balancer's metrics by (ELB guide, see the module docstring)."""
    docs = release(stack, region)
    fronted = merged_values(load_stack_file(stack), region)["ingress"]["service"]
    templates = {d["metadata"]["name"]: d for d in docs if d["kind"] == "AnalysisTemplate"}
    (rollout,) = [
        d
        for d in docs
        if d["kind"] == "Rollout" and d["metadata"]["labels"]["app.kubernetes.io/component"] == fronted
    ]
    ingresses = upstream.alb_ingresses(rollout)
    # One canary target group per Ingress (the controller names them per Ingress), each judged.
    tg_arns = [
        TG_ARN.replace("73e2d6bc24d8a067", f"{i:016x}") if i else TG_ARN for i in range(len(ingresses))
    ]
    live = {**rollout, "status": upstream.alb_status(LB_ARN, tg_arns)}
    expected = [
        {**CLOUDWATCH_DIMENSIONS, "TargetGroup": "targetgroup/" + arn.split(":targetgroup/", 1)[1]}
        for arn in tg_arns
    ]
    steps = [s["analysis"] for s in rollout["spec"]["strategy"]["canary"]["steps"] if "analysis" in s]
    assert steps
    for step in steps:
        args = {
            a["name"]: upstream.field_ref(live, a["valueFrom"]["fieldRef"]["fieldPath"]) for a in step["args"]
        }
        (ref,) = step["templates"]
        template = templates[ref["templateName"]]
        assert {a["name"] for a in template["spec"]["args"]} == set(args)
        for metric in template["spec"]["metrics"]:
            queries = upstream.get_metric_data_queries(metric["provider"]["cloudWatch"]["metricDataQueries"])
            stats = [q["metricStat"] for q in queries if "metricStat" in q]
            by_name: dict[str, list[dict[str, str]]] = {}
            for stat in stats:
                dims = {
                    d["name"]: upstream.resolve_args(d["value"], args) for d in stat["metric"]["dimensions"]
                }
                by_name.setdefault(stat["metric"]["metricName"], []).append(dims)
                assert stat["metric"]["namespace"] == "AWS/ApplicationELB"
            # Each CloudWatch metric is read once per Ingress's canary target group.
            assert by_name, metric["name"]
            for name, dims_list in by_name.items():
                assert dims_list == expected, (metric["name"], name)


@pytest.mark.parametrize(("stack", "region"), canary_combos())
def test_the_judged_series_aggregates_every_ingresses_target_group(stack: str, region: str) -> None:
    """The platform's own steady traffic, Route 53's health checks (infra/traffic.py), reaches
    the region host's Ingress, whose target groups are its own (aws-load-balancer-controller
    v3.5.0 pkg/ingress/model_build_target_group.go: one target group per Ingress and Service
    port); users reach the public host's. The judged series (the one query returning data,
    ``result[0]``) must therefore combine the per-target-group queries of every Ingress: CloudWatch
    metric math SUM / MAX over an array of time series gives the per-timestamp sum / maximum
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html), so
    a minute with requests on either target group yields a datapoint."""
    docs = release(stack, region)
    fronted = merged_values(load_stack_file(stack), region)["ingress"]["service"]
    (rollout,) = [
        d
        for d in docs
        if d["kind"] == "Rollout" and d["metadata"]["labels"]["app.kubernetes.io/component"] == fronted
    ]
    count = len(upstream.alb_ingresses(rollout))
    templates = [
        d
        for d in docs
        if d["kind"] == "AnalysisTemplate"
        and d["metadata"]["labels"]["app.kubernetes.io/component"] == fronted
    ]
    assert templates
    for doc in templates:
        for metric in doc["spec"]["metrics"]:
            queries = metric["provider"]["cloudWatch"]["metricDataQueries"]
            (judged,) = [q for q in queries if q.get("returnData", True)]
            per_metric: dict[str, list[str]] = {}
            for q in queries:
                if "metricStat" in q:
                    per_metric.setdefault(q["metricStat"]["metric"]["metricName"], []).append(q["id"])
            assert per_metric, metric["name"]
            for ids in per_metric.values():
                assert len(ids) == count, (metric["name"], ids)
                # Aggregated in one array argument, never one id alone (which would drop a
                # minute only the other target group served).
                arrays = re.findall(r"\b(SUM|MAX)\(\[([^\]]*)\]\)", judged["expression"])
                assert any(
                    sorted(a.strip() for a in members.split(",")) == sorted(ids) for _, members in arrays
                ), (
                    metric["name"],
                    judged["expression"],
                )


@pytest.mark.parametrize(("stack", "region"), canary_combos())
def test_every_query_reaches_get_metric_data_whole(stack: str, region: str) -> None:
    """metricproviders/cloudwatch/cloudwatch.go convertType copies id, expression, label,
    metricStat, period and returnData only; a field beyond those would be dropped silently. Every
    metric-math expression names only ids of its own query list, and exactly one query per metric
    returns data (``result[0]`` is the judged series)."""
    for doc in release(stack, region):
        if doc["kind"] != "AnalysisTemplate":
            continue
        for metric in doc["spec"]["metrics"]:
            queries = upstream.get_metric_data_queries(metric["provider"]["cloudWatch"]["metricDataQueries"])
            ids = {q["id"] for q in queries}
            returned = [q for q in queries if q.get("returnData", True)]
            assert len(returned) == 1, (doc["metadata"]["name"], metric["name"])
            for q in queries:
                expression = q.get("expression", "")
                if "SEARCH(" in expression:
                    continue
                referenced = set(re.findall(r"\b([a-z][A-Za-z0-9_]*)\b", expression)) - {"FILL"}
                assert referenced <= ids, (metric["name"], expression)


@pytest.mark.parametrize(("stack", "region"), canary_combos())
def test_the_internal_services_search_matches_their_load_balancer_and_not_one_ending_like_it(
    stack: str, region: str
) -> None:
    """CloudWatch search expression syntax (User Guide, "Exact matches", "Partial matches",
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/search-expression-syntax.html;
    transcribed in rollouts_upstream.search_term_matches). The LoadBalancer dimension value is
    ``app/<name>/<id>`` (ELB guide), the id unknown when the chart renders, so an exact match
    is impossible; the partial term starts with the ``app`` token, so a name that merely ends with
    ours does not match. Known and documented limits: a name that extends ours (``<name>-x``)
    matches, and so does one with an ``app`` token right before ours (``x-app-<name>``)."""
    docs = release(stack, region)
    lb_id = CLOUDWATCH_DIMENSIONS["LoadBalancer"].rsplit("/", 1)[1]
    searched = 0
    for rollout in (d for d in docs if d["kind"] == "Rollout"):
        steps = [s["analysis"] for s in rollout["spec"]["strategy"]["canary"]["steps"] if "analysis" in s]
        templates = {d["metadata"]["name"]: d for d in docs if d["kind"] == "AnalysisTemplate"}
        for step in steps:
            args = {a["name"]: a["value"] for a in step["args"] if "value" in a}
            if "load-balancer-name" not in args:
                continue
            name = args["load-balancer-name"]
            (ref,) = step["templates"]
            for metric in templates[ref["templateName"]]["spec"]["metrics"]:
                for query in metric["provider"]["cloudWatch"]["metricDataQueries"]:
                    found = re.search(r"SEARCH\('[^']*\bLoadBalancer=(\S+?)'", query.get("expression", ""))
                    if found is None:
                        continue
                    searched += 1
                    term = upstream.resolve_args(found.group(1), args)
                    assert upstream.search_term_matches(term, f"app/{name}/{lb_id}")
                    assert not upstream.search_term_matches(term, f"app/old-{name}/{lb_id}")
                    # The limit the docs state, pinned so a change of rule is noticed.
                    assert upstream.search_term_matches(term, f"app/{name}-x/{lb_id}")
                    assert upstream.search_term_matches(term, f"app/x-app-{name}/{lb_id}")
                    # Why it cannot be exact: the whole value includes the id.
                    assert not upstream.search_term_matches(f'"{name}"', f"app/{name}/{lb_id}")
    assert searched, "no internal service searches the load balancer"


@pytest.mark.parametrize(("stack", "region"), canary_combos())
def test_a_measurement_without_data_never_passes(stack: str, region: str) -> None:
    """The cloudwatch provider evaluates the conditions on GetMetricData's MetricDataResults
    (``result[0].Values``; utils/evaluate/evaluate.go EvaluateResult, expr ``all`` true on an
    empty list). ELB publishes no datapoint when no request flows (ELB guide: "If there are no
    requests ... the metric is not reported"), so an empty window is no evidence: Inconclusive
    (the Rollout pauses) or Failed, as the stack's ``rollouts.analysis.noData`` says, never
    Successful. Values at the limit pass, one over it fails."""
    limits = merged_values(load_stack_file(stack), region)["rollouts"]["analysis"]
    no_data = {"inconclusive": upstream.INCONCLUSIVE, "failed": upstream.FAILED}[limits["noData"]]
    templates = [doc for doc in release(stack, region) if doc["kind"] == "AnalysisTemplate"]
    assert templates
    for doc in templates:
        metrics = {m["name"].split("-", 2)[2]: m for m in doc["spec"]["metrics"]}  # step-<n>-<metric>
        rate, latency = limits["maxErrorRate"], limits["maxResponseTimeSeconds"]
        for metric, limit in (("error-rate", rate), ("response-time", latency)):
            m = metrics[metric]
            assert upstream.measurement_phase(m, []) == no_data, metric
            assert upstream.measurement_phase(m, [0.0, limit]) == upstream.SUCCESSFUL, metric
            assert upstream.measurement_phase(m, [0.0, limit * 1.5 + 0.001]) == upstream.FAILED, metric
            # analysis/analysis.go assessMetricFailureInconclusiveOrError: one Inconclusive
            # measurement past inconclusiveLimit ends the run Inconclusive.
            assert m["inconclusiveLimit"] == 0


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"([0-9]+)(ms|s|m|h)", duration)
    assert "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * units[u] for n, u in parts)


@pytest.mark.parametrize(("stack", "region"), canary_combos())
def test_the_schedule_leaves_time_for_a_datapoint(stack: str, region: str) -> None:
    """ELB publishes one datapoint per 60 seconds (ELB guide); a measurement right after a
    step's pause must find a complete, published minute of the new weight, or it is the no-data
    case above (prod: the Rollout pauses; staging: the canary fails) for a healthy release. So
    every pause and the window are at least a period to the next minute boundary, the minute,
    and the publication delay (rollouts_upstream.seconds_until_a_datapoint, whose delay figure
    is an assumption: AWS documents none)."""
    cfg = merged_values(load_stack_file(stack), region)["rollouts"]
    needed = upstream.seconds_until_a_datapoint()
    for step in cfg["steps"]:
        assert _seconds(step["pause"]) >= needed, step
    assert _seconds(cfg["analysis"]["window"]) >= needed


# --- Rollout status, as the deploy reads it through Argo CD ---------------------------------------


def rollout(name: str, status: dict[str, Any], steps: int = 6) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "generation": 2},
        "spec": {"strategy": {"canary": {"steps": [{"pause": {}}] * steps}}},
        "status": {"observedGeneration": "2", **status},
    }


def application_with(*rollouts: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": {
            "resources": [
                {
                    "group": "argoproj.io",
                    "kind": "Rollout",
                    "name": r["metadata"]["name"],
                    "health": upstream.argocd_rollout_health(r),
                }
                for r in rollouts
            ]
        }
    }


def rollout_cases() -> dict[str, dict[str, Any]]:
    run = upstream.analysis_run_message("step-2-error-rate", "Failed", upstream.failure_limit_reason(1, 0))
    return {
        "aborted": rollout("shop-web", upstream.aborted_rollout_status(3, run, step_index=5, steps=6)),
        "paused": rollout(
            "shop-catalog",
            {
                "phase": upstream.PHASE_PAUSED,
                "message": upstream.PAUSE_REASON_CANARY_STEP,
                "currentStepIndex": 1,
                "stableRS": "a",
                "currentPodHash": "b",
            },
        ),
        "analysing": rollout(
            "shop-checkout",
            {
                "phase": upstream.PHASE_PROGRESSING,
                "message": upstream.WAITING_FOR_STEPS,
                "currentStepIndex": 2,
                "stableRS": "a",
                "currentPodHash": "b",
            },
        ),
        "promoted": rollout(
            "shop-payments",
            {"phase": upstream.PHASE_HEALTHY, "currentStepIndex": 6, "stableRS": "b", "currentPodHash": "b"},
        ),
    }


def test_argo_cd_surfaces_each_rollouts_phase_and_message_and_the_deploy_reads_both_alike() -> None:
    """argo-rollouts v1.9.0 computes status.phase/message (utils/rollout/rolloututil.go
    CalculateRolloutPhase; an aborted step analysis: rollout/analysis.go, rollout/sync.go); argo-cd
    v3.4.4 health.lua surfaces them as the resource's health (Paused as Suspended). The deploy's
    reading through the Application (``rollout_states``) and a direct reading of the Rollout
    (``rollout_state``, for the fleet view) agree on what matters: aborted or not, promoted or
    not, and which step and metric failed."""
    cases = rollout_cases()
    through_argocd = {r.name: r for r in deploy_model.rollout_states(application_with(*cases.values())) or ()}
    for case, obj in cases.items():
        direct = deploy_model.rollout_state(obj)
        seen = through_argocd[obj["metadata"]["name"]]
        assert (seen.phase, seen.aborted, seen.done) == (direct.phase, direct.aborted, direct.done), case
        assert seen.failure == direct.failure, case
    aborted = through_argocd["shop-web"]
    assert aborted.failure is not None
    assert (aborted.failure.step, aborted.failure.metric, aborted.failure.phase) == (
        2,
        "error-rate",
        "Failed",
    )
    assert deploy_model.rollout_state(cases["aborted"]).step_index == 5
    assert [name for name, r in through_argocd.items() if r.done] == ["shop-payments"]


def test_through_the_hubs_own_health_check_the_deploy_also_reads_step_and_weight() -> None:
    """The same cases through the hub's Rollout health check itself (Argo CD's health.lua plus
    the canary part, run in Lua: infra/manifests/rollout_health.py), not the transcription: the
    deploy's one reader gets the direct reading's phase, abort, failure, step and weight."""
    from infra.manifests import rollout_health
    from tests.contracts.test_rollout_health_lua import _run

    cases = rollout_cases()
    cases["paused"]["status"]["canary"] = {"weights": {"canary": {"weight": 10}, "stable": {"weight": 90}}}
    app = {
        "status": {
            "resources": [
                {
                    "group": "argoproj.io",
                    "kind": "Rollout",
                    "name": r["metadata"]["name"],
                    "health": _run(rollout_health.rollout_health_lua(), r),
                }
                for r in cases.values()
            ]
        }
    }
    seen = {r.name: r for r in deploy_model.rollout_states(app) or ()}
    for case, obj in cases.items():
        direct = deploy_model.rollout_state(obj)
        got = seen[obj["metadata"]["name"]]
        assert (got.phase, got.aborted, got.failure, got.message) == (
            direct.phase,
            direct.aborted,
            direct.failure,
            direct.message,
        ), case
        assert (got.step_index, got.steps, got.weight) == (direct.step_index, direct.steps, direct.weight), (
            case
        )
    assert seen["shop-catalog"].weight == 10


def test_a_spec_change_the_controller_has_not_seen_is_not_done() -> None:
    """utils/rollout/rolloututil.go GetRolloutPhase and health.lua isGenerationObserved: until
    status.observedGeneration equals metadata.generation the Rollout is Progressing, whatever its
    last phase said: a deploy must not take the previous release's Healthy for this one."""
    promoted = rollout_cases()["promoted"]
    promoted["metadata"]["generation"] = 3
    assert not deploy_model.rollout_state(promoted).done
    states = deploy_model.rollout_states(application_with(promoted))
    assert states is not None
    (seen,) = states
    assert seen.phase == "Progressing" and not seen.done


def test_the_hub_persists_resource_health_in_the_application() -> None:
    """argo-cd v3.4.4 docs/operator-manual/upgrading/2.14-3.0.md ("Health status in the
    Application CR"): since 3.0 status.resources[].health is not persisted unless
    ``controller.resource.health.persist`` is true in argocd-cmd-params-cm; the argo-cd 10.1.1
    chart writes configs.params into that ConfigMap. Without it the deploy sees no Rollout's
    health and can name no aborted service."""
    for stack in STACKS:
        params = argocd_manifests.argocd_values(load_stack_file(stack))["configs"]["params"]
        assert params[argocd_manifests.RESOURCE_HEALTH_PERSIST] == "true"
    # Not persisted: the deploy says it cannot tell rather than guessing.
    unpersisted = {"status": {"resources": [{"group": "argoproj.io", "kind": "Rollout", "name": "x"}]}}
    assert deploy_model.rollout_states(unpersisted) is None


# --- ALB traffic routing through the program's own Ingresses --------------------------------------


def argocd_render(config: Any, region: str) -> list[dict[str, Any]]:
    """The region's Application as the ApplicationSet generates it (its helm.valuesObject carries
    the Ingress facts) rendered as the repo-server does."""
    if shutil.which("helm") is None:
        pytest.skip("helm is not on PATH")
    app = with_parameters(
        generated_applications(config)[region], image_updater_parameters(config, region, TAG)
    )
    return rendered_objects(
        helm_template_application(app, PROJECT_ROOT, config.region(region).kubernetes_version)
    )


@pytest.mark.parametrize(("stack", "region"), canary_combos())
def test_the_alb_router_finds_its_rule_and_the_controller_reads_its_action(stack: str, region: str) -> None:
    """argo-rollouts v1.9.0: rollout/trafficrouting/alb/alb.go SetWeightPerIngress patches each of
    ``alb.ingresses`` with the annotation ``alb.ingress.kubernetes.io/actions.<rootService>``
    (utils/ingress/ingress.go ALBActionAnnotationKey), after checking the Ingress has a rule whose
    backend is that Service (HasRuleWithService; validation_references.go validateAlbIngress);
    the forward action names the canary and stable Services on ``alb.servicePort``
    (getForwardActionString), with Ping-Pong the ping and pong Services by turns
    (trafficrouting/service_helper.go GetStableAndCanaryServices; validation.go requires
    rootService with pingPong). aws-load-balancer-controller v3.5.0
    docs/guide/ingress/annotations.md: the action's name must be the rule's serviceName and its
    servicePort ``use-annotation``; ``load-balancer-name`` is Exclusive in an IngressGroup (one
    value on every Ingress) and at most 32 characters."""
    config = load_stack_file(stack)
    if config.traffic is None:
        pytest.skip(f"{stack} has no platform:traffic: no Ingress to route through")
    objects = argocd_render(config, region)
    ingresses = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Ingress"}
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    routed = [
        o for o in objects if o["kind"] == "Rollout" and "trafficRouting" in o["spec"]["strategy"]["canary"]
    ]
    (rollout,) = routed
    service = upstream.alb_action_service(rollout)
    assert sorted(upstream.alb_ingresses(rollout)) == sorted(ingresses)
    for ingress in ingresses.values():
        assert upstream.has_rule_with_service(ingress, service), ingress["metadata"]["name"]
        ports = [
            p["backend"]["service"]["port"]
            for rule in ingress["spec"]["rules"]
            for p in rule["http"]["paths"]
            if p["backend"]["service"]["name"] == service
        ]
        assert ports and all(port == {"name": "use-annotation"} for port in ports)
        # Rollouts owns the action: the chart must not render it (Argo CD would reset it).
        assert upstream.alb_action_annotation_key(rollout) not in ingress["metadata"]["annotations"]
    names = {
        i["metadata"]["annotations"]["alb.ingress.kubernetes.io/load-balancer-name"]
        for i in ingresses.values()
    }
    (lb_name,) = names
    assert len(lb_name) <= 32
    selector = rollout["spec"]["selector"]["matchLabels"]
    # Ping-Pong (validation.go ValidateRolloutStrategyCanary: both Services, distinct, rootService
    # set); the forward action names ping and pong, stable and canary by turns.
    assert upstream.validate_ping_pong(rollout) == []
    for stable_ping_pong in ("", "ping", "pong"):
        action = upstream.forward_action(rollout, 10, stable_ping_pong)
        targets = action["ForwardConfig"]["TargetGroups"]
        assert service not in {t["ServiceName"] for t in targets}
        for target in targets:
            svc = services[target["ServiceName"]]
            assert str(svc["spec"]["ports"][0]["port"]) == target["ServicePort"]
            assert svc["spec"]["selector"] == selector
    # The internal services' analyses look the load balancer up by that same name.
    names_read = {
        a["value"]
        for o in objects
        if o["kind"] == "Rollout" and o is not rollout
        for step in o["spec"]["strategy"]["canary"]["steps"]
        if "analysis" in step
        for a in step["analysis"]["args"]
    }
    assert names_read == {lb_name}

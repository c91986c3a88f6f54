"""Transcriptions of the Argo Rollouts v1.9.0 rules the canary releases rely on.

One function per rule, each naming the upstream file at tag v1.9.0 of argoproj/argo-rollouts
(``infra.versions.ARGO_ROLLOUTS_VERSION``; chart argo-rollouts 2.41.0). Only the branches the
platform reaches are transcribed; anything else raises, so a test cannot pass on a case the
transcription does not cover.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

ARGO_ROLLOUTS_VERSION = "v1.9.0"

# --- AWS calls -----------------------------------------------------------------------------------

# utils/aws/aws.go: the ELBv2APIClient interface and ClientAdapter's three methods.
# FindLoadBalancerByDNSName: DescribeLoadBalancers (paginated); GetTargetGroupMetadata:
# DescribeTargetGroups, DescribeTags, DescribeListeners, DescribeRules; GetTargetGroupHealth:
# DescribeTargetHealth. Callers: rollout/trafficrouting/alb/alb.go (VerifyWeightPerIngress:
# FindLoadBalancerByDNSName, GetTargetGroupMetadata) and rollout/service.go awsVerifyTargetGroups
# (GetTargetGroupHealth through aws.VerifyTargetGroupBinding).
ELB_CALLS_OF_THE_CONTROLLER = frozenset(
    {
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTags",
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeRules",
        "elasticloadbalancing:DescribeTargetHealth",
    }
)
# metricproviders/cloudwatch/cloudwatch.go CloudWatchClient.Query: GetMetricData, nothing else.
CLOUDWATCH_CALLS_OF_THE_PROVIDER = frozenset({"cloudwatch:GetMetricData"})


# --- status.alb ----------------------------------------------------------------------------------


def alb_status(load_balancer_arn: str, canary_target_group_arns: Sequence[str]) -> dict[str, Any]:
    """``status.alb`` and ``status.albs`` as the controller records them after verifying a weight,
    one canary target group per Ingress of ``alb.ingresses`` (in that order).

    rollout/trafficrouting/alb/alb.go ``VerifyWeight``: ``Status.ALBs`` has one entry per Ingress,
    filled in ``VerifyWeightPerIngress`` by index, and ``Status.ALB`` is overwritten for each, so it
    ends as the *last* Ingress's; ``updateLoadBalancerStatus``:
    ``FullName = strings.Join(strings.Split(arn, "/")[2:], "/")``; ``updateTargetGroupStatus``:
    ``FullName = strings.Join(strings.Split(arn, "/")[1:], "/")``. ``VerifyWeight`` sets both to
    nil unless weight verification is on (controller flag ``--aws-verify-target-group``).
    """
    lb_parts = load_balancer_arn.split("/")
    if len(lb_parts) <= 2 or any(len(arn.split("/")) <= 1 for arn in canary_target_group_arns):
        raise NotImplementedError("the error branches (unparsable ARN: empty fullName) are not transcribed")
    albs = [
        {
            "loadBalancer": {"arn": load_balancer_arn, "fullName": "/".join(lb_parts[2:])},
            "canaryTargetGroup": {"arn": arn, "fullName": "/".join(arn.split("/")[1:])},
        }
        for arn in canary_target_group_arns
    ]
    return {"alb": albs[-1], "albs": albs}


def field_ref(rollout: Mapping[str, Any], path: str) -> str:
    """utils/analysis/factory.go ``extractValueFromRollout``: the path split on ``.``, ``[``, ``]``
    walks the Rollout's JSON; a missing field or a non-primitive end is an error."""
    node: Any = rollout
    for section in re.split(r"[.\[\]]+", path):
        if section == "":
            continue
        if isinstance(node, list):
            if not section.isdigit() or int(section) >= len(node):
                raise KeyError(f"invalid index '{section}'")
            node = node[int(section)]
        elif not isinstance(node, Mapping) or node.get(section) is None:
            raise KeyError(f"invalid path {path} in rollout")
        else:
            node = node[section]
    if isinstance(node, (Mapping, list)):
        raise ValueError(f"path {path} in rollout must terminate in a primitive value")
    return str(node)


def resolve_args(template: str, args: Mapping[str, str]) -> str:
    """utils/template/template.go ``ResolveArgs``: ``{{args.<name>}}`` replaced by the argument's
    value (fasttemplate with tags ``{{`` ``}}``); an unknown tag is an error."""

    def one(match: re.Match[str]) -> str:
        key = match.group(1).strip()
        if not key.startswith("args.") or key[5:] not in args:
            raise KeyError(f"failed to resolve {{{{{key}}}}}")
        return args[key[5:]]

    return re.sub(r"\{\{(.*?)\}\}", one, template)


# --- the cloudwatch provider ---------------------------------------------------------------------

# metricproviders/cloudwatch/cloudwatch.go convertType: the fields of each CloudWatchMetricDataQuery
# copied into types.MetricDataQuery (Id, Expression, Label, MetricStat{Metric{Namespace,
# MetricName, Dimensions}, Period, Stat, Unit}, Period, ReturnData). Nothing else reaches AWS.
QUERY_FIELDS = frozenset({"id", "expression", "label", "metricStat", "period", "returnData"})
METRIC_STAT_FIELDS = frozenset({"metric", "period", "stat", "unit"})
METRIC_FIELDS = frozenset({"namespace", "metricName", "dimensions"})
DEFAULT_WINDOW = "5m"  # cloudwatch.go Run: interval := time.Minute * 5 unless provider.cloudWatch.interval


def get_metric_data_queries(queries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The MetricDataQueries the provider sends (convertType), refusing fields it drops."""
    out = []
    for q in queries:
        unknown = set(q) - QUERY_FIELDS
        if unknown:
            raise ValueError(f"fields the provider does not pass: {sorted(unknown)}")
        stat = q.get("metricStat")
        if stat is not None and (set(stat) - METRIC_STAT_FIELDS or set(stat["metric"]) - METRIC_FIELDS):
            raise ValueError("metricStat fields the provider does not pass")
        out.append(dict(q))
    return out


# utils/evaluate/evaluate.go EvaluateResult: the measurement phases.
SUCCESSFUL, FAILED, INCONCLUSIVE = "Successful", "Failed", "Inconclusive"

# The expr (github.com/antonmedv/expr v1.15.5, go.mod of v1.9.0) the chart writes, and only that:
# ``len(result[0].Values) <op> N``, ``all(result[0].Values, {# <op> N})``,
# ``any(result[0].Values, {# <op> N})``, joined by ``&&`` / ``||`` (``&&`` binds tighter, as in
# Python). Each piece becomes the Python of the same meaning; anything else raises.
_EXPR_PIECES = (
    (r"len\(result\[0\]\.Values\)", "len(V)"),
    (r"all\(result\[0\]\.Values, \{# (<=|<|>=|>|==) ([0-9.]+)\}\)", r"all(v \1 \2 for v in V)"),
    (r"any\(result\[0\]\.Values, \{# (<=|<|>=|>|==) ([0-9.]+)\}\)", r"any(v \1 \2 for v in V)"),
    (r"&&", " and "),
    (r"\|\|", " or "),
)
_PYTHON_LEFT = re.compile(
    r"^(\s|len\(V\)|(all|any)\(v (<=|<|>=|>|==) [0-9.]+ for v in V\)|<=|<|>=|>|==|[0-9.]+|and|or)*$"
)


def eval_condition(condition: str, values: Sequence[float]) -> bool:
    """utils/evaluate/evaluate.go EvalCondition with the cloudwatch provider's ``result``:
    GetMetricData's ``MetricDataResults`` (cloudwatch.go ``evaluate.EvaluateResult(
    result.MetricDataResults, ...)``), modelled as the one returned series whose ``Values`` are
    ``values`` (empty: the window held no datapoint; GetMetricData still returns the series).
    expr's ``all`` is true and ``any`` false on an empty list; ``len`` is the list's length."""
    python = condition
    for pattern, replacement in _EXPR_PIECES:
        python = re.sub(pattern, replacement, python)
    if not _PYTHON_LEFT.match(python):
        raise NotImplementedError(f"condition not transcribed: {condition}")
    return bool(eval(python, {"__builtins__": {"len": len, "all": all, "any": any}}, {"V": list(values)}))


def measurement_phase(metric: Mapping[str, Any], values: Sequence[float]) -> str:
    """utils/evaluate/evaluate.go EvaluateResult: with only a success condition, not meeting it
    fails; with both, failure wins, success needs its condition, and neither is Inconclusive.
    (No condition at all is Successful; the chart never writes that.)"""
    success, failure = metric.get("successCondition", ""), metric.get("failureCondition", "")
    if not success and not failure:
        raise NotImplementedError("a metric without conditions is not transcribed")
    ok = eval_condition(success, values) if success else False
    bad = eval_condition(failure, values) if failure else False
    if success and not failure:
        bad = not ok
    elif failure and not success:
        ok = not bad
    if bad:
        return FAILED
    return SUCCESSFUL if ok else INCONCLUSIVE


# The Elastic Load Balancing guide ("CloudWatch metrics for your Application Load Balancer"):
# "If there are requests flowing through the load balancer, Elastic Load Balancing measures and
# sends its metrics in 60-second intervals. If there are no requests ... the metric is not
# reported." AWS gives no figure for how late a datapoint becomes readable; one period of
# delay is this project's assumption, not a documented bound.
ELB_PERIOD_SECONDS = 60
ASSUMED_PUBLICATION_DELAY_SECONDS = 60


def seconds_until_a_datapoint() -> int:
    """How long after traffic starts (a setWeight) a window is sure to hold one complete,
    published one-minute datapoint of it: up to one period until the next minute boundary, the
    minute itself, then the publication delay."""
    return 2 * ELB_PERIOD_SECONDS + ASSUMED_PUBLICATION_DELAY_SECONDS


# --- CloudWatch SEARCH ----------------------------------------------------------------------------
# The Amazon CloudWatch User Guide, "CloudWatch search expression syntax"
# (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/search-expression-syntax.html):
# "Tokenization": tokens are split at camel-case capitals, numeric characters start new tokens,
# non-alphanumeric characters are delimiters, tokens are lowercase; "Partial matches": a term's
# tokens match a single token, or several that "appear consecutively in the original name"
# (composite, case sensitive); "Exact matches": a double-quoted term matches only the whole
# string; "Specifying property names": ``Name=term`` restricts the match to that dimension.

_TOKEN = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def cloudwatch_tokens(text: str) -> list[str]:
    """The single tokens of ``text``, in order (the doc's table: ``Project2-trial333`` gives
    project, 2, trial, 333; ``SDBFailure`` sdb, failure)."""
    return [t.lower() for t in _TOKEN.findall(text)]


def search_term_matches(term: str, value: str) -> bool:
    """Whether a ``Dimension=term`` search term matches a dimension value: exact when the term
    is double-quoted, else a partial match of the term's tokens, consecutive, in the value's.
    Mixed-case composite terms (case sensitive) are not transcribed."""
    if len(term) >= 2 and term[0] == term[-1] == '"':
        return term[1:-1] == value
    wanted = cloudwatch_tokens(term)
    if len(wanted) > 1 and term != term.lower():
        raise NotImplementedError("case-sensitive composite terms are not transcribed")
    have = cloudwatch_tokens(value)
    return bool(wanted) and any(
        have[i : i + len(wanted)] == wanted for i in range(len(have) - len(wanted) + 1)
    )


# --- Rollout status ------------------------------------------------------------------------------

# pkg/apis/rollouts/v1alpha1/types.go: RolloutPhase values and PauseReasonCanaryPauseStep.
PHASE_HEALTHY, PHASE_PROGRESSING, PHASE_PAUSED, PHASE_DEGRADED = (
    "Healthy",
    "Progressing",
    "Paused",
    "Degraded",
)
PAUSE_REASON_CANARY_STEP = "CanaryPauseStep"
# utils/rollout/rolloututil.go CalculateRolloutPhase, canary branch before full promotion.
WAITING_FOR_STEPS = "waiting for all steps to complete"


def failure_limit_reason(failed: int, limit: int) -> str:
    """analysis/analysis.go assessMetricStatus: the reason a metric failed past its failureLimit
    (analysis_test.go: ``failed (1) > failureLimit (0)``)."""
    return f"failed ({failed}) > failureLimit ({limit})"


def analysis_run_message(metric: str, phase: str, reason: str) -> str:
    """analysis/analysis.go: the AnalysisRun's status.message names its worst metric,
    ``Metric "<name>" assessed <phase> due to <reason>``."""
    return f'Metric "{metric}" assessed {phase} due to {reason}'


def aborted_rollout_status(revision: int, run_message: str, *, step_index: int, steps: int) -> dict[str, Any]:
    """The status of a Rollout whose step analysis failed.

    rollout/analysis.go reconcileStepBasedAnalysisRun: abort message
    ``"Step-based analysis phase error/failed: " + run.Status.Message``; rollout/sync.go: the
    Progressing condition (reason RolloutAborted) ``"Rollout aborted update to revision N: " +
    abort message``; utils/rollout/rolloututil.go CalculateRolloutPhase: phase Degraded, message
    ``"<reason>: <condition message>"``; ``status.abort`` true; the stable ReplicaSet stays the
    stable one (stableRS != currentPodHash)."""
    if step_index >= steps:
        raise ValueError("an aborted canary stops before its last step")
    message = f"Rollout aborted update to revision {revision}: Step-based analysis phase error/failed: {run_message}"
    return {
        "phase": PHASE_DEGRADED,
        "message": f"RolloutAborted: {message}",
        "abort": True,
        "currentStepIndex": step_index,
        "stableRS": "stable0hash",
        "currentPodHash": "canary0hash",
        "conditions": [
            {"type": "Progressing", "status": "False", "reason": "RolloutAborted", "message": message}
        ],
    }


def argocd_rollout_health(rollout: Mapping[str, Any]) -> dict[str, str]:
    """argo-cd v3.4.4 resource_customizations/argoproj.io/Rollout/health.lua for a Rollout the
    v1.0+ controller has reconciled (``status.phase`` set, generation observed): the phase as
    the health status, ``Paused`` renamed ``Suspended``, ``status.message`` as the message. The
    pre-1.0 branches are not transcribed."""
    status = rollout.get("status") or {}
    phase = status.get("phase")
    if phase is None:
        raise NotImplementedError("Rollouts before v1.0 (no status.phase) are not transcribed")
    observed = status.get("observedGeneration")
    if (
        observed is not None
        and str(observed).isdigit()
        and int(observed) != rollout["metadata"]["generation"]
    ):
        return {"status": "Progressing", "message": "Waiting for rollout spec update to be observed"}
    health = {"status": "Suspended" if phase == PHASE_PAUSED else str(phase)}
    if status.get("message"):
        health["message"] = str(status["message"])
    return health


# --- ALB traffic routing -------------------------------------------------------------------------

# pkg/apis/rollouts/v1alpha1/types.go DefaultRolloutUniqueLabelKey: the label Rollouts puts on each
# ReplicaSet's pods and adds to the selectors of the Services it manages (rollout/service.go).
DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY = "rollouts-pod-template-hash"

# utils/ingress/ingress.go ALBIngressAnnotation, ALBActionPrefix.
ALB_ANNOTATION_PREFIX = "alb.ingress.kubernetes.io"
ALB_ACTION_PREFIX = "/actions."


def alb_ingresses(rollout: Mapping[str, Any]) -> list[str]:
    """The Ingresses the ALB router manages: ``alb.ingresses`` when set, else ``alb.ingress``
    (rollout/trafficrouting/alb/alb.go SetWeight / VerifyWeight)."""
    alb = rollout["spec"]["strategy"]["canary"]["trafficRouting"]["alb"]
    return list(alb.get("ingresses") or [alb["ingress"]])


def alb_action_service(rollout: Mapping[str, Any]) -> str:
    """alb.go SetWeightPerIngress: ``rootService`` when set, else ``canary.stableService``."""
    canary = rollout["spec"]["strategy"]["canary"]
    return str(canary["trafficRouting"]["alb"].get("rootService") or canary["stableService"])


def stable_and_canary_services(rollout: Mapping[str, Any], stable_ping_pong: str = "") -> tuple[str, str]:
    """rollout/trafficrouting/service_helper.go ``GetStableAndCanaryServices(ro, true)`` (the ALB
    router prefers Ping-Pong): with ``canary.pingPong``, (ping, pong) when
    ``status.canary.stablePingPong`` is ``ping``, else (pong, ping) (``IsStablePing``: empty
    counts as pong); without it, (stableService, canaryService)."""
    canary = rollout["spec"]["strategy"]["canary"]
    ping_pong = canary.get("pingPong")
    if ping_pong:
        ping, pong = str(ping_pong["pingService"]), str(ping_pong["pongService"])
        return (ping, pong) if stable_ping_pong == "ping" else (pong, ping)
    return str(canary["stableService"]), str(canary["canaryService"])


def validate_ping_pong(rollout: Mapping[str, Any]) -> list[str]:
    """pkg/apis/rollouts/validation/validation.go ``ValidateRolloutStrategyCanary`` for
    ``pingPong``: both Services set and different, and with ALB routing a ``rootService``; and
    ``requireCanaryStableServices``: ALB routing without pingPong needs canaryService and
    stableService. Returns the messages (empty: valid)."""
    canary = rollout["spec"]["strategy"]["canary"]
    alb = (canary.get("trafficRouting") or {}).get("alb")
    ping_pong = canary.get("pingPong")
    errors = []
    if ping_pong is not None:
        if not ping_pong.get("pingService") or not ping_pong.get("pongService"):
            errors.append("Ping service and Pong service must to be set to use Ping-Pong feature")
        if ping_pong.get("pingService") == ping_pong.get("pongService"):
            errors.append("This rollout uses the same service for the ping and pong services")
        if alb is not None and not alb.get("rootService"):
            errors.append("rootService is required with pingPong")
    elif alb is not None and not (canary.get("stableService") and canary.get("canaryService")):
        errors.append("stableService and canaryService are required")
    return errors


def service_selectors_when_release_pods_are_created(
    rollout: Mapping[str, Any],
    rendered: Mapping[str, Mapping[str, str]],
    *,
    stable_ping_pong: str,
    stable_hash: str | None,
    new_hash: str,
) -> dict[str, dict[str, str]]:
    """The selectors of the Rollout's stable and canary Services at the moment the new
    ReplicaSet's pods are created (the ReplicaSet is created with 0 replicas, sync.go
    ``createDesiredReplicaSet``, and scaled up in ``reconcileCanaryReplicaSets``).

    ``rendered``: name -> the chart's selector (no ``rollouts-pod-template-hash``);
    ``stable_hash``: the hash Rollouts pinned on the stable Service earlier (None: never pinned).
    canary.go ``rolloutCanary`` runs ``reconcilePingAndPongService`` then
    ``reconcileStableAndCanaryService`` before ``reconcileCanaryReplicaSets``:

    - Ping-Pong (service.go ``reconcilePingAndPongService``): the canary Service is pointed at
      the new ReplicaSet at once (``ensureSVCTargets(..., checkRsAvailability=false)``);
      the stable one is never touched, so it keeps what it had (the chart's selector until it was
      a canary once).
    - stableService/canaryService (``reconcileStableAndCanaryService``): both are pointed at a
      ReplicaSet only once it is available (``checkRsAvailability=true``), so while the new pods
      are created both still select the stable ReplicaSet.
    """
    stable, canary = stable_and_canary_services(rollout, stable_ping_pong)

    def pinned(name: str, value: str | None) -> dict[str, str]:
        selector = dict(rendered[name])
        if value is not None:
            selector[DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY] = value
        return selector

    if rollout["spec"]["strategy"]["canary"].get("pingPong"):
        return {stable: pinned(stable, stable_hash), canary: pinned(canary, new_hash)}
    return {stable: pinned(stable, stable_hash), canary: pinned(canary, stable_hash)}


def alb_action_annotation_key(rollout: Mapping[str, Any]) -> str:
    """utils/ingress/ingress.go ALBActionAnnotationKey: ``<annotationPrefix>/actions.<action service>``."""
    prefix = rollout["spec"]["strategy"]["canary"]["trafficRouting"]["alb"].get("annotationPrefix")
    return f"{prefix or ALB_ANNOTATION_PREFIX}{ALB_ACTION_PREFIX}{alb_action_service(rollout)}"


def has_rule_with_service(ingress: Mapping[str, Any], service: str) -> bool:
    """utils/ingress/ingress.go HasRuleWithService (networking.k8s.io/v1): some rule path's
    backend is that Service. Without it SetWeightPerIngress fails ("ingress does not have
    service ... in rules") and the Rollout is invalid (validation_references.go validateAlbIngress)."""
    return any(
        ((path.get("backend") or {}).get("service") or {}).get("name") == service
        for rule in ingress["spec"].get("rules") or ()
        for path in (rule.get("http") or {}).get("paths") or ()
    )


def forward_action(rollout: Mapping[str, Any], weight: int, stable_ping_pong: str = "") -> dict[str, Any]:
    """alb.go getForwardActionString (no additional destinations, no stickiness): the canary
    Service at ``weight``, the stable one at the rest (``GetStableAndCanaryServices(r, true)``:
    :func:`stable_and_canary_services`), both on ``alb.servicePort`` as a string."""
    port = str(rollout["spec"]["strategy"]["canary"]["trafficRouting"]["alb"]["servicePort"])
    stable, canary = stable_and_canary_services(rollout, stable_ping_pong)
    return {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [
                {"ServiceName": canary, "ServicePort": port, "Weight": weight},
                {"ServiceName": stable, "ServicePort": port, "Weight": 100 - weight},
            ]
        },
    }

"""The Route 53 rules the failover and readmission figures are made of (docs/traffic.md,
"Failover time"; infra/traffic.py), one test per rule, each naming where it was read.

Route 53's health checkers are not available offline, so the rules are transcribed into a small
model of one checker (:func:`checker_detection`) and of Route 53's aggregation
(:func:`route53_healthy`); the figures must be the worst case the model reaches.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import botocore.session
import pytest

from infra import config as cfg
from infra import traffic

#: Route 53 Developer Guide, "How Amazon Route 53 determines whether a health check is healthy"
#: (https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-determining-health-of-endpoints.html):
#: "HTTP and HTTPS health checks - Route 53 must be able to establish a TCP connection with the
#: endpoint within four seconds. In addition, the endpoint must respond with an HTTP status code of
#: 2xx or 3xx within two seconds after connecting."
DOC_CONNECT_SECONDS = 4
DOC_RESPONSE_SECONDS = 2
#: The same page: "If more than 18% of health checkers report that an endpoint is healthy, Route 53
#: considers it healthy. If 18% of health checkers or fewer report that an endpoint is healthy,
#: Route 53 considers it unhealthy."
DOC_HEALTHY_SHARE = 0.18
#: Route 53 FAQ (https://aws.amazon.com/route53/faqs/), "Do I need to adjust the TTL of my records
#: in order to use DNS Failover?": alias records to ELB load balancers have a fixed TTL of 60 seconds;
#: Elastic Load Balancing's own docs give its DNS entries a TTL of 60 seconds as well.
DOC_ALIAS_TTL_SECONDS = 60
#: Route 53 FAQ and API Reference, GetChange (https://docs.aws.amazon.com/Route53/latest/APIReference/API_GetChange.html):
#: a change reaches all of Route 53's authoritative name servers within 60 seconds (PENDING, then INSYNC).
DOC_PROPAGATION_SECONDS = 60

STEP = 0.5  # the model's time grid, in seconds


@cache
def route53_shapes() -> Any:
    """botocore's Route 53 service model (data/route53/2013-04-01/service-2.json)."""
    return botocore.session.get_session().get_service_model("route53")


def documentation(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))


def grid(high: float) -> Iterator[float]:
    """STEP, 2 x STEP, ... up to ``high`` (durations of a request: above 0, at most the timeout)."""
    steps = int(high / STEP)
    return (STEP * i for i in range(1, steps + 1))


def checker_detection(
    *, phase: float, answer: float, fail: float, interval: int, threshold: int, comes_back: bool
) -> float:
    """One checker, as the docs describe it: it sends a request, gets its result ``answer``
    seconds later when the region answers or ``fail`` seconds later when it does not (both at most
    the request timeout), and sends the next request ``interval`` seconds after that result
    (botocore HealthCheckConfig ``RequestInterval``). Its status changes after ``threshold``
    consecutive results of the other kind (``FailureThreshold``).

    The region changes at t = 0: it stops answering (``comes_back`` False) or starts answering
    (True, a request sent before then fails). The checker's first request is sent at
    ``-phase``. Returns the time its status has changed."""
    sent, streak = -phase, 0
    while True:
        answered = sent >= 0 if comes_back else sent + answer <= 0
        end = sent + (answer if answered else fail)
        streak = streak + 1 if answered == comes_back else 0
        if streak == threshold:
            return end
        sent = end + interval


def worst_detection(interval: int, threshold: int, *, comes_back: bool) -> float:
    timeout = DOC_CONNECT_SECONDS + DOC_RESPONSE_SECONDS
    return max(
        checker_detection(
            phase=phase,
            answer=answer,
            fail=fail,
            interval=interval,
            threshold=threshold,
            comes_back=comes_back,
        )
        for phase in grid(interval + timeout)
        for answer in grid(timeout)
        for fail in grid(timeout)
    )


def route53_healthy(checker_says_healthy: list[bool]) -> bool:
    """Route 53's status of an endpoint from its checkers' reports (DOC_HEALTHY_SHARE)."""
    return sum(checker_says_healthy) > DOC_HEALTHY_SHARE * len(checker_says_healthy)


def bound_for(interval: int, threshold: int) -> traffic.FailoverBound:
    return traffic.FailoverBound(
        interval,
        threshold,
        traffic.ALIAS_TTL_SECONDS,
        traffic.REQUEST_TIMEOUT_SECONDS[traffic.HEALTH_CHECK_TYPE],
    )


SETTINGS = [(interval, threshold) for interval in cfg.HEALTH_CHECK_INTERVALS for threshold in (1, 3, 10)]


def test_an_https_request_fails_within_the_connect_and_response_timeouts() -> None:
    """Route 53 Developer Guide, "How Amazon Route 53 determines whether a health check is healthy":
    an HTTPS check connects within four seconds and gets its status within two seconds after
    connecting, so a failing request ends at most 4 + 2 seconds after it is sent."""
    assert traffic.HEALTH_CHECK_TYPE == "HTTPS"
    assert (traffic.HEALTH_CHECK_CONNECT_SECONDS, traffic.HEALTH_CHECK_RESPONSE_SECONDS) == (
        DOC_CONNECT_SECONDS,
        DOC_RESPONSE_SECONDS,
    )
    assert traffic.REQUEST_TIMEOUT_SECONDS["HTTPS"] == DOC_CONNECT_SECONDS + DOC_RESPONSE_SECONDS


@pytest.mark.parametrize(("interval", "threshold"), SETTINGS)
def test_the_interval_runs_from_a_result_to_the_next_request(interval: int, threshold: int) -> None:
    """botocore data/route53/2013-04-01/service-2.json, HealthCheckConfig ``RequestInterval``: "The
    number of seconds between the time that Amazon Route 53 gets a response from your endpoint and
    the time that it sends the next health check request". So one checker's cycle lasts up to
    interval + request timeout, and the worst detection is threshold x (interval + timeout)."""
    doc = documentation(
        route53_shapes().shape_for("HealthCheckConfig").members["RequestInterval"].documentation
    )
    assert (
        "between the time that Amazon Route 53 gets a response from your endpoint and the time that it sends "
        "the next health check request" in doc
    )
    assert (
        worst_detection(interval, threshold, comes_back=False)
        == bound_for(interval, threshold).detection_seconds
    )


@pytest.mark.parametrize(("interval", "threshold"), SETTINGS)
def test_the_threshold_counts_passes_as_it_counts_failures(interval: int, threshold: int) -> None:
    """botocore route53 service-2.json, HealthCheckConfig ``FailureThreshold``: "The number of
    consecutive health checks that an endpoint must pass or fail for Amazon Route 53 to change the
    current status". Readmission waits for as many passes, after a request sent just before the
    region answered has failed (at most one request timeout)."""
    doc = documentation(
        route53_shapes().shape_for("HealthCheckConfig").members["FailureThreshold"].documentation
    )
    assert "consecutive health checks that an endpoint must pass or fail" in doc
    bound = bound_for(interval, threshold)
    worst = worst_detection(interval, threshold, comes_back=True)
    assert bound.detection_seconds < worst <= bound.request_timeout_seconds + bound.detection_seconds


def test_route53_needs_more_than_18_percent_of_checkers_to_call_a_region_healthy() -> None:
    """Route 53 Developer Guide, "How Amazon Route 53 determines whether a health check is healthy":
    healthy when more than 18% of the checkers report it healthy. By the detection bound every
    checker of a region that answers none has changed its report, whatever its phase; a region that
    still answers a fifth of them stays healthy (docs/traffic.md: not covered by the figure)."""
    interval, threshold = 30, 3
    bound = bound_for(interval, threshold)
    timeout = bound.request_timeout_seconds
    phases = list(grid(interval + timeout))
    at = [
        checker_detection(
            phase=p, answer=timeout, fail=timeout, interval=interval, threshold=threshold, comes_back=False
        )
        for p in phases
    ]
    assert route53_healthy([True] * len(at))
    assert not route53_healthy([t > bound.detection_seconds for t in at])
    five = [True, False, False, False, False]
    assert route53_healthy(five)
    assert not route53_healthy([False] * 5)


def test_an_alias_to_a_load_balancer_is_cached_for_60_seconds() -> None:
    """Route 53 FAQ, "Do I need to adjust the TTL of my records in order to use DNS Failover?":
    an alias record to an ELB load balancer has a fixed TTL of 60 seconds (ExternalDNS writes alias
    records for ALBs, infra/traffic.py ALIAS_TTL_SECONDS), the last term of the failover figure."""
    assert traffic.ALIAS_TTL_SECONDS == DOC_ALIAS_TTL_SECONDS
    assert bound_for(30, 3).ttl_seconds == DOC_ALIAS_TTL_SECONDS


def test_a_record_change_reaches_every_name_server_before_it_counts() -> None:
    """Route 53 API Reference, GetChange (botocore route53 service-2.json: PENDING until "the
    changes have propagated to all Route 53 DNS servers managing the hosted zone", then INSYNC;
    the FAQ: within 60 seconds). The first term of readmission, when the rebuilt region's
    ExternalDNS writes its records again; failing over changes no record."""
    doc = documentation(route53_shapes().operation_model("GetChange").documentation)
    assert "INSYNC indicates that the changes have propagated to all Route 53 DNS servers" in doc
    assert traffic.RECORD_PROPAGATION_SECONDS == DOC_PROPAGATION_SECONDS

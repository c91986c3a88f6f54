"""``make bench``: the program's speed and the rebuild's critical path, measured in one run.

1. The offline plan of both stacks against its floor: the same interpreter importing the same
   SDK modules and running the mock runtime with a program that declares nothing.
   Target: at most 1.5 times the floor.
2. Scaling: a generated config with 12 regions and 60 services against the example config.
   Target: the time ratio is no larger than the resource-count ratio.
3. The rebuild critical path, from the plan's dependency graph and the table of typical AWS
   creation times below: a full stack, one spoke region and the hub, each against its floor
   (control plane + node group, plus the Argo CD release for the hub). Target: at most 1.1
   times the floor, and regions build in parallel.
4. A fresh clone's set-up time and 5. ``make test``'s peak memory, each against the figure before
   uv.lock: ``infra/setup_bench.py`` (slow; ``--no-setup`` leaves them out).
"""

from __future__ import annotations

import argparse
import copy
import ipaddress
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from infra import config as cfg
from infra import dr, graph, offline, setup_bench
from infra.offline import Plan, Resource

# Typical creation times on AWS, in seconds: what a rebuild waits for. Sources: EKS control
# planes take about 10 minutes and managed node groups a few more
# (https://docs.aws.amazon.com/eks/latest/userguide/create-cluster.html); NAT gateways about
# two minutes; an add-on about a minute to become ACTIVE; a Helm release with its pods ready
# (Argo CD HA) about two minutes. Everything else (VPC pieces, IAM, KMS, ECR, Kubernetes
# objects) is a few seconds. Components and providers cost nothing.
TYPICAL_SECONDS: dict[str, float] = {
    "eks:index:Cluster": 600.0,
    "aws:eks/nodeGroup:NodeGroup": 270.0,
    "aws:ec2/natGateway:NatGateway": 120.0,
    "aws:eks/addon:Addon": 60.0,
    "kubernetes:helm.sh/v3:Release": 120.0,
}
EVERYTHING_ELSE_SECONDS = 5.0
# pulumi-eks, in every `pulumi up` (never a preview) that declares a cluster with
# endpointPublicAccess, waits until GET <endpoint>/healthz answers 200: up to 60 tries, each a
# request with a 1 s timeout then a 5 s pause (pulumi/pulumi-eks nodejs/eks/cluster/cluster.ts
# createCore, main 7bf0c1b1 = v4.3.0 plus dependency-only commits; its log counts the pauses only,
# "up to 300 seconds"), then goes on. A machine the endpoint does not admit waits it all out, and
# the component's outputs (the kubeconfig, so everything reading the cluster) wait with it.
EKS_ENDPOINT_WAIT_SECONDS = 60 * (1.0 + 5.0)
# The prod deploy as the DR runbook counts it (deploy-prod.yml, infra/deploy.py): a workflow run
# until the deploy command starts (a CodeBuild runner per job, the OIDC sessions, the kubeconfigs:
# docs/github-actions.md budgets ten minutes for the set-up and the reads), once for the dry run
# and once for the deploy; then one region's Applications synced and Healthy on the verified
# image (the deploy waits for each region in regionOrder, at most deploy.timeoutSeconds, 900 s by
# default). Estimates, like the creation times above: a region already in sync finishes at once.
DEPLOY_RUN_SECONDS = 120.0
DEPLOY_REGION_SECONDS = 300.0
TYPICAL_TABLE_ROWS = (
    ("EKS control plane (eks:index:Cluster)", TYPICAL_SECONDS["eks:index:Cluster"]),
    ("managed node group", TYPICAL_SECONDS["aws:eks/nodeGroup:NodeGroup"]),
    ("NAT gateway", TYPICAL_SECONDS["aws:ec2/natGateway:NatGateway"]),
    ("EKS add-on", TYPICAL_SECONDS["aws:eks/addon:Addon"]),
    ("Helm release", TYPICAL_SECONDS["kubernetes:helm.sh/v3:Release"]),
    ("everything else", EVERYTHING_ELSE_SECONDS),
    ("pulumi-eks endpoint wait, endpoint that does not answer (DR runbook)", EKS_ENDPOINT_WAIT_SECONDS),
    ("prod deploy workflow run until the deploy starts (DR runbook)", DEPLOY_RUN_SECONDS),
    ("prod deploy, one region synced and Healthy (DR runbook)", DEPLOY_REGION_SECONDS),
)

PLAN_TARGET = 1.5
PATH_TARGET = 1.1


def seconds_of(r: Resource) -> float:
    if not r.custom and not r.remote:
        return 0.0  # a local component is bookkeeping
    if r.type.startswith("pulumi:providers:"):
        return 0.0
    return TYPICAL_SECONDS.get(r.type, EVERYTHING_ELSE_SECONDS)


# ---------------------------------------------------------------------------------------------
# 1. the plan against its floor
# ---------------------------------------------------------------------------------------------

_SDK_PREFIXES = ("pulumi", "pulumi_aws", "pulumi_eks", "pulumi_kubernetes", "pulumi_policy", "rich", "yaml")


def _child_modules() -> None:
    """Child: run the full plan and print the SDK modules it loaded."""
    from infra import plan as plan_cli

    with open(os.devnull, "w") as sink:
        stdout, sys.stdout = sys.stdout, sink
        try:
            plan_cli.main(["--stack", "all"])
        finally:
            sys.stdout = stdout
    names = sorted(m for m in sys.modules if m.split(".")[0] in _SDK_PREFIXES)
    print(json.dumps(names))


def _child_floor(modules: Sequence[str]) -> None:
    """Child: import the same SDK modules and run the mock runtime declaring nothing."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            # A module registered under an alias (e.g. a lazily loaded submodule) is counted
            # by the plan run but cannot be imported by name; it costs the floor nothing.
            continue
    offline.run("staging", program=lambda _config: {})
    offline.run("prod", program=lambda _config: {})


def _time(cmd: Sequence[str], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def measure_plan(repeats: int) -> dict[str, float]:
    modules = json.loads(
        subprocess.run(
            [sys.executable, "-m", "infra.bench", "--child", "modules"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    floor = _time(
        [sys.executable, "-m", "infra.bench", "--child", "floor", "--modules", json.dumps(modules)], repeats
    )
    full = _time([sys.executable, "-m", "infra.plan", "--stack", "all"], repeats)
    return {"plan": full, "floor": floor, "ratio": full / floor, "modules": float(len(modules))}


# ---------------------------------------------------------------------------------------------
# 2. scaling
# ---------------------------------------------------------------------------------------------


def generated_config(regions: int = 12, services: int = 60) -> dict[str, Any]:
    """The staging example grown to ``regions`` regions and ``services`` services."""
    raw = copy.deepcopy(cfg.read_stack_file(cfg.stack_file("staging")))
    template = next(iter(raw["platform:regions"].values()))
    names = [r for r in cfg.KNOWN_REGIONS if r != "us-west-2"][: regions - 1]
    out: dict[str, Any] = {"us-west-2": raw["platform:regions"]["us-west-2"]}
    for i, name in enumerate(names, start=1):
        body = copy.deepcopy(template)
        body["vpcCidr"] = str(ipaddress.ip_network(f"10.{100 + i}.0.0/16"))
        body["availabilityZones"] = [f"{name}a", f"{name}b", f"{name}c"]
        out[name] = body
    raw["platform:regions"] = out
    raw["platform:services"] = [f"svc{i:02d}" for i in range(services - 1)] + [
        raw["platform:sentinelService"]
    ]
    raw["platform:deploy"] = {"regionOrder": [*list(out)[1:], "us-west-2"], "timeoutSeconds": 900}
    return raw


def _child_scale(size: str) -> None:
    """Child: time one run of the example (``small``) or generated (``big``) config."""
    import gc

    offline.run("staging")  # imports and first-use caches are not what scales
    raw = generated_config() if size == "big" else None
    gc.collect()
    start = time.perf_counter()
    plan = offline.run("staging", flat_config=raw)
    print(json.dumps({"seconds": time.perf_counter() - start, "resources": len(plan.resources)}))


def _timed_run(size: str, repeats: int) -> tuple[float, int]:
    # A fresh process per sample: what one run leaves on the heap must not slow the next.
    samples, count = [], 0
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-m", "infra.bench", "--child", "scale", "--size", size],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result = json.loads(out)
        samples.append(result["seconds"])
        count = result["resources"]
    return statistics.median(samples), count


def measure_scaling(repeats: int) -> dict[str, float]:
    small_t, small_n = _timed_run("small", repeats)
    big_t, big_n = _timed_run("big", repeats)
    return {
        "small_seconds": small_t,
        "small_resources": float(small_n),
        "big_seconds": big_t,
        "big_resources": float(big_n),
        "time_ratio": big_t / small_t,
        "count_ratio": big_n / small_n,
    }


# ---------------------------------------------------------------------------------------------
# 3. the rebuild critical path
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PathFigure:
    name: str
    seconds: float
    floor: float
    path: tuple[str, ...]

    @property
    def ratio(self) -> float:
        return self.seconds / self.floor


def _durations(plan: Plan) -> dict[str, float]:
    return {r.urn: seconds_of(r) for r in plan.resources}


def region_floor(plan: Plan, region: str) -> float:
    floor = TYPICAL_SECONDS["eks:index:Cluster"] + TYPICAL_SECONDS["aws:eks/nodeGroup:NodeGroup"]
    if region == plan.config.hub_region:
        floor += TYPICAL_SECONDS["kubernetes:helm.sh/v3:Release"]
    return floor


def critical_paths(plan: Plan) -> list[PathFigure]:
    durations = _durations(plan)
    index = plan.by_urn()

    def label(urns: Sequence[str]) -> tuple[str, ...]:
        return tuple(f"{index[u].type} {index[u].name}" for u in urns if durations.get(u))

    figures = []
    total, path = graph.critical_path(plan, durations)
    full_floor = max(region_floor(plan, r) for r in plan.config.region_names)
    figures.append(PathFigure(f"full stack {plan.stack}", total, full_floor, label(path)))
    hub = plan.config.hub_region
    spoke = plan.config.spoke_regions[0] if plan.config.spoke_regions else hub
    for region in dict.fromkeys((spoke, hub)):
        targets, dependents = dr.rebuild_sets(plan, region)
        among = {r.urn for r in targets} | {r.urn for r in dependents}
        seconds, path = graph.critical_path(plan, durations, among)
        kind = "hub" if region == hub else "spoke"
        figures.append(
            PathFigure(f"{kind} {region} of {plan.stack}", seconds, region_floor(plan, region), label(path))
        )
    return figures


def sum_of_regions(plan: Plan) -> float:
    """What the stack would take if regions were built one after another."""
    durations = _durations(plan)
    regions = graph.region_index(plan)
    return sum(
        graph.critical_path(plan, durations, {u for u, r in regions.items() if r == region})[0]
        for region in plan.config.region_names
    )


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main(argv: Sequence[str] | None = None, prog: str = "platform bench") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per timing; the median counts")
    parser.add_argument(
        "--no-setup",
        action="store_true",
        help="leave out figures 4 and 5 (fresh clone: set-up time, make test memory)",
    )
    parser.add_argument("--child", choices=["modules", "floor", "scale"], help=argparse.SUPPRESS)
    parser.add_argument("--size", choices=["small", "big"], help=argparse.SUPPRESS)
    parser.add_argument("--modules", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "modules":
        _child_modules()
        return 0
    if args.child == "floor":
        _child_floor(json.loads(args.modules or "[]"))
        return 0
    if args.child == "scale":
        _child_scale(args.size or "small")
        return 0

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}"
    )
    ok = True

    plan_figures = measure_plan(args.repeats)
    met = plan_figures["ratio"] <= PLAN_TARGET
    ok &= met
    print(
        f"1. offline plan of both stacks: {plan_figures['plan']:.2f} s; floor (same interpreter, same "
        f"{int(plan_figures['modules'])} SDK modules, nothing declared): {plan_figures['floor']:.2f} s; "
        f"ratio {plan_figures['ratio']:.2f} (target <= {PLAN_TARGET}): {_verdict(met)}"
    )

    scaling = measure_scaling(args.repeats)
    met = scaling["time_ratio"] <= scaling["count_ratio"]
    ok &= met
    print(
        f"2. scaling: example {int(scaling['small_resources'])} resources in {scaling['small_seconds']:.2f} s; "
        f"12 regions x 60 services {int(scaling['big_resources'])} resources in {scaling['big_seconds']:.2f} s; "
        f"time ratio {scaling['time_ratio']:.2f} vs resource-count ratio {scaling['count_ratio']:.2f}: {_verdict(met)}"
    )

    print(
        "3. rebuild critical path (typical creation times: "
        + ", ".join(f"{n} {s:.0f} s" for n, s in TYPICAL_TABLE_ROWS)
        + ")"
    )
    for stack in ("staging", "prod"):
        plan = offline.run(stack)
        for fig in critical_paths(plan):
            met = fig.ratio <= PATH_TARGET
            ok &= met
            print(
                f"   {fig.name}: {fig.seconds / 60:.1f} min vs floor {fig.floor / 60:.1f} min, ratio {fig.ratio:.3f} "
                f"(target <= {PATH_TARGET}): {_verdict(met)}"
            )
            print("      path: " + " -> ".join(fig.path))
        serial = sum_of_regions(plan)
        full = critical_paths(plan)[0].seconds
        parallel = full < serial
        ok &= parallel
        print(
            f"   {stack}: regions one after another would take {serial / 60:.1f} min; the full stack takes "
            f"{full / 60:.1f} min (regions build in parallel: {'yes' if parallel else 'NO'})"
        )
    if not args.no_setup:
        ok &= setup_bench.report()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(prog="python -m infra.bench"))

"""The offline plan: what the program declares for a stack, without a cloud account.

    platform plan                                # tree of both stacks, with policy results
    platform plan --stack prod --json a.json     # deterministic JSON plan
    platform diff a.json --stack prod            # what changed against a saved plan

(``python -m infra.plan`` takes the same options as ``platform plan``.)

It runs the real program under Pulumi's mock runtime (see :mod:`infra.offline`), so it shows
the program's *desired state* from the stack files in this checkout. It is not a diff against
the live cloud: that is ``pulumi preview`` (``make preview STACK=...``).
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from infra import addons, naming, placeholders, traffic
from infra import config as cfg
from infra.offline import Plan, Resource, run

FORMAT_VERSION = 1
DESIRED_STATE_NOTE = (
    "This is the program's desired state under Pulumi's mock runtime, from the stack files in "
    "this checkout. It is not a diff against the live cloud; for that run `pulumi preview` "
    "(make preview STACK=<stack>)."
)


def available_stacks(root: Path = cfg.PROJECT_ROOT) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


# ---------------------------------------------------------------------------------------------
# JSON form
# ---------------------------------------------------------------------------------------------


def resource_json(r: Resource) -> dict[str, Any]:
    return {
        "urn": r.urn,
        "type": r.type,
        "name": r.name,
        "custom": r.custom,
        "parent": r.parent,
        "provider": r.provider or (r.providers or None),
        "dependencies": r.dependencies,
        "protect": r.protect,
        "retainOnDelete": r.retain_on_delete,
        "deleteBeforeReplace": r.delete_before_replace,
        "ignoreChanges": r.ignore_changes,
        "replaceOnChanges": r.replace_on_changes,
        "inputs": r.inputs,
    }


def plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "resources": sorted((resource_json(r) for r in plan.resources), key=lambda d: d["urn"]),
        "outputs": plan.outputs,
    }


def document(plans: Sequence[Plan]) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "note": DESIRED_STATE_NOTE,
        "stacks": {p.stack: plan_json(p) for p in plans},
    }


def dumps(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n"


# ---------------------------------------------------------------------------------------------
# Diff (by identity, replace vs update: infra/plan_diff.py)
# ---------------------------------------------------------------------------------------------


def render_diff(base: Mapping[str, Any], head: Mapping[str, Any]) -> tuple[str, int]:
    """Text of the diff of every stack in ``head`` against ``base``, and the number of changes."""
    # Imported here: deepdiff is needed only when a diff is asked for, and the plan's own start-up
    # time is measured against its floor (make bench).
    from infra import plan_diff

    return plan_diff.render(plan_diff.diff_documents(base, head), DESIRED_STATE_NOTE)


# ---------------------------------------------------------------------------------------------
# The tree and the highlights
# ---------------------------------------------------------------------------------------------


def _top_component(plan: Plan, r: Resource, index: Mapping[str, Resource]) -> Resource | None:
    current = r
    while current.parent and current.parent in index:
        parent = index[current.parent]
        if not parent.parent or parent.parent not in index:
            return parent
        current = parent
    return None if r.parent not in index else current


def group(plan: Plan) -> dict[str, dict[str, Counter[str]]]:
    """{region: {component: Counter(type)}} for every resource but components themselves."""
    index = plan.by_urn()
    out: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for r in plan.resources:
        if not r.custom and not r.remote:
            continue  # a local component is a grouping, not a cloud object
        region = plan.region_of(r) or "global"
        top = _top_component(plan, r, index)
        label = f"{top.type.split(':')[-1]} {top.name}" if top is not None else "(stack)"
        out[region][label][r.type] += 1
    return out


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, Mapping):
            return None
        d = d.get(p)
    return d


def highlights(plan: Plan) -> list[str]:
    """What matters at a glance, read from the declared resources (not from the config)."""
    lines: list[str] = []
    for r in plan.of_type("eks:index:Cluster"):
        public = r.inputs.get("publicAccessCidrs") if r.inputs.get("endpointPublicAccess") else "off"
        lines.append(
            f"cluster {r.inputs.get('name', r.name)} ({plan.region_of(r)}): Kubernetes "
            f"{r.inputs.get('version')}, auth {r.inputs.get('authenticationMode')}, public endpoint {public}"
        )
    for r in plan.of_type("aws:ecr/replicationConfiguration:ReplicationConfiguration"):
        rules = _get(r.inputs, "replicationConfiguration", "rules") or []
        dests = sorted(
            f"{d.get('registryId')}/{d.get('region')}" for rule in rules for d in rule.get("destinations", [])
        )
        lines.append(f"ECR replication from {plan.region_of(r)} to: {', '.join(dests)}")
    policies = plan.of_type("aws:ecr/registryPolicy:RegistryPolicy")
    if policies:
        lines.append(
            "ECR registry policies (replication in) in: "
            + ", ".join(sorted(str(plan.region_of(p)) for p in policies))
        )
    for r in plan.of_type("kubernetes:argoproj.io/v1alpha1:ApplicationSet"):
        sync = _get(r.inputs, "spec", "template", "spec", "syncPolicy") or {}
        mode = "automated" if sync.get("automated") is not None else "manual (deploy command)"
        detail = (
            f" prune={_get(sync, 'automated', 'prune')} selfHeal={_get(sync, 'automated', 'selfHeal')}"
            if sync.get("automated") is not None
            else ""
        )
        lines.append(
            f"ApplicationSet {_get(r.inputs, 'metadata', 'name')} on {plan.region_of(r)}: sync {mode}{detail}"
        )
    lines += addon_lines(plan)
    lines += eks_addon_lines(plan)
    lines += traffic_lines(plan)
    for r in plan.of_type("kubernetes:helm.sh/v3:Release"):
        lines.append(
            f"Helm release {r.inputs.get('name', r.name)} {r.inputs.get('chart')}@{r.inputs.get('version')}"
            f" on {plan.region_of(r)}"
        )
    for found in placeholders.find(plan.config):
        lines.append(f"placeholder, refused by a real pulumi preview/up: {found}")
    return lines


def _selects(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    # The add-on ApplicationSets select with matchLabels only (infra/addons.py).
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def addon_lines(plan: Plan) -> list[str]:
    """Per cluster Secret, the add-ons whose ApplicationSet selects it, with their chart versions:
    what Argo CD's cluster generator will deploy there (docs/addons.md)."""
    sets = [
        r
        for r in plan.of_type("kubernetes:argoproj.io/v1alpha1:ApplicationSet")
        if addons.LABEL_ADDON in (_get(r.inputs, "metadata", "labels") or {})
    ]
    lines = []
    for secret in plan.of_type("kubernetes:core/v1:Secret"):
        labels = _get(secret.inputs, "metadata", "labels") or {}
        if labels.get("argocd.argoproj.io/secret-type") != "cluster":
            continue
        running = []
        for app_set in sets:
            for generator in _get(app_set.inputs, "spec", "generators") or []:
                if _selects(_get(generator, "clusters", "selector") or {}, labels):
                    source = _get(app_set.inputs, "spec", "template", "spec", "source") or {}
                    running.append(f"{source.get('chart')} {source.get('targetRevision')}")
        name = _get(secret.inputs, "metadata", "name")
        lines.append(f"add-ons of {name}: {', '.join(sorted(running)) or 'none'}")
    return sorted(lines)


# What the plan shows for an EKS managed add-on declared without ``addonVersion``: CreateAddon
# then installs a version EKS lists itself (infra/versions.py EKS_ADDONS, API_CreateAddon).
EKS_DEFAULT_VERSION = "EKS default"


def eks_addon_item(addon: Mapping[str, Any]) -> str:
    """``<name> <version>`` of one ``aws:eks/addon:Addon``'s inputs, the version being
    ``addonVersion`` or EKS_DEFAULT_VERSION, followed by ``with <configurationValues>`` when the
    program sets them (vpc-cni's ``{"enableNetworkPolicy": "true"}``)."""
    item = f"{addon['addonName']} {addon.get('addonVersion') or EKS_DEFAULT_VERSION}"
    if addon.get("configurationValues"):
        item += f" with {addon['configurationValues']}"
    return item


def eks_addon_lines(plan: Plan) -> list[str]:
    """Per EKS cluster, the EKS managed add-ons the program declares for it (each region's
    ``aws:eks/addon:Addon`` resources, infra/components/cluster.py), sorted by name:
    ``EKS add-ons of <cluster>: <eks_addon_item>, ...`` (docs/addons.md "What each cluster runs").
    The GitOps add-ons are :func:`addon_lines`."""
    per_region: dict[str, list[str]] = defaultdict(list)
    for r in plan.of_type("aws:eks/addon:Addon"):
        per_region[str(plan.region_of(r))].append(eks_addon_item(r.inputs))
    return [
        f"EKS add-ons of {naming.cluster_name(plan.config.environment, region)}: {', '.join(sorted(items))}"
        for region, items in sorted(per_region.items())
    ]


def traffic_lines(plan: Plan) -> list[str]:
    """The way in, from the declared health checks, certificates and web ACLs: each region's name,
    its failover bound (infra/traffic.py, from the declared interval and threshold), or that
    nothing is reachable from outside."""
    checks = plan.of_type("aws:route53/healthCheck:HealthCheck")
    if not checks:
        return ["traffic: no platform:traffic, so the storefront is NOT reachable from outside the clusters"]
    acls = {str(plan.region_of(r)) for r in plan.of_type("aws:wafv2/webAcl:WebAcl")}
    certificates = {str(plan.region_of(r)) for r in plan.of_type("aws:acm/certificate:Certificate")}
    lines = []
    for r in sorted(checks, key=lambda c: str(c.inputs.get("fqdn"))):
        fqdn = str(r.inputs.get("fqdn"))
        region = fqdn.split(".", 1)[0]
        bound = traffic.FailoverBound(
            int(r.inputs.get("requestInterval", 30)),
            int(r.inputs.get("failureThreshold", 3)),
            traffic.ALIAS_TTL_SECONDS,
            traffic.REQUEST_TIMEOUT_SECONDS[str(r.inputs.get("type"))],
        )
        lines.append(
            f"traffic {region}: https://{fqdn}{r.inputs.get('resourcePath', '')} health-checked, failover "
            f"within {bound.formula()}; certificate {'yes' if region in certificates else 'NO'}, "
            f"WAF {'on' if region in acls else 'off'}"
        )
    return lines


def policy_rows(plan: Plan) -> list[tuple[str, str, str, str]] | None:
    """(policy, level, resource, message) per violation; None when the pack is unavailable."""
    try:
        from policies import offline as policy_offline  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    results = policy_offline.evaluate(plan)
    return [tuple(str(c) for c in row) for row in policy_offline.format_results(results)]  # type: ignore[misc]


def render(plans: Sequence[Plan], console: Any, tree: bool = True) -> int:
    """Print each stack's tree and highlights (unless ``tree`` is false) and its policy results.

    Returns the number of mandatory violations: the policy check runs whatever is printed.
    """
    from rich.panel import Panel
    from rich.table import Table
    from rich.tree import Tree

    if tree:
        console.print(Panel(DESIRED_STATE_NOTE, title="offline plan", expand=False))
    mandatory = 0
    for plan in plans:
        if tree:
            groups = group(plan)
            total = sum(sum(c.values()) for comps in groups.values() for c in comps.values())
            view = Tree(
                f"[bold]{plan.stack}[/bold] (environment {plan.config.environment}, account "
                f"{plan.config.account_id}, hub {plan.config.hub_region}): {total} resources"
            )
            for region in sorted(groups, key=lambda g: (g == "global", g)):
                comps = groups[region]
                region_total = sum(sum(c.values()) for c in comps.values())
                branch = view.add(f"[cyan]{region}[/cyan] ({region_total})")
                for comp in sorted(comps):
                    counts = comps[comp]
                    node = branch.add(f"{comp} ({sum(counts.values())})")
                    for type_, n in sorted(counts.items()):
                        node.add(f"{n} x {type_}")
            console.print(view)
            for line in highlights(plan):
                console.print(f"  • {line}", overflow="fold")
        rows = policy_rows(plan)
        if rows is None:
            console.print("  policy pack: not available in this checkout")
        elif not rows:
            console.print(f"  [green]policy pack: every rule passes for {plan.stack}[/green]")
        else:
            table = Table(title=f"policy results for {plan.stack}")
            for col in ("policy", "level", "resource", "message"):
                # Folded, never cut: a name or message with an ellipsis cannot be acted on.
                table.add_column(col, overflow="fold")
            for row in rows:
                table.add_row(*row)
                mandatory += row[1] == "mandatory"
            console.print(table)
        if tree and plan.outputs:
            console.print("  outputs: " + ", ".join(sorted(plan.outputs)))
        if tree:
            console.print()
    return mandatory


# ---------------------------------------------------------------------------------------------
# Command line (the `platform plan` command lives in infra/cli.py)
# ---------------------------------------------------------------------------------------------

#: Width of the output when it is not a terminal (CI logs, files): wide enough that no resource
#: name or policy message is cut. $COLUMNS, when set, wins.
NOT_A_TERMINAL_WIDTH = 240


def make_console(file: IO[str] | None = None) -> Any:
    """A rich console as wide as the terminal, or :data:`NOT_A_TERMINAL_WIDTH` when not a terminal."""
    from rich.console import Console

    stream = file or sys.stdout
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return Console(file=stream, width=int(columns))
    if stream.isatty():
        return Console(file=stream)
    return Console(file=stream, width=NOT_A_TERMINAL_WIDTH)


def build_plans(stacks: Iterable[str]) -> list[Plan]:
    return [run(s) for s in stacks]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m infra.plan ...``: the same as ``platform plan ...`` (kept for the CI base run,
    which must run the base branch's own code)."""
    from infra import cli

    return cli.main(["plan", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())

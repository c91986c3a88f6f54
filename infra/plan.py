"""The offline plan: what the program declares for a stack, without a cloud account.

    python -m infra.plan --stack all                 # tree of both stacks, with policy results
    python -m infra.plan --stack prod --json a.json  # deterministic JSON plan
    python -m infra.plan --stack prod --diff a.json  # what changed against a saved plan

It runs the real program under Pulumi's mock runtime (see :mod:`infra.offline`), so it shows
the program's *desired state* from the stack files in this checkout. It is not a diff against
the live cloud: that is ``pulumi preview`` (``make preview STACK=...``).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from infra import config as cfg
from infra import placeholders, stackset
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
# Diff
# ---------------------------------------------------------------------------------------------


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k in sorted(value):
            out.update(_flatten(value[k], f"{path}.{k}" if path else str(k)))
        return out or {path: {}}
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{path}[{i}]"))
        return out or {path: []}
    return {path: value}


def _decode_json_strings(value: Any) -> Any:
    """IAM and lifecycle documents travel as JSON strings; diff them as structures."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return _decode_json_strings(json.loads(value))
        except json.JSONDecodeError:
            return value
    if isinstance(value, Mapping):
        return {k: _decode_json_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_json_strings(v) for v in value]
    return value


def diff_resources(
    base: Mapping[str, Any], head: Mapping[str, Any]
) -> tuple[
    list[dict[str, Any]], list[dict[str, Any]], list[tuple[dict[str, Any], list[tuple[str, Any, Any]]]]
]:
    """Added, removed and changed resources of one stack; changes are (path, old, new)."""
    old = {r["urn"]: r for r in base.get("resources", [])}
    new = {r["urn"]: r for r in head.get("resources", [])}
    added = [new[u] for u in sorted(new.keys() - old.keys())]
    removed = [old[u] for u in sorted(old.keys() - new.keys())]
    changed = []
    for urn in sorted(old.keys() & new.keys()):
        a = _flatten(_decode_json_strings({k: v for k, v in old[urn].items() if k != "urn"}))
        b = _flatten(_decode_json_strings({k: v for k, v in new[urn].items() if k != "urn"}))
        props = [
            (p, a.get(p, "(absent)"), b.get(p, "(absent)"))
            for p in sorted(a.keys() | b.keys())
            if a.get(p, "(absent)") != b.get(p, "(absent)")
        ]
        if props:
            changed.append((new[urn], props))
    return added, removed, changed


def render_diff(base: Mapping[str, Any], head: Mapping[str, Any]) -> tuple[str, int]:
    """Text of the diff of every stack in ``head`` against ``base``, and the number of changes."""
    lines = [f"Offline plan diff. {DESIRED_STATE_NOTE}", ""]
    total = 0
    for stack in sorted(head.get("stacks", {})):
        before = base.get("stacks", {}).get(stack)
        after = head["stacks"][stack]
        if before is None:
            lines.append(f"Stack {stack}: not in the base plan ({len(after['resources'])} resources)")
            total += len(after["resources"])
            continue
        added, removed, changed = diff_resources(before, after)
        out_a = _flatten(before.get("outputs", {}))
        out_b = _flatten(after.get("outputs", {}))
        out_changes = [
            (p, out_a.get(p, "(absent)"), out_b.get(p, "(absent)"))
            for p in sorted(out_a.keys() | out_b.keys())
            if out_a.get(p, "(absent)") != out_b.get(p, "(absent)")
        ]
        count = len(added) + len(removed) + len(changed) + len(out_changes)
        total += count
        lines.append(
            f"Stack {stack}: {len(added)} to add, {len(removed)} to remove, {len(changed)} to change"
            + (f", {len(out_changes)} output value(s) changed" if out_changes else "")
        )
        for r in added:
            lines.append(f"  + {r['type']}  {r['name']}")
        for r in removed:
            lines.append(f"  - {r['type']}  {r['name']}")
        for r, props in changed:
            lines.append(f"  ~ {r['type']}  {r['name']}")
            for path, a, b in props:
                lines.append(f"      {path}: {json.dumps(a, default=str)} => {json.dumps(b, default=str)}")
        for path, a, b in out_changes:
            lines.append(f"  ~ output {path}: {json.dumps(a, default=str)} => {json.dumps(b, default=str)}")
        lines.append("")
    if total == 0:
        lines.append("No changes.")
    return "\n".join(lines).rstrip() + "\n", total


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
    for r in plan.of_type("kubernetes:helm.sh/v3:Release"):
        lines.append(
            f"Helm release {r.inputs.get('name', r.name)} {r.inputs.get('chart')}@{r.inputs.get('version')}"
            f" on {plan.region_of(r)}"
        )
    for found in placeholders.find(plan.config):
        lines.append(f"placeholder, refused by a real pulumi preview/up: {found}")
    return lines


def policy_rows(plan: Plan) -> list[tuple[str, str, str, str]] | None:
    """(policy, level, resource, message) per violation; None when the pack is unavailable."""
    try:
        from policies import offline as policy_offline  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    results = policy_offline.evaluate(plan)
    return [tuple(str(c) for c in row) for row in policy_offline.format_results(results)]  # type: ignore[misc]


def render(plans: Sequence[Plan], console: Any) -> int:
    """Print each stack's tree, highlights and policy results; the number of mandatory violations."""
    from rich.panel import Panel
    from rich.table import Table
    from rich.tree import Tree

    console.print(Panel(DESIRED_STATE_NOTE, title="offline plan", expand=False))
    mandatory = 0
    for plan in plans:
        groups = group(plan)
        total = sum(sum(c.values()) for comps in groups.values() for c in comps.values())
        tree = Tree(
            f"[bold]{plan.stack}[/bold] (environment {plan.config.environment}, account "
            f"{plan.config.account_id}, hub {plan.config.hub_region}): {total} resources"
        )
        for region in sorted(groups, key=lambda g: (g == "global", g)):
            comps = groups[region]
            region_total = sum(sum(c.values()) for c in comps.values())
            branch = tree.add(f"[cyan]{region}[/cyan] ({region_total})")
            for comp in sorted(comps):
                counts = comps[comp]
                node = branch.add(f"{comp} ({sum(counts.values())})")
                for type_, n in sorted(counts.items()):
                    node.add(f"{n} x {type_}")
        console.print(tree)
        for line in highlights(plan):
            console.print(f"  • {line}")
        rows = policy_rows(plan)
        if rows is None:
            console.print("  policy pack: not available in this checkout")
        elif not rows:
            console.print(f"  [green]policy pack: every rule passes for {plan.stack}[/green]")
        else:
            table = Table(title=f"policy results for {plan.stack}")
            for col in ("policy", "level", "resource", "message"):
                table.add_column(col)
            for row in rows:
                table.add_row(*row)
                mandatory += row[1] == "mandatory"
            console.print(table)
        if plan.outputs:
            console.print("  outputs: " + ", ".join(sorted(plan.outputs)))
        console.print()
    return mandatory


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def build_plans(stacks: Iterable[str]) -> list[Plan]:
    return [run(s) for s in stacks]


def main(argv: Sequence[str] | None = None) -> int:
    # A short-lived command: the collector's passes over the SDKs' many objects cost more than
    # the memory they would return before the process exits (see `make bench`).
    gc.disable()
    stacks = available_stacks()
    parser = argparse.ArgumentParser(
        prog="python -m infra.plan",
        description="Offline plan of the platform: runs the program under Pulumi's mock runtime. "
        + DESIRED_STATE_NOTE,
    )
    parser.add_argument(
        "--stack", default="all", choices=[*stacks, "all"], help="stack to plan (default: all)"
    )
    parser.add_argument("--json", metavar="FILE", type=Path, help="write the deterministic JSON plan to FILE")
    parser.add_argument(
        "--diff", metavar="BASE", type=Path, help="show what changed against a saved JSON plan"
    )
    parser.add_argument("--quiet", action="store_true", help="no tree (useful with --json or --diff)")
    args = parser.parse_args(argv)

    selected = stacks if args.stack == "all" else [args.stack]
    try:
        stackset.check()  # across every stack file: clashes in one account, region mismatches
        plans = build_plans(selected)
    except (cfg.ConfigError, stackset.StackSetError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2

    from rich.console import Console

    console = Console()
    violations = 0
    if not args.quiet:
        violations = render(plans, console)
    doc = document(plans)
    if args.json:
        args.json.write_text(dumps(doc))
        print(f"wrote {args.json}", file=sys.stderr)
    if args.diff:
        try:
            base = json.loads(args.diff.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            print(f"cannot read base plan {args.diff}: {exc}", file=sys.stderr)
            return 2
        text, _ = render_diff(base, doc)
        print(text)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())

"""The dependency graph the program declares, as the Pulumi engine sees it.

A resource waits for (and is a dependent of) its parent, its provider, every resource in its
``depends_on`` and every resource whose outputs feed its inputs. The DR runbook uses the graph
to compute what a region's rebuild touches (``--target-dependents``); the benchmark uses it to
compute the rebuild's critical path.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Mapping

from infra.offline import Plan, Resource


def edges(resource: Resource) -> set[str]:
    """URNs ``resource`` waits for."""
    deps = set(resource.dependencies)
    for urns in resource.property_dependencies.values():
        deps.update(urns)
    if resource.parent:
        deps.add(resource.parent)
    if resource.provider:
        deps.add(resource.provider)
    deps.update(u for u in resource.providers.values() if u)
    deps.discard(resource.urn)
    return deps


def dependencies(plan: Plan) -> dict[str, set[str]]:
    known = {r.urn for r in plan.resources}
    return {r.urn: {d for d in edges(r) if d in known} for r in plan.resources}


def dependents(plan: Plan) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for urn, deps in dependencies(plan).items():
        for d in deps:
            out[d].add(urn)
    return out


def closure(start: Iterable[str], graph: Mapping[str, set[str]]) -> set[str]:
    """Everything reachable from ``start`` along ``graph`` (start included)."""
    seen = set(start)
    queue = deque(seen)
    while queue:
        for nxt in graph.get(queue.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def region_index(plan: Plan) -> dict[str, str | None]:
    """{urn: region} for every resource, computed once (the plan's lookup is per resource)."""
    return {r.urn: plan.region_of(r) for r in plan.resources}


def critical_path(
    plan: Plan, duration: Mapping[str, float], among: set[str] | None = None
) -> tuple[float, list[str]]:
    """Longest chain of creation times through the graph (resources in ``among`` only).

    ``duration`` maps URN to seconds. Resources are created as soon as everything they wait
    for exists, so a rebuild takes as long as its longest chain.
    """
    deps = dependencies(plan)
    nodes = set(deps) if among is None else among & set(deps)
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}

    visiting: set[str] = set()

    def visit(root: str) -> None:
        # Iterative depth-first search: a generated stack of thousands of resources must not
        # hit Python's recursion limit.
        stack = [(root, iter(sorted(deps[root] & nodes)))]
        visiting.add(root)
        while stack:
            node, pending = stack[-1]
            for d in pending:
                if d in finish:
                    continue
                if d in visiting:
                    raise ValueError(f"dependency cycle through {d}")
                visiting.add(d)
                stack.append((d, iter(sorted(deps[d] & nodes))))
                break
            else:
                stack.pop()
                visiting.discard(node)
                best, best_dep = 0.0, None
                for d in sorted(deps[node] & nodes):
                    if finish[d] > best:
                        best, best_dep = finish[d], d
                finish[node] = best + duration.get(node, 0.0)
                via[node] = best_dep

    end, last = 0.0, None
    for urn in sorted(nodes):
        if urn not in finish:
            visit(urn)
        t = finish[urn]
        if t > end:
            end, last = t, urn
    path: list[str] = []
    while last is not None:
        path.append(last)
        last = via.get(last)
    return end, list(reversed(path))

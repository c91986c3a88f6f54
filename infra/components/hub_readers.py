"""The hub's API admits the runners of the stacks whose deploy reads it (issue 15).

``python -m infra.deploy prod`` runs on prod's CodeBuild runner in prod's hub VPC and reads
staging's Applications on staging's hub, through staging's public endpoint: the runner's traffic
leaves through prod's hub NAT gateways, whose addresses staging's hub must admit. Prod publishes
them (stack output ``hubEgressCidrs``); staging reads them with a StackReference and adds them to
its hub's ``publicAccessCidrs``, instead of a person copying them by hand.

* Which stacks read this one: :func:`infra.stackset.deploy_readers` (the replicas of a source).
* The order is the bootstrap order: prod's ``pulumi up`` runs first (day 0, and ``up.yml``), so
  prod's output exists when staging reads it. **Staging's ``pulumi up`` and ``pulumi preview``
  fail** if prod's stack does not exist in the backend, or the token running them cannot read it:
  the engine resolves a StackReference through the backend's ``GetStackOutputs``, which returns
  the error ``unknown stack "<org>/<project>/prod"`` for a stack it cannot find (pulumi/pulumi
  pkg/backend/backend.go, ``backendClient.GetStackOutputs``). A prod stack that exists but has
  not published the output (created and never applied: no root stack resource, an empty output
  map there; or applied before this output existed) reads as no addresses: staging's hub then
  admits its configured CIDRs only, and the next staging ``up`` after prod's adds them.
* Both stacks must be in the same Pulumi organization: the reference names the organization
  staging runs in (no setting names another).
* The reference is ``<organization>/<project>/<stack>``, the fully qualified stack name
  (https://www.pulumi.com/docs/iac/concepts/stacks/, "orgName/projectName/stackName"); on a
  non-legacy DIY backend the organization is the literal ``organization``, which
  ``pulumi.get_organization()`` returns there (Pulumi automation API,
  ``fullyQualifiedStackName``). The token that runs staging's ``pulumi up`` needs read ("Stack
  Read") on prod's stack for it.
* Offline (no backend), infra.offline's mocks answer the reference with stand-in addresses from
  the TEST-NET-2 documentation range, one per NAT gateway of the referenced stack's hub.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi

from infra import naming


def reference_name(stack: str) -> str:
    """The fully qualified name of ``stack`` of this project."""
    return f"{pulumi.get_organization()}/{pulumi.get_project()}/{stack}"


def _addresses(values: Sequence[Any]) -> list[str]:
    out: set[str] = set()
    for value in values:
        if value is None:
            continue  # the reader has not published its addresses yet (see the module docstring)
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise ValueError(
                f"stack output {naming.OUTPUT_HUB_EGRESS_CIDRS} must be a list of CIDR strings, got {value!r}"
            )
        out.update(value)
    return sorted(out)


def reader_egress_cidrs(readers: Sequence[str]) -> pulumi.Output[list[str]] | None:
    """The hub NAT addresses of every stack in ``readers`` (one StackReference each), or None when
    no stack reads this one."""
    if not readers:
        return None
    outputs = [
        pulumi.StackReference(f"hub-reader-{stack}", stack_name=reference_name(stack)).get_output(
            naming.OUTPUT_HUB_EGRESS_CIDRS
        )
        for stack in readers
    ]
    return pulumi.Output.all(*outputs).apply(_addresses)

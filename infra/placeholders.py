"""Example values that must never reach AWS or GitHub (issue 15). Pure functions, plus the one
place that tells a real run from the offline one.

The example stack files use documentation values so that anyone can run the offline plan: AWS's
documentation account IDs, the IPv4/IPv6 ranges reserved for documentation, and the owner
``acme``. A real ``pulumi preview``/``up`` with them would at best fail half-way (every provider
refuses a wrong account) and at worst admit a range someone else owns, or point the OIDC trust at
a stranger's ``acme`` repository. :func:`check` refuses them in a real run, before any resource is
declared, naming every one; under the mock runtime (``infra.offline``) it returns them so the
offline plan can say they are placeholders.

Sources: reserved example domains, RFC 2606 (example.com/.net/.org and the .example, .test,
.invalid, .localhost top-level names) https://www.rfc-editor.org/rfc/rfc2606 and RFC 6761;
documentation address blocks, RFC 5737 (IPv4) https://www.rfc-editor.org/rfc/rfc5737
and RFC 3849 (IPv6) https://www.rfc-editor.org/rfc/rfc3849; AWS's example account IDs
(111122223333, 444455556666, 123456789012, ...) throughout the IAM User Guide, e.g.
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings

from infra.config import ConfigError, StackConfig, stack_file

EXAMPLE_ACCOUNT_IDS: frozenset[str] = frozenset(
    {"111122223333", "444455556666", "123456789012", "777788889999", "555555555555"}
)
DOCUMENTATION_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)
EXAMPLE_OWNERS: frozenset[str] = frozenset({"acme", "octo-org", "example"})
# The reviewer ID the example prod stack file carries.
EXAMPLE_REVIEWER_IDS: frozenset[int] = frozenset({1234567})

# Names nobody can own a public hosted zone for (RFC 2606, RFC 6761).
RESERVED_DOMAINS: tuple[str, ...] = (
    "example.com",
    "example.net",
    "example.org",
    "example",
    "test",
    "invalid",
    "localhost",
)
# The example stack files' hosted zone IDs carry this word; Route 53 issues no such ID to anyone's zone
# that a stack file could rely on, and a real up against it fails only at the first record.
EXAMPLE_ZONE_ID_MARK = "EXAMPLE"

_ARN_ACCOUNT = re.compile(r"^arn:aws:[a-z0-9-]+:[a-z0-9-]*:([0-9]{12}):")


@dataclass(frozen=True)
class Placeholder:
    key: str
    value: str
    why: str

    def __str__(self) -> str:
        return f"{self.key}: {self.value} ({self.why})"


def find(config: StackConfig) -> list[Placeholder]:
    """Every example value in ``config``, in key order."""
    found: list[Placeholder] = []

    def account(key: str, value: str | None) -> None:
        if value is None:
            return
        match = _ARN_ACCOUNT.match(value)
        acct = match.group(1) if match else value
        if acct in EXAMPLE_ACCOUNT_IDS:
            found.append(Placeholder(key, value, "an AWS documentation account ID"))

    account("platform:accountId", config.account_id)
    account("platform:peerAccountId", config.peer_account_id)
    account("platform:clusterAdminRoleArn", config.cluster_admin_role_arn)
    account("platform:github.oidcProviderArn", config.github.existing_oidc_provider_arn)
    for region in config.regions:
        for cidr in region.public_access_cidrs:
            net = ipaddress.ip_network(cidr, strict=False)
            # Inside a documentation block, not merely overlapping one: a real supernet such as
            # staging's 0.0.0.0/0 (allowed outside prod) contains 203.0.113.0/24 but is no placeholder.
            if any(net.version == d.version and net.subnet_of(d) for d in DOCUMENTATION_NETWORKS):  # type: ignore[arg-type]
                found.append(
                    Placeholder(
                        f"platform:regions.{region.name}.publicAccessCidrs",
                        cidr,
                        "a range reserved for documentation (RFC 5737/3849): nobody's real egress",
                    )
                )
    if config.github.owner.lower() in EXAMPLE_OWNERS:
        found.append(Placeholder("platform:github.owner", config.github.owner, "the example owner"))
    repo_owner = re.match(r"^https://github\.com/([^/]+)/", config.application.repo_url)
    if repo_owner and repo_owner.group(1).lower() in EXAMPLE_OWNERS:
        found.append(
            Placeholder("platform:application.repoUrl", config.application.repo_url, "the example owner")
        )
    for kind, ids in (("teams", config.github.reviewer_teams), ("users", config.github.reviewer_users)):
        for i in ids:
            if i in EXAMPLE_REVIEWER_IDS:
                found.append(
                    Placeholder(f"platform:github.reviewers.{kind}", str(i), "the example reviewer ID")
                )
    if config.traffic is not None:
        zone = config.traffic.zone_name
        if any(zone == d or zone.endswith("." + d) for d in RESERVED_DOMAINS):
            found.append(
                Placeholder(
                    "platform:traffic.zoneName", zone, "a domain reserved for examples (RFC 2606/6761)"
                )
            )
        if EXAMPLE_ZONE_ID_MARK in config.traffic.hosted_zone_id:
            found.append(
                Placeholder(
                    "platform:traffic.hostedZoneId",
                    config.traffic.hosted_zone_id,
                    "the example hosted zone ID",
                )
            )
    return found


def is_offline_run() -> bool:
    """True under the mock runtime (``infra.offline``, the tests), False under the Pulumi engine.

    The one place the program tells them apart: :func:`pulumi.runtime.set_mocks` installs a
    :class:`pulumi.runtime.mocks.MockMonitor` as the resource monitor; the engine's is a gRPC stub.
    https://github.com/pulumi/pulumi/blob/v3.272.0/sdk/python/lib/pulumi/runtime/mocks.py
    """
    return isinstance(settings.get_monitor(), pulumi_mocks.MockMonitor)


class PlaceholderError(ConfigError):
    """A real run was given the example stack file's values."""

    def __init__(self, stack: str, found: list[Placeholder]) -> None:
        self.placeholders = found
        self.key = stack_file(stack).name
        self.value = [str(p) for p in found]
        self.allowed = (
            "these are the example's placeholders; set the real values before a real pulumi "
            "preview/up (the offline plan, python -m infra.plan, accepts them)"
        )
        # ConfigError's one-line form would cut the list: every placeholder on its own line.
        ValueError.__init__(self, f"{self.key}: {self.allowed}:\n" + "\n".join(f"  {p}" for p in found))


def check(config: StackConfig) -> list[Placeholder]:
    """Refuse placeholders in a real run (before anything is declared); list them offline."""
    found = find(config)
    if found and not is_offline_run():
        raise PlaceholderError(config.stack, found)
    return found

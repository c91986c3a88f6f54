"""The documented walk-throughs (docs/walkthroughs.md), as steps a test can apply to a copy of the project.

Each step has the text docs/walkthroughs.md shows (placeholders such as ``<service>``) and, where
the step changes files of the repository, the edit that performs it on a checkout. Steps outside
the repository (GitHub settings, merging, CI) have no edit. The docs' numbered lists are rendered
from these steps (``python -m tests.walkthroughs.steps --write`` rewrites them, and
``tests/walkthroughs/test_walkthroughs.py`` fails while they differ), so what the docs tell a user
to do and what the test does are the same list.

Edits of stack files go through YAML (comments are lost; the copies are thrown away); the chart's
value files are edited as text, so their ``# --`` documentation comments stay where helm-docs and
the chart tests look for them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra import config as cfg
from infra import naming
from tests import changes

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "walkthroughs.md"
CHART = Path("charts") / "shop"
# deploy-prod.yml's role-duration-seconds, and the set-up the deploy needs besides the syncs:
# the config refuses a manual-sync stack whose deploy does not fit (infra/config.py).
DEPLOY_SESSION_SECONDS = cfg.DEPLOY_SESSION_SECONDS
DEPLOY_SETUP_SECONDS = cfg.DEPLOY_SETUP_SECONDS


@dataclass
class Checkout:
    """A copy of the project being changed, and the names the walk-through chose for it."""

    root: Path
    params: dict[str, str] = field(default_factory=dict)

    def stack_names(self) -> list[str]:
        return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in self.root.glob("Pulumi.*.yaml"))

    def stack_path(self, stack: str) -> Path:
        return self.root / f"Pulumi.{stack}.yaml"

    def config(self, stack: str) -> dict[str, Any]:
        doc = yaml.safe_load(self.stack_path(stack).read_text()) or {}
        return dict(doc.get("config") or {})

    def write_config(self, stack: str, raw: Mapping[str, Any]) -> None:
        """Write the ``config:`` map, keeping the file's leading comment lines (the schema line)."""
        path = self.stack_path(stack)
        source = path.read_text() if path.exists() else self.stack_path("staging").read_text()
        header = "".join(re.match(r"(?:#[^\n]*\n)*", source).group(0))  # type: ignore[union-attr]
        path.write_text(header + yaml.safe_dump({"config": dict(raw)}, sort_keys=False))

    def edit_stacks(self, edit: Callable[[str, dict[str, Any]], None]) -> None:
        for stack in self.stack_names():
            raw = self.config(stack)
            edit(stack, raw)
            self.write_config(stack, raw)

    def chart(self, name: str) -> Path:
        return self.root / CHART / name


Edit = Callable[[Checkout], None]


@dataclass(frozen=True)
class Step:
    """One numbered step: ``text`` as the docs show it, ``edit`` what it does to a checkout (or None)."""

    text: str
    edit: Edit | None = None


@dataclass(frozen=True)
class Walkthrough:
    slug: str
    title: str
    steps: tuple[Step, ...]

    def markdown(self) -> str:
        """The numbered list docs/walkthroughs.md shows between this walk-through's markers."""
        return "".join(f"{i}. {step.text}\n" for i, step in enumerate(self.steps, 1))


# ---------------------------------------------------------------------------------------------
# Text edits of the chart's value files
# ---------------------------------------------------------------------------------------------


def _insert_service(path: Path, service: str, entry: Mapping[str, Any], comment: str | None) -> None:
    """Add ``services.<service>`` as the first entry under the file's top-level ``services:``."""
    lines = path.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if re.fullmatch(r"services:\s*", line))
    body = yaml.safe_dump({service: dict(entry)}, default_flow_style=None, sort_keys=False, width=1000)
    block = [f"  # -- {comment}\n"] if comment else []
    block += [f"  {line}\n" for line in body.splitlines()]
    path.write_text("".join(lines[: at + 1] + block + lines[at + 1 :]))


def _services_of(path: Path) -> dict[str, Any]:
    return dict((yaml.safe_load(path.read_text()) or {}).get("services") or {})


# ---------------------------------------------------------------------------------------------
# Add a service
# ---------------------------------------------------------------------------------------------


def _dockerfile(c: Checkout) -> None:
    path = c.root / "services" / c.params["service"] / "Dockerfile"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("FROM scratch\n")


def _service_in_stacks(c: Checkout) -> None:
    c.edit_stacks(lambda _stack, raw: changes.add_service(raw, c.params["service"]))


def _sentinel(c: Checkout) -> str:
    return str(c.config(c.stack_names()[0])["platform:sentinelService"])


def _service_in_values(c: Checkout) -> None:
    template = _services_of(c.chart("values.yaml"))[_sentinel(c)]
    entry = {k: template[k] for k in ("port", "replicas", "resources", "probes")}
    _insert_service(c.chart("values.yaml"), c.params["service"], entry, "Added by the walk-through.")


def _service_in_environment_values(c: Checkout) -> None:
    for path in sorted(c.root.joinpath(CHART).glob("values-*.yaml")):
        services = _services_of(path)
        if _sentinel(c) in services:
            _insert_service(path, c.params["service"], services[_sentinel(c)], None)


ADD_SERVICE = Walkthrough(
    "add-a-service",
    "Add a service",
    (
        Step(
            "Create `services/<service>/Dockerfile`: that directory is the build context of "
            "`build-images.yml`, which stops the whole run, building nothing, while any service of "
            "`platform:services` has none. This repository ships no `services/` sources: a fork "
            "adds a Dockerfile for every service, the example's too.",
            _dockerfile,
        ),
        Step(
            "Add `<service>` to `platform:services` in every stack file, before the sentinel "
            "(`platform:sentinelService`), which stays last. Prod receives every image by "
            "replication, so it needs the same repositories.",
            _service_in_stacks,
        ),
        Step(
            "Add `services.<service>` to `charts/shop/values.yaml`, under a `# --` comment line, "
            "with `port`, `replicas`, `resources` and `probes` (and `env`, `networkPolicy` if it "
            "needs them; see [chart.md](chart.md#adding-a-service-end-to-end)).",
            _service_in_values,
        ),
        Step(
            "In every `charts/shop/values-<env>.yaml` that sets the other services, set "
            "`<service>` too: in `values-prod.yaml` its replicas and autoscaling, with "
            "`minReplicas` at least the number of zones.",
            _service_in_environment_values,
        ),
        Step(
            "`make test` and `make plan`: the plan's tree counts one more "
            "`aws:ecr/repository:Repository` in every region of every stack (it prints counts, not "
            "names); `.venv/bin/platform plan --stack all --json plan.json` lists the new one, "
            "named `<ecr.prefix>/<service>`. Replication is unchanged (its rule matches the prefix)."
        ),
        Step(
            "Merge: `up.yml` creates the repositories. Then push to `deploy/staging`, so "
            "`build-images.yml` builds the first image of `<service>` (its pods cannot pull before)."
        ),
    ),
)


# ---------------------------------------------------------------------------------------------
# Add a region
# ---------------------------------------------------------------------------------------------


def _region_in_stacks(c: Checkout) -> None:
    region = c.params["region"]

    def edit(_stack: str, raw: dict[str, Any]) -> None:
        changes.add_region(raw, region)

    c.edit_stacks(edit)


def _region_in_deploy_order(c: Checkout) -> None:
    region = c.params["region"]

    def edit(_stack: str, raw: dict[str, Any]) -> None:
        order = (raw.get("platform:deploy") or {}).get("regionOrder")
        if order is not None:
            hub = raw["platform:hubRegion"]
            at = order.index(hub) if hub in order else len(order)
            order.insert(at, region)

    c.edit_stacks(edit)


def _deploy_within_session(c: Checkout) -> None:
    raw = c.config("prod")
    changes.keep_the_prod_deploy_within_its_session(raw)
    c.write_config("prod", raw)


def _region_values(c: Checkout) -> None:
    region = c.params["region"]
    for stack in c.stack_names():
        raw = c.config(stack)
        env, account = raw["platform:environment"], str(raw["platform:accountId"])
        name = naming.value_files(env, region)[-1]
        c.chart(name).write_text(
            f"# {env} in {region}: pull from this region's own registry in the {env} account.\n"
            + yaml.safe_dump(
                {"global": {"registry": naming.registry_host(account, region), "region": region}},
                sort_keys=False,
            )
        )


ADD_REGION = Walkthrough(
    "add-a-region",
    "Add a region",
    (
        Step(
            "Add `<region>` under `platform:regions` in every stack file, with a `vpcCidr` of its "
            "own (no overlap with the stack's other regions), 2 to 6 `availabilityZones` of "
            "`<region>` and the other keys like the existing regions. Add it to staging and prod "
            "together: `make plan` refuses a region only prod runs (nothing replicates into it) "
            "and warns about a region only staging runs (staging replicates into prod's account "
            "there).",
            _region_in_stacks,
        ),
        Step(
            "Add `<region>` to `platform:deploy.regionOrder` in every stack file, before the hub "
            "(a region left out deploys after the listed ones).",
            _region_in_deploy_order,
        ),
        Step(
            "Keep the prod deploy within its one-hour sessions: the number of regions times "
            "`platform:deploy.timeoutSeconds` in `Pulumi.prod.yaml`, plus 600, must not exceed "
            "3600 (`role-duration-seconds` in `deploy-prod.yml`); with four regions, at most 750. "
            "The config refuses a prod stack that does not fit, with the arithmetic.",
            _deploy_within_session,
        ),
        Step(
            "Create `charts/shop/values-<env>-<region>.yaml` for every stack, with "
            "`global.registry: <accountId>.dkr.ecr.<region>.amazonaws.com` and "
            "`global.region: <region>`.",
            _region_values,
        ),
        Step(
            "`make test` and `make plan`: each stack gains the region's network, cluster and "
            "registry, its cluster Secret on the hub, and staging's replication gains `<region>` "
            "in both accounts."
        ),
        Step(
            "Replicate the secrets to `<region>`: Argo CD's (`platform/<env>/argocd/...`, so a hub "
            "moved there finds them: docs/dr.md) and the services' (`platform/<env>/shop/...`, read "
            "in each cluster's own region), with `aws secretsmanager replicate-secret-to-regions "
            "--region <primary region> --secret-id <name> --add-replica-regions Region=<region>` "
            "(docs/addons.md). Before the merge: the region's ExternalSecrets read them as soon as "
            "its cluster runs."
        ),
        Step(
            "Merge: `up.yml` builds the region in prod, then in staging (the receiving registry "
            "first: docs/registry.md). Images pushed before "
            "replication reached it are not there: write the backfill script with "
            "`.venv/bin/platform dr --stack <stack> --region <region> --backfill-script backfill.sh` "
            'and run it (docs/registry.md, "Backfill").'
        ),
    ),
)


# ---------------------------------------------------------------------------------------------
# Move the hub
# ---------------------------------------------------------------------------------------------


def _hub_in_stacks(c: Checkout) -> None:
    c.edit_stacks(lambda _stack, raw: raw.__setitem__("platform:hubRegion", c.params["hub"]))


def _hub_last(c: Checkout) -> None:
    hub = c.params["hub"]

    def edit(_stack: str, raw: dict[str, Any]) -> None:
        order = (raw.get("platform:deploy") or {}).get("regionOrder")
        if order is not None:
            raw["platform:deploy"]["regionOrder"] = [r for r in order if r != hub] + [hub]

    c.edit_stacks(edit)


MOVE_HUB = Walkthrough(
    "move-the-hub",
    "Move the hub",
    (
        Step(
            "Set `platform:hubRegion: <hub>` in every stack file, in one commit (`<hub>` is a "
            "region of each stack). ECR's primary region, where CI pushes and staging's "
            "replication configuration lives, follows the hub unless `platform:ecr.primaryRegion` "
            "is set, and staging's and prod's must stay equal: `make plan` refuses a pair that "
            "disagree.",
            _hub_in_stacks,
        ),
        Step(
            "Move `<hub>` to the end of `platform:deploy.regionOrder` in every stack file: the "
            "hub deploys last.",
            _hub_last,
        ),
        Step(
            "`make test` and `make plan`: Argo CD, Image Updater, the ApplicationSet and every "
            "cluster Secret are declared on `<hub>`'s cluster."
        ),
        Step(
            "Before merging, create the CodeConnections connection `platform-<env>-runner` in "
            "`<hub>` for each stack (AWS console: the hub jobs' runners run in the hub's VPC; "
            "[github-actions.md](github-actions.md#settings-a-person-still-sets-by-hand)). Check "
            "that Argo CD's secrets are in `<hub>` (day 0 replicates them to every region: "
            "`aws secretsmanager describe-secret --region <hub> --secret-id "
            "platform/<env>/argocd/repo-creds`; docs/addons.md): the new hub's Argo CD reads them "
            "there."
        ),
        Step(
            "Merge: `up.yml` creates them on the new hub and deletes them from the old one. The "
            "deploy command's default contexts follow the hub: run `aws eks update-kubeconfig` "
            "for `platform-<env>-<hub>` (README, Deploying to prod)."
        ),
    ),
)


# ---------------------------------------------------------------------------------------------
# Add a third stack
# ---------------------------------------------------------------------------------------------


def _new_stack_file(c: Checkout) -> None:
    stack = c.params["stack"]
    raw = c.config("staging")
    raw["platform:environment"] = stack
    raw["platform:github"]["environment"] = stack
    traffic = raw.get("platform:traffic")
    if traffic is not None:
        traffic["host"] = f"{stack}.{traffic['zoneName']}"
    c.write_config(stack, raw)


def _peer(c: Checkout) -> None:
    raw = c.config(c.params["stack"])
    raw["platform:peerAccountId"] = c.params["peer"]
    c.write_config(c.params["stack"], raw)


def _shared_account(c: Checkout) -> None:
    stack = c.params["stack"]
    raw = c.config(stack)
    account = str(raw["platform:accountId"])
    others = [c.config(s) for s in c.stack_names() if s != stack]
    sharing = [o for o in others if str(o["platform:accountId"]) == account]
    if not sharing:
        return
    raw["platform:github"]["oidcProviderArn"] = (
        f"arn:aws:iam::{account}:oidc-provider/token.actions.githubusercontent.com"
    )
    raw["platform:ecr"]["prefix"] = f"{raw['platform:ecr']['prefix']}-{stack}"
    taken = {o["platform:ecr"].get("primaryRegion") or o["platform:hubRegion"] for o in sharing}
    raw["platform:ecr"]["primaryRegion"] = changes.other_region(raw, *taken)
    raw["platform:ecr"]["scanning"] = "basic"
    c.write_config(stack, raw)


def _stack_values(c: Checkout) -> None:
    stack = c.params["stack"]
    raw = c.config(stack)
    env, account, prefix = (
        raw["platform:environment"],
        str(raw["platform:accountId"]),
        raw["platform:ecr"]["prefix"],
    )
    c.chart(f"values-{env}.yaml").write_text(
        f"# {env}: layered over values.yaml; the region's own file comes after it.\n"
        + yaml.safe_dump({"global": {"environment": env}, "image": {"prefix": prefix}}, sort_keys=False)
    )
    for region in raw["platform:regions"]:
        c.chart(naming.value_files(env, region)[-1]).write_text(
            yaml.safe_dump(
                {"global": {"registry": naming.registry_host(account, region), "region": region}},
                sort_keys=False,
            )
        )


ADD_STACK = Walkthrough(
    "add-a-third-stack",
    "Add a third stack",
    (
        Step(
            "Create `Pulumi.<stack>.yaml` from a copy of `Pulumi.staging.yaml`; set "
            "`platform:environment: <stack>` and `platform:github.environment: <stack>`; with "
            "`platform:traffic`, a public name of its own, `platform:traffic.host: "
            "<stack>.<zoneName>` (`make plan` refuses two stacks with one host). In an "
            "account of its own, also set `platform:accountId` and `platform:clusterAdminRoleArn`"
            " (and its own zone in `platform:traffic`).",
            _new_stack_file,
        ),
        Step(
            "Set `platform:peerAccountId` to the account its images replicate to: one that no "
            "stack file here deploys into. A replica admits exactly one source (prod's "
            "`peerAccountId` is staging's account): `make plan` refuses a second source stack "
            "for one replica (a copy of staging in staging's account whose `peerAccountId` is "
            "prod's), and a source that replicates into a stack's account which does not admit it, "
            "naming both stack files and `platform:peerAccountId`.",
            _peer,
        ),
        Step(
            "If it shares an account with another stack (the same `platform:accountId`), give it "
            "its own account-wide objects: `platform:github.oidcProviderArn: "
            "arn:aws:iam::<accountId>:oidc-provider/token.actions.githubusercontent.com` (the "
            "provider the other stack creates), a `platform:ecr.prefix` of its own, a "
            "`platform:ecr.primaryRegion` other than the other source's, and "
            "`platform:ecr.scanning: basic`. IAM roles, clusters and KMS aliases are named after "
            "the environment. `make plan` refuses a stack that clashes, naming both stack files, "
            "the key and what is allowed.",
            _shared_account,
        ),
        Step(
            "Create `charts/shop/values-<stack>.yaml` (`global.environment: <stack>`, "
            "`image.prefix` equal to its `platform:ecr.prefix`, and what else differs from "
            "`values.yaml`) and `charts/shop/values-<stack>-<region>.yaml` for each of its "
            "regions (`global.registry`, `global.region`).",
            _stack_values,
        ),
        Step(
            "`make test` and `make plan`: the chart is checked for every stack file, and the plan "
            "shows the third stack with the policy pack's results."
        ),
        Step(
            "GitHub and AWS by hand ([github-actions.md](github-actions.md#settings-a-person-still-sets-by-hand)): "
            "its `up` role trusts the environment `<stack>` only, which prod's next `pulumi up` "
            "declares (main only, with the stack's own `platform:github.reviewers` if it names any); "
            "after that, `<STACK>_PULUMI_TOKEN` as a secret of that environment, and the "
            "CodeConnections connection `platform-<stack>-runner` in its hub region."
        ),
        Step(
            "CI does not run it: `up.yml` and `preview.yml` apply and preview staging and prod "
            "only. Run `pulumi up --stack <stack> --policy-pack policies` as the account's "
            "administrator (the first time and after), or add jobs like staging's to both workflows."
        ),
        Step(
            "Images: `build-images.yml` pushes to staging's registry only, so the stack's "
            "repositories stay empty, and its Applications cannot pull, until something pushes "
            "to its primary region."
        ),
    ),
)

WALKTHROUGHS = (ADD_SERVICE, ADD_REGION, MOVE_HUB, ADD_STACK)


# ---------------------------------------------------------------------------------------------
# docs/walkthroughs.md
# ---------------------------------------------------------------------------------------------


def begin_marker(w: Walkthrough) -> str:
    return f"<!-- steps: {w.slug} (generated from tests/walkthroughs/steps.py) -->\n"


END_MARKER = "<!-- end of steps -->\n"


def doc_blocks(text: str) -> dict[str, str]:
    """``{slug: numbered list}`` as docs/walkthroughs.md has them between the markers."""
    found = re.findall(
        r"<!-- steps: (\S+) \(generated from [^)]*\) -->\n(.*?)<!-- end of steps -->\n", text, re.S
    )
    return dict(found)


def render_doc(text: str) -> str:
    """``text`` with every walk-through's block replaced by the list the steps render."""
    for w in WALKTHROUGHS:
        pattern = re.escape(begin_marker(w)) + r".*?" + re.escape(END_MARKER)
        block = begin_marker(w) + w.markdown() + END_MARKER
        match = re.search(pattern, text, flags=re.S)
        if match:
            text = text[: match.start()] + block + text[match.end() :]
    return text


if __name__ == "__main__":  # pragma: no cover - the maintainer's regeneration command
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.walkthroughs.steps --write   (rewrites docs/walkthroughs.md)")
    DOC.write_text(render_doc(DOC.read_text()))

"""Disaster recovery: the exact, ordered runbook for one lost region of a stack (docs/dr.md).

    platform dr --stack prod --region eu-west-1                         # the region comes back
    platform dr --stack prod --region eu-west-1 --stays-down            # take it out of the stack
    platform dr --stack prod --region us-west-2 --new-hub us-east-1     # the hub stays down
    platform dr --stack prod --region eu-west-1 --backfill-script FILE  # write the ECR backfill
    platform dr --stack staging --region us-west-2 --inside prod       # printed by prod's runbook

The runbook is data: each step says where it runs from, how long it is expected to take (the
creation times of ``infra/bench.py``, the table ``make bench`` uses) and its actions, typed
(:class:`EditStack`, :class:`Refresh`, :class:`Up`, :class:`StateDelete`, :class:`Preview`,
:class:`Shell`). :func:`render` prints them as commands; the DR drill (tests/stack/test_dr_drill.py)
runs the same actions against a fake engine in which the region does not answer. URNs are
computed by running the program offline with the stack's config, never typed by hand.

What the actions rely on (docs/dr.md): ``platform:unreachableRegions`` makes the lost region's
Kubernetes provider drop unreachable objects from the state on refresh (pulumi-kubernetes
``deleteUnreachable``) and its AWS provider authenticate elsewhere (infra/providers.py);
``pulumi refresh --run-program`` configures providers from the program, not from the state
(https://www.pulumi.com/docs/iac/operations/stack-management/run-program/); ``--target``,
``--target-dependents`` and ``--exclude`` restrict an update
(https://www.pulumi.com/docs/iac/guides/basics/targeted-updates/); ``pulumi state delete``
removes a resource from the state without calling its provider, ``--force`` for a protected one,
``--target-dependents`` with what depends on it
(https://www.pulumi.com/docs/iac/cli/commands/pulumi_state_delete/).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import json
import re
import shlex
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as _replace
from pathlib import Path
from typing import Any

from infra import addons, graph, naming, offline, providers, stackset, traffic
from infra import config as cfg
from infra.offline import Plan, Resource

# Global services: not lost with a region, though declared through a regional provider (IAM and
# Route 53 have one global endpoint each: https://docs.aws.amazon.com/general/latest/gr/iam-service.html,
# https://docs.aws.amazon.com/general/latest/gr/r53.html). The traffic records and health checks
# go through the account's provider (infra/components/traffic.py) for the same reason.
# The global types and what each is, for the lists of resources a step prints (an on-call
# engineer scanning for IAM changes must not be sent to a Route 53 record).
GLOBAL_KINDS = {"aws:iam/": "global IAM", "aws:route53/": "global Route 53"}
GLOBAL_TYPE_PREFIXES = tuple(GLOBAL_KINDS)
# The repository variable prefix of the per-stack freeze (docs/dr.md, "Freeze"):
# PLATFORM_FREEZE_<STACK>, which the jobs of up.yml and deploy-prod.yml of that stack check first.
FREEZE_VARIABLE_PREFIX = "PLATFORM_FREEZE_"
# The operator's address, a /32 the runbook admits to the API of the clusters its commands reach
# (prod's are private) and withdraws at the end. The printed commands read it from this shell
# variable (set in the prerequisites); the offline plans use a documentation address
# (TEST-NET-1, RFC 5737) in its place.
OPERATOR_CIDR_VARIABLE = "OPERATOR_CIDR"
OPERATOR_CIDR_STANDIN = "192.0.2.1/32"
REBUILD, STAYS_DOWN, MOVE_HUB = "rebuild", "stays-down", "move-hub"
DELETE_UNREACHABLE_ENV = "PULUMI_K8S_DELETE_UNREACHABLE"
# `pulumi refresh` and `pulumi state delete` read or write the state only; the engine runs 16
# operations at once by default (pulumi refresh --parallel). Reads take the table's
# "everything else" time (infra/bench.py).
PULUMI_PARALLEL = 16

STATE_LOCATIONS = (
    (
        "Pulumi state backend",
        "every resource's state and the stack outputs (kubeconfigs, registry URLs, role ARNs); "
        "kept outside AWS regions (Pulumi Cloud or a bucket in a region you do not rebuild), so it "
        "survives the loss of any one region",
    ),
    (
        "Git (this repository)",
        "the program, the stack files, the chart and its value files; Argo CD reads the application "
        "from Git, so nothing about what runs is stored only in a cluster",
    ),
    (
        "ECR",
        "the images; every tag pushed in staging's primary region is replicated to staging's other "
        "regions and to every prod region, so a lost region's images exist elsewhere and are copied "
        "back by the backfill step",
    ),
    (
        "Argo CD (the hub)",
        "nothing that cannot be rebuilt: the Applications are generated by the ApplicationSet, the "
        "clusters are registered by the program; with argocd write-back the current image tag lives "
        "on the Applications, and after a hub rebuild Image Updater sets it again from ECR (prod "
        "still deploys only through the deploy command, which verifies the image against staging)",
    ),
)


# ---------------------------------------------------------------------------------------------
# Actions: what a step does, typed, so the drill runs exactly what the runbook prints
# ---------------------------------------------------------------------------------------------


# The branch each standalone runbook works on (its prerequisites create it): unique per run, so
# `gh pr view <branch>` cannot find an earlier incident's merged pull request of the same name
# (cli/cli 44ee177 pkg/cmd/pr/shared/finder.go: a branch name matches pull requests in every
# state, newest first). Later steps read it back with `git branch --show-current`.
DR_BRANCH_PREFIX = "dr/"
CURRENT_BRANCH = '"$(git branch --show-current)"'
# Minutes of the pull request's review: a human wait (the approver, paged at the freeze step,
# reads a diff of one or two stack files and may wait for preview.yml's plan-diff comment), an
# assumption like the 5 minutes of the runner connection's console authorization, not a bench time.
REVIEW_MINUTES = 15


# Two tests of the published stack files ``files`` against main, after `git fetch origin main`
# (which updates origin/main: git-fetch(1), "configured remote-tracking branches"). `git diff
# <commit> -- <paths>` compares the working tree (committed and uncommitted edits alike) with that
# commit, `git diff <a> <b> -- <paths>` two commits, and `--quiet` exits 0 when there is no
# difference (git-diff(1)); the merge base of origin/main and HEAD (git-merge-base(1)) is where
# this runbook's branch left main.
def main_holds(files: str) -> str:
    """A shell test: main's tip holds ``files`` exactly as this checkout has them (the runbook
    applied them). Then there is nothing to publish (a rebuild clears its marks and withdraws the
    operator's address: its files end as they were), or the pull request is merged; only then is
    a freeze lifted. An uncommitted edit makes it fail, so a merge step run before the pull
    request step never lifts."""
    return f"git diff --quiet origin/main -- {files}"


def main_moved(files: str) -> str:
    """A shell test: main changed ``files`` since this runbook's branch left it (a pull request
    merged meanwhile). The runbook did not apply that change: the branch is rebased, the preview
    run again (it shows main's change), and nothing is merged or lifted until main holds exactly
    what was applied. ``protect-main`` requires no status check, so GitHub would merge a branch
    that is behind as it is."""
    return f'! git diff --quiet "$(git merge-base origin/main HEAD)" origin/main -- {files}'


def _moved_message(files: str, then: str) -> str:
    return (
        f'echo "main changed {files} since this branch left it: git rebase origin/main, run the preview step '
        f"again (it shows main's change: apply it, or have it reverted), {then}; nothing is lifted\" >&2; false"
    )


def published_files(stacks: Sequence[str]) -> str:
    """``Pulumi.<stack>.yaml`` of each stack, in order, space-separated."""
    return " ".join(stackset.file_name(s) for s in dict.fromkeys(stacks))


def dr_branch(stack: str, region: str) -> str:
    """The shell word naming a standalone runbook's branch: ``dr/<stack>-<region>-<UTC minute>``."""
    return f'"{DR_BRANCH_PREFIX}{stack}-{region}-$(date -u +%Y%m%dT%H%MZ)"'


def commit_subject(stack: str, region: str) -> str:
    """The subject of a runbook's commit of its stack file(s): ``DR: <region> of <stack>``; the
    outer runbook's skip check looks for it on the branch (:class:`SourceRunbook`)."""
    return f"DR: {region} of {stack}"


def is_lifted_check(stack: str, repository: str) -> str:
    """A shell test that succeeds only when ``stack``'s freeze variable does not exist ("was not
    found" on a 404: cli/cli pkg/cmd/variable/get/get.go ``getRun``, 44ee177)."""
    return f"gh variable get {freeze_variable(stack)} --repo {repository} 2>&1 | grep -q 'was not found'"


def aws_profile(stack: str) -> str:
    """The AWS CLI profile the runbook's commands for ``stack`` run as: the profile named after the
    stack (docs/dr.md, prerequisites), signed in as its ``clusterAdminRoleArn``. The stack file has
    no profile key: the program's providers take the caller's credentials."""
    return stack


def as_profile(stack: str, command: str) -> str:
    """``command`` run as ``stack``'s profile (``AWS_PROFILE=<profile> command``): pulumi, its AWS
    provider and the ``aws eks get-token`` of a kubeconfig all read ``AWS_PROFILE``, unless AWS
    credentials are set in the environment, which win (AWS CLI docs, configure envvars:
    https://docs.aws.amazon.com/cli/latest/userguide/cli-configure-envvars.html); the
    prerequisites unset those."""
    return f"AWS_PROFILE={shlex.quote(aws_profile(stack))} {command}"


def freeze_variable(stack: str) -> str:
    """The repository variable that freezes ``stack``'s automation: ``PLATFORM_FREEZE_<STACK>``.

    A GitHub variable name holds only letters, digits and underscores and is case-insensitive
    (https://docs.github.com/en/actions/reference/workflows-and-actions/variables, naming
    conventions); a Pulumi stack name may also hold ``-`` and ``.``, which become ``_``."""
    return FREEZE_VARIABLE_PREFIX + re.sub(r"[^A-Z0-9_]", "_", stack.upper())


@dataclass(frozen=True)
class EditStack:
    """Edit ``Pulumi.<stack>.yaml``: set top-level keys (full names), drop a region everywhere,
    add (``admit``) or remove (``withdraw``) the operator's address in regions' publicAccessCidrs."""

    stack: str
    set_keys: tuple[tuple[str, Any], ...] = ()
    remove_region: str | None = None
    admit: tuple[str, ...] = ()
    withdraw: tuple[str, ...] = ()

    def apply(self, raw: Mapping[str, Any], operator_cidr: str = OPERATOR_CIDR_STANDIN) -> dict[str, Any]:
        out = copy.deepcopy(dict(raw))
        for key, value in self.set_keys:
            if value is None:
                out.pop(key, None)
            else:
                out[key] = value
        if self.admit or self.withdraw:
            regions = copy.deepcopy(dict(out.get("platform:regions") or {}))
            for region in (*self.admit, *self.withdraw):
                settings = dict(regions.get(region) or {})
                cidrs = [c for c in settings.get("publicAccessCidrs") or [] if c != operator_cidr]
                if region in self.admit:
                    cidrs.append(operator_cidr)
                settings["publicAccessCidrs"] = cidrs
                regions[region] = settings
            out["platform:regions"] = regions
        if self.remove_region is not None:
            regions = dict(out.get("platform:regions") or {})
            regions.pop(self.remove_region, None)
            out["platform:regions"] = regions
            deploy = out.get("platform:deploy")
            if isinstance(deploy, Mapping) and isinstance(deploy.get("regionOrder"), list):
                order = [r for r in deploy["regionOrder"] if r != self.remove_region]
                out["platform:deploy"] = {**deploy, "regionOrder": order}
        return out

    def command(self) -> str:
        parts = [f"edit Pulumi.{self.stack}.yaml:"]
        if self.remove_region is not None:
            parts.append(
                f"delete platform:regions.{self.remove_region} (and {self.remove_region} from "
                "platform:deploy.regionOrder if it is listed);"
            )
        for key, value in self.set_keys:
            parts.append(
                f"delete {key};"
                if value is None
                else f"set {key}: {json.dumps(value)}"
                + (
                    " (change only the keys that differ, line by line; undo it the same way);"
                    if isinstance(value, Mapping)
                    else ";"
                )
            )
        for region in self.admit:
            parts.append(f"add ${OPERATOR_CIDR_VARIABLE} to platform:regions.{region}.publicAccessCidrs;")
        for region in self.withdraw:
            parts.append(
                f"remove ${OPERATOR_CIDR_VARIABLE} from platform:regions.{region}.publicAccessCidrs;"
            )
        return " ".join(parts).rstrip(";")


def is_frozen_check(stack: str, repository: str) -> str:
    """A shell test that fails only when ``stack``'s freeze variable does not exist: ``gh variable
    get`` prints the value, and "variable NAME was not found" on a 404 (cli/cli
    pkg/cmd/variable/get/get.go ``getRun``, read at 44ee177). Any other failure (no network, an
    expired token, a gh older than v2.50.0, which has no ``variable get``) counts as frozen: the
    freeze is set again (``gh variable set`` is idempotent) and a source's runbook is run rather
    than skipped, never the other way round."""
    return f"! gh variable get {freeze_variable(stack)} --repo {repository} 2>&1 | grep -q 'was not found'"


@dataclass(frozen=True)
class HubCheck:
    """Where another stack's hub cluster is, to ask EKS whether it is ``ACTIVE`` (DescribeCluster
    ``cluster.status``: https://docs.aws.amazon.com/eks/latest/APIReference/API_DescribeCluster.html;
    a region that does not answer, or a cluster that does not exist yet, fails the call)."""

    cluster: str
    region: str
    profile: str

    def test(self) -> str:
        """A shell test that succeeds when the cluster is ACTIVE."""
        return (
            f'[ "$(aws eks describe-cluster --name {self.cluster} --region {self.region} --profile '
            f'{shlex.quote(self.profile)} --query cluster.status --output text 2>/dev/null)" = ACTIVE ]'
        )


@dataclass(frozen=True)
class Freeze:
    """Set (or lift) ``stack``'s freeze: every job of up.yml and deploy-prod.yml that writes or
    deploys ``stack`` is skipped while it is set (docs/dr.md, "Freeze").

    ``unless_recovered``: another stack whose hub is in the lost region; its own runbook may have
    finished already (a rebuild leaves its stack file as it was, so the checkout cannot tell):
    then its hub cluster is ACTIVE and its freeze is lifted, and it is not frozen again. While its
    freeze is set (its runbook is under way) or its hub is not ACTIVE, it is set."""

    stack: str
    repository: str
    lift: bool = False
    unless_recovered: HubCheck | None = None
    # A lift that also passes when the variable does not exist (a source stack whose runbook had
    # finished before this one ran: its freeze was never set again); `gh variable delete` of a
    # missing variable fails ("failed to delete variable": cli/cli 44ee177
    # pkg/cmd/variable/delete/delete.go ``removeRun``, the REST DELETE's 404).
    or_lifted: bool = False

    def command(self) -> str:
        variable = freeze_variable(self.stack)
        if self.lift:
            delete = f"gh variable delete {variable} --repo {self.repository}"
            if self.or_lifted:
                return f"{{ {delete} || {is_lifted_check(self.stack, self.repository)}; }}"
            return delete
        freeze = f"gh variable set {variable} --body true --repo {self.repository}"
        if self.unless_recovered is None:
            return freeze
        return (
            f"if {is_frozen_check(self.stack, self.repository)} || ! {self.unless_recovered.test()}; "
            f"then {freeze}; else echo \"{self.stack}'s hub is ACTIVE and its freeze variable does not exist: "
            f'its runbook has finished (or it needed none): not frozen again"; fi'
        )


@dataclass(frozen=True)
class Commit:
    """Commit ``stack``'s stack file (and ``also``'s: other stacks' files this runbook edited, a
    replica's ECR primary region) on the runbook's branch, if it changed; no push. The last action
    of a runbook run inside another's (:class:`SourceRunbook`): its edits reach ``main`` in the
    outer runbook's pull request, which lifts its freeze after the merge."""

    stack: str
    region: str
    also: tuple[str, ...] = ()

    @property
    def subject(self) -> str:
        return commit_subject(self.stack, self.region)

    def command(self) -> str:
        # Only these stack files: another stack's edits in the working tree are its runbook's.
        files = published_files((self.stack, *self.also))
        # `git diff HEAD --`: staged and unstaged edits alike (a plain `git diff` misses staged ones).
        # Unchanged files (a rebuild leaves the file as it was) still get an empty commit: the outer
        # runbook's skip check looks for the subject, and a pull request needs a commit ahead of
        # main; `--only` with `--allow-empty` and no path leaves what is staged for other files out
        # (git-commit(1), --only). A failed commit (no git identity, a hook, required signing)
        # stops the chain.
        # Run again (a retried step), it adds no second empty commit: a new push would dismiss
        # the approval (dismiss_stale_reviews_on_push).
        return (
            f"{{ {{ git diff --quiet HEAD -- {files} && {{ [ \"$(git log -1 --format=%s)\" = '{self.subject}' ] || "
            f"git commit --allow-empty --only -m '{self.subject}'; }}; }} "
            f"|| git commit -m '{self.subject}' {files}; }}"
        )


@dataclass(frozen=True)
class OpenPullRequest:
    """Commit the stack file(s) (:class:`Commit`), push the runbook's ``dr/`` branch and open a
    pull request into ``main``. The program's ruleset ``protect-main``
    (infra/components/github_repository.py) refuses a direct push to ``main`` for everyone: "Require
    a pull request before merging: Require all commits be made to a non-target branch and submitted
    via a pull request before they can be merged"
    (https://docs.github.com/en/repositories/configuring-branches-and-merges-in-your-repository/managing-rulesets/available-rules-for-rulesets),
    with no bypass actor. Pushing the branch starts no up.yml (it runs on pushes to ``main``
    only) and lifts nothing. ``gh pr create --base --head --title --body`` (cli/cli 44ee177
    pkg/cmd/pr/create/create.go) runs non-interactively with a title and body; run again (a
    retried step), it opens no second one while one is open. ``published``: every stack whose file
    this pull request carries (this one, ``also``, a source stack whose runbook ran inside this
    one). When main already holds them as applied (:func:`main_holds`: a rebuild clears its marks),
    nothing is pushed and no pull request is opened: there is nothing for a second person to
    review. When main changed them since the branch left it (:func:`main_moved`), it stops: the
    runbook did not apply main's change."""

    stack: str
    region: str
    repository: str
    body: str
    also: tuple[str, ...] = ()
    published: tuple[str, ...] = ()

    @property
    def commit(self) -> Commit:
        return Commit(self.stack, self.region, self.also)

    @property
    def files(self) -> str:
        return published_files(self.published or (self.stack, *self.also))

    def command(self) -> str:
        files = self.files
        return (
            f"{self.commit.command()} &&\n"
            "git fetch -q origin main &&\n"
            f"if {main_moved(files)}; then\n"
            f"  {_moved_message(files, 'then this step (a branch pushed before: git push --force-with-lease first; it dismisses an approval)')}\n"
            f"elif {main_holds(files)}; then\n"
            f'  echo "main already holds {files} as this runbook applied them: no pull request, no approval '
            '(skip the next step)"\n'
            "else\n"
            "  git push -u origin HEAD &&\n"
            f"  {{ gh pr view {CURRENT_BRANCH} --repo {self.repository} --json state --jq .state 2>/dev/null | grep -qx OPEN ||\n"
            f"  gh pr create --repo {self.repository} --base main --head {CURRENT_BRANCH} "
            f"--title {shlex.quote(self.commit.subject)} --body {shlex.quote(self.body)}; }}\n"
            "fi"
        )


@dataclass(frozen=True)
class Approve:
    """A second person approves the pull request: someone with write access who is neither its
    author nor its last pusher. Required approvals count only from people with write access
    (https://docs.github.com/articles/approving-a-pull-request-with-required-reviews); the author
    cannot approve their own pull request; ``protect-main`` sets ``require_last_push_approval``
    ("the most recent reviewable push must be approved by someone other than the person who pushed
    it", pulumi-github 6.15.0 ``RepositoryRulesetRulesPullRequestArgs``) and
    ``dismiss_stale_reviews_on_push``, so nobody else pushes to the branch and any push needs a new
    approval. ``gh pr checks`` is informational: ``protect-main`` requires no status check."""

    stack: str
    repository: str
    by: str = "reviewer"

    def command(self) -> str:
        return (
            f"PR=https://github.com/{self.repository}/pull/NUMBER   # the URL the operator's gh pr create printed\n"
            f'gh pr diff "$PR"   # only stack files ({stackset.file_name(self.stack)} ...): the edits the runbook printed\n'
            'gh pr checks "$PR"   # informational: no check gates the merge; pulumi preview may fail while '
            "the region is down\n"
            'gh pr review "$PR" --approve'
        )


@dataclass(frozen=True)
class MergeAndLift:
    """Merge the approved pull request, check that it is merged, and only then lift the freezes
    (``lifts``, the outermost stack's last), then bring the checkout back to ``main``.

    cli/cli 44ee177 pkg/cmd/pr/merge/merge.go: without a method and without a terminal gh stops
    ("--merge, --rebase, or --squash required when not running interactively"), so ``--squash``
    (one commit on ``main`` holding every stack file of the runbook); a pull request whose merge
    state is BLOCKED (not approved) is "not mergeable: the base branch policy prohibits the merge"
    and gh exits non-zero (``canMerge``, ``blockedReason``), as for BEHIND and DIRTY;
    ``--match-head-commit SHA`` passes ``expectedHeadOid`` to GitHub's mergePullRequest, which
    refuses to merge a head other than the one reviewed and applied. ``gh pr view --json state``
    prints OPEN, CLOSED or MERGED (api/query_builder.go); the explicit MERGED test is the lift's
    condition, also if the merge is ever queued (``--auto``, a merge queue: gh then exits 0
    without merging). Run again after a merge whose lifts failed, gh finds the merged pull request
    (a branch name matches every state, pkg/cmd/pr/shared/finder.go) and returns at once
    (``merge``: "if m.merged { return nil }"), so the step can simply be repeated. Whatever gh
    says, a freeze is lifted only once main holds every published file (``published``: the lifted
    stacks' and ``also``'s) exactly as this runbook applied it (:func:`main_holds`): at once when
    nothing was to be published (a rebuild had no pull request), never when main changed them
    since the branch left it (:func:`main_moved`: a pull request merged meanwhile, which GitHub
    would merge with this one as it is, protect-main requiring no status check)."""

    stack: str
    repository: str
    lifts: tuple[Freeze, ...]
    published: tuple[str, ...] = ()

    @property
    def files(self) -> str:
        return published_files(self.published or tuple(f.stack for f in self.lifts))

    def command(self) -> str:
        repo = self.repository
        files = self.files
        lifts = " &&\n".join(f.command() for f in self.lifts)
        return (
            f"B={CURRENT_BRANCH} &&\n"
            "git fetch -q origin main &&\n"
            f"if {main_holds(files)}; then\n"
            f'  echo "main holds {files} as this runbook applied them: nothing to merge"\n'
            f"elif {main_moved(files)}; then\n"
            f"  {_moved_message(files, 'run the pull request step again (a branch pushed before: git push --force-with-lease first, then get a new approval), then this step')}\n"
            "else\n"
            f'  gh pr merge "$B" --repo {repo} --squash --match-head-commit "$(git rev-parse HEAD)" &&\n'
            f'  [ "$(gh pr view "$B" --repo {repo} --json state --jq .state)" = MERGED ] &&\n'
            f"  git fetch -q origin main && {main_holds(files)}\n"
            "fi &&\n"
            f"{lifts} &&\n"
            "git switch main && git pull --ff-only"
        )


@dataclass(frozen=True)
class SourceRunbook:
    """Run another stack's own runbook (printed by ``command``) inside this one, unless it has
    finished on this branch (its commit ``DR: <region> of <stack>`` is on the branch and not yet on
    ``main``: its freeze stays set until this runbook's merge lifts it) or its freeze variable does
    not exist (it finished, and was merged, earlier); while its freeze is set for a runbook under
    way elsewhere, wait for its end instead. ``book`` is that runbook as :func:`build` computes it,
    the same table's minutes; ``region`` its lost region."""

    stack: str
    repository: str
    platform_command: str
    book: Runbook = field(compare=False, repr=False)
    region: str = ""

    def command(self) -> str:
        subject = commit_subject(self.stack, self.region or (self.book.region if self.book else ""))
        return (
            f"if git log --format=%s origin/main..HEAD | grep -qx '{subject}'; then "
            f'echo "{self.stack}\'s runbook has finished on this branch: skip this step"; '
            f"elif {is_frozen_check(self.stack, self.repository)}; then {self.platform_command}; "
            f'else echo "{self.stack}\'s freeze variable does not exist: its runbook has finished, skip this step"; '
            "fi   # print it, then follow it to the end"
        )


@dataclass(frozen=True)
class Kubeconfig:
    """Write a kube context for ``region``'s cluster (EKS DescribeCluster: the cluster must exist)."""

    stack: str
    region: str
    cluster: str
    profile: str

    def command(self) -> str:
        return (
            f"aws eks update-kubeconfig --name {self.cluster} --region {self.region} "
            f"--alias {self.cluster} --profile {shlex.quote(self.profile)}"
        )


@dataclass(frozen=True)
class Backfill:
    """Run the saved ECR backfill script for ``region`` (its repositories must exist)."""

    stack: str
    region: str
    path: str
    source_profile: str

    def command(self) -> str:
        return f"SOURCE_PROFILE={self.source_profile} bash {self.path}"


@dataclass(frozen=True)
class ListApplications:
    """Read the Applications on the hub through its kube context (the hub's API must admit the caller)."""

    stack: str
    region: str
    context: str

    def command(self) -> str:
        # The context's user runs `aws eks get-token` with AWS_PROFILE in its exec env (written by
        # update-kubeconfig --profile); the prefix says the same for whoever reads the command.
        return as_profile(
            self.stack, f"kubectl --context {self.context} -n {naming.ARGOCD_NAMESPACE} get applications"
        )


@dataclass(frozen=True)
class Deploy:
    """The prod deploy, run by deploy-prod.yml on the stack's runners in the hub's VPC (skipped
    while the stack is frozen); it reads the source stack's hub through that hub's public endpoint."""

    stack: str
    repository: str
    dry_run: bool

    def command(self) -> str:
        return (
            f"gh workflow run deploy-prod.yml --repo {self.repository} -f dry-run={str(self.dry_run).lower()}"
            "   # then: gh run watch"
        )


@dataclass(frozen=True)
class Refresh:
    stack: str
    targets: tuple[str, ...]
    run_program: bool = True
    # A provider left out of --target is loaded from its OLD state inputs (pulumi v3.259.0
    # pkg/resource/deploy/step_generator.go loadResourceProvider, providers/registry.go Same),
    # which have no deleteUnreachable; pulumi-kubernetes provider/pkg/provider/provider.go (head after v4.32.0; 4.34.2 runs)
    # (Configure) falls back to PULUMI_K8S_DELETE_UNREACHABLE when that input is absent.
    delete_unreachable: bool = True

    def __post_init__(self) -> None:
        # Without --target, `pulumi refresh` reads the whole stack, through the lost endpoints.
        if not self.targets:
            raise ValueError(f"refresh of {self.stack} without targets: the runbook only refreshes targets")

    def command(self) -> str:
        flags = " --run-program" if self.run_program else ""
        env = f"{DELETE_UNREACHABLE_ENV}=true " if self.delete_unreachable else ""
        return (
            f"{env}"
            + as_profile(self.stack, f"pulumi refresh --stack {self.stack} --yes{flags} \\\n    ")
            + _quote("--target", self.targets)
        )


@dataclass(frozen=True)
class Up:
    stack: str
    targets: tuple[str, ...] = ()
    target_dependents: bool = False
    excludes: tuple[str, ...] = ()

    def command(self) -> str:
        head = as_profile(self.stack, f"pulumi up --stack {self.stack} --yes --policy-pack policies")
        if self.target_dependents:
            head += " --target-dependents"
        rest = [_quote("--target", self.targets)] if self.targets else []
        rest += [_quote("--exclude", self.excludes)] if self.excludes else []
        return " \\\n    ".join([head, *rest])


@dataclass(frozen=True)
class StateDelete:
    stack: str
    urns: tuple[str, ...]
    target_dependents: bool = True
    force: bool = True

    def command(self) -> str:
        flags = (" --force" if self.force else "") + (
            " --target-dependents" if self.target_dependents else ""
        )
        return as_profile(
            self.stack, f"pulumi state delete --stack {self.stack} --yes{flags} \\\n    "
        ) + " \\\n    ".join(shlex.quote(u) for u in self.urns)


@dataclass(frozen=True)
class Preview:
    stack: str

    def command(self) -> str:
        return as_profile(
            self.stack, f"pulumi preview --stack {self.stack} --policy-pack policies --expect-no-changes"
        )


@dataclass(frozen=True)
class Shell:
    """A command outside Pulumi (gh, git, kubectl, the backfill, the deploy command)."""

    text: str

    def command(self) -> str:
        return self.text


RUNNER_CONNECTION = "aws:codeconnections/connection:Connection"


@dataclass(frozen=True)
class AuthorizeConnection:
    """A person authorizes the hub runners' new CodeConnections connection (created ``PENDING``)
    in the console, then confirms it is ``AVAILABLE``: CreateProject and CreateWebhook fail
    against a pending connection (infra/components/runner.py; AWS Developer Tools console user
    guide, connections-update.html)."""

    stack: str
    region: str
    name: str

    def command(self) -> str:
        return (
            f"# console ({self.region}): Developer Tools > Settings > Connections > {self.name} > "
            "Update pending connection > install or pick the AWS Connector for GitHub > Connect\n"
            f"aws codeconnections list-connections --profile {aws_profile(self.stack)} --region {self.region} "
            f"--provider-type-filter GitHub --query \"Connections[?ConnectionName=='{self.name}']"
            '.ConnectionStatus" --output text   # expect AVAILABLE'
        )


@dataclass(frozen=True)
class ArgoCdSecrets:
    """Argo CD's Secrets Manager secrets (``names``: repository credentials, notification keys)
    exist in ``region``, where the hub's External Secrets store reads them (infra/addons.py
    ``argocd_secret_store``: Secrets Manager of the cluster's own region). Day 0 creates them in
    the hub's region with a replica in every other region of the stack (docs/addons.md), so a
    moved hub finds a replica; one whose primary is in a ``lost`` region is promoted to a
    standalone secret (StopReplicationToReplica, called in the replica's region: "a disaster
    recovery solution if the primary secret becomes unavailable",
    https://docs.aws.amazon.com/secretsmanager/latest/userguide/standalone-secret.html), so it can
    be rotated (a replica cannot be updated apart from its primary). A replica's ARN is the
    primary's with the region changed
    (https://docs.aws.amazon.com/secretsmanager/latest/userguide/replicate-secrets.html), which
    the store role's ``<name>-??????`` ARN pattern in the new hub's region matches. A missing
    secret (``ResourceNotFoundException``) stops the step: it is not created from anywhere (its
    value never passes through the program); the operator creates it as docs/addons.md says. Any
    other error (no profile, an expired session, access denied) stops it too, quoting the error."""

    stack: str
    region: str
    names: tuple[str, ...]
    lost: tuple[str, ...] = ()

    def command(self) -> str:
        aws = f"aws secretsmanager --profile {shlex.quote(aws_profile(self.stack))} --region {self.region}"
        promote = (
            f'      case " {" ".join(self.lost)} " in *" $primary "*) {aws} stop-replication-to-replica '
            '--secret-id "$s" --query ARN --output text || exit 1;; esac\n'
            if self.lost
            else ""
        )
        # A subshell: its `exit` ends the check, not the operator's shell.
        return (
            f"( for s in {' '.join(shlex.quote(n) for n in self.names)}; do\n"
            f'      primary=$({aws} describe-secret --secret-id "$s" --query PrimaryRegion --output text 2>&1) '
            f'|| {{ case "$primary" in *ResourceNotFoundException*) echo "missing in {self.region}: $s '
            f'(create it: docs/addons.md)";; *) echo "cannot read $s in {self.region}: $primary";; esac; '
            "exit 1; }\n"
            f"{promote}"
            f'    done && echo "Argo CD\'s secrets are in {self.region}" )'
        )


Action = (
    ArgoCdSecrets
    | EditStack
    | AuthorizeConnection
    | Refresh
    | Up
    | StateDelete
    | Preview
    | Shell
    | Freeze
    | Commit
    | OpenPullRequest
    | Approve
    | MergeAndLift
    | Kubeconfig
    | Backfill
    | ListApplications
    | Deploy
    | SourceRunbook
)


@dataclass(frozen=True)
class Step:
    title: str
    runs_from: str
    minutes: float
    actions: tuple[Action, ...] = ()
    notes: tuple[str, ...] = ()
    # The runbook ends with this step when it is followed on its own: another stack's runbook,
    # which this step starts, runs the rest inside it (printed with --inside).
    ends_here: bool = False

    @property
    def commands(self) -> tuple[str, ...]:
        return tuple(a.command() for a in self.actions)


@dataclass(frozen=True)
class Runbook:
    stack: str
    region: str
    is_hub: bool
    kind: str
    targets: tuple[Resource, ...]
    dependents: tuple[Resource, ...]
    steps: tuple[Step, ...]
    hub_move: dict[str, Any] | None = field(default=None)
    backfill_script: str | None = None

    @property
    def target_urns(self) -> list[str]:
        return [r.urn for r in self.targets]

    @property
    def actions(self) -> list[Action]:
        return [a for s in self.steps for a in s.actions]

    @property
    def minutes(self) -> float:
        """The expected duration, in minutes: the steps' sum, rounded to whole minutes as
        :func:`render` prints it in the header (a step that stands for this runbook counts it)."""
        return float(round(sum(s.minutes for s in self.followed)))

    @property
    def followed(self) -> tuple[Step, ...]:
        """The steps followed when this runbook is printed on its own: all of them, or those up
        to a step that ``ends_here`` (the rest runs inside another stack's runbook)."""
        end = next((i for i, s in enumerate(self.steps) if s.ends_here), len(self.steps) - 1)
        return self.steps[: end + 1]


def _quote(flag: str, urns: Sequence[str]) -> str:
    return " \\\n    ".join(f"{flag} {shlex.quote(u)}" for u in urns)


# ---------------------------------------------------------------------------------------------
# What a region holds
# ---------------------------------------------------------------------------------------------


def _is_global(r: Resource) -> bool:
    return r.type.startswith(GLOBAL_TYPE_PREFIXES)


# The traffic components of one region (infra/components/traffic.py names them
# ``traffic-<what>-<region>``): their Route 53 objects are global, but they belong to that region.
TRAFFIC_TYPE_PREFIX = "platform:traffic:"


def region_traffic_globals(plan: Plan, region: str) -> list[Resource]:
    """The global (Route 53) resources of ``region``'s traffic components: its health check and
    its certificate's validation records. They are declared through the account's provider, so a
    lost region does not take them down, but a region that leaves the stack takes them with it."""
    index = plan.by_urn()

    def owned(r: Resource) -> bool:
        parent = index.get(r.parent) if r.parent else None
        return (
            parent is not None
            and parent.type.startswith(TRAFFIC_TYPE_PREFIX)
            and parent.name.endswith(f"-{region}")
        )

    return sorted((r for r in plan.resources if _is_global(r) and owned(r)), key=lambda r: r.urn)


# ---------------------------------------------------------------------------------------------
# pulumi-eks's children: the offline engine does not run the packaged component, the real one does
# ---------------------------------------------------------------------------------------------

EKS_COMPONENT = "eks:index:Cluster"
EKS_SERVICE_ROLE = "eks:index:ServiceRole"
EKS_CONTROL_PLANE = "aws:eks/cluster:Cluster"
# pulumi-eks's ServiceRole for the control plane: one managed policy (cluster.ts createCore).
EKS_CLUSTER_POLICY_ID = "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"

# The component's inputs that decide which children it creates, and the values the program
# passes (infra/components/cluster.py); another value creates children not listed here.
_EKS_OPTIONS_READ: dict[str, Any] = {
    "skipDefaultNodeGroup": True,  # no default node group, instance role or profile
    "skipDefaultSecurityGroups": True,  # no node security group or ingress rule
    "useDefaultVpcCni": True,  # no VpcCniAddon
    "createOidcProvider": False,  # no IAM OIDC provider
    "authenticationMode": "API",  # no aws-auth ConfigMap
}
# Inputs that would add children (roles, profiles, Fargate, storage classes, access entries, Auto
# Mode's node role, a creation role): the program sets none of them.
_EKS_INPUTS_NOT_READ = (
    "serviceRole",
    "instanceRole",
    "instanceRoles",
    "createInstanceRole",
    "fargate",
    "autoMode",
    "storageClasses",
    "accessEntries",
    "nodeGroupOptions",
    "roleMappings",
    "userMappings",
    "creationRoleProvider",
)


class UnreadEksOptions(ValueError):
    """The program passes pulumi-eks options whose children :func:`eks_children` does not list."""


def _child_urn(parent_urn: str, type_: str, name: str) -> str:
    """The URN the engine gives a child: its parent's type chain, ``$``, its own type
    (pulumi/pulumi v3.259.0 sdk/go/common/resource/urn/urn.go ``New``: ``<parent type>$<type>``,
    the root stack type left out)."""
    head = parent_urn.rsplit("::", 1)[0]
    return f"{head}${type_}::{name}"


def _sha1_8(text: str) -> str:
    # pulumi-eks nodejs/eks/servicerole.ts sha1hash: the first 8 hex digits of the SHA-1.
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:8]


def eks_children(component: Resource) -> list[Resource]:
    """The resources pulumi-eks's ``eks:index:Cluster`` registers under ``component``, as the
    engine records them in the state, for the options the program passes.

    pulumi/pulumi-eks nodejs/eks/cluster/cluster.ts (read at main 7bf0c1b1 = v4.3.0 plus nine
    dependency-only commits; 4.4.0 is installed and was not in the copy read), ``createCore`` and
    ``createCluster``, all with ``parent`` the component:

    * ``eks:index:ServiceRole`` ``<name>-eksRole`` (no ``serviceRole`` input) and under it
      (nodejs/eks/servicerole.ts) ``aws:iam/role:Role`` ``<name>-eksRole-role`` and
      ``aws:iam/rolePolicyAttachment:RolePolicyAttachment`` ``<name>-eksRole-<sha1(policy id)[:8]>``
      for AmazonEKSClusterPolicy;
    * ``aws:eks/cluster:Cluster`` ``<name>-eksCluster``, the control plane (waits for the role);
    * ``pulumi:providers:kubernetes`` ``<name>-eks-k8s``, the component's own Kubernetes provider.

    None of the optional children: ``clusterSecurityGroup`` given and ``skipDefaultSecurityGroups``
    (no ``<name>-eksClusterSecurityGroup``, ``<name>-nodeSecurityGroup``), ``skipDefaultNodeGroup``
    (no node group, ``<name>-instanceRole``, instance profile), kube-proxy and CoreDNS add-ons
    disabled, ``useDefaultVpcCni`` (no ``<name>-vpc-cni``), no OIDC provider, authentication mode
    API (no ``<name>-nodeAccess`` ConfigMap), no storage classes, Fargate or Auto Mode.

    Children inherit the component's ``protect`` (pulumi/pulumi sdk/nodejs/resource.ts v3.259.0:
    ``opts.protect`` undefined takes the parent's; the construct request carries it,
    sdk/nodejs/provider/server.ts) and its providers (``this.__providers = parent.__providers``),
    so the AWS children use the component's ``aws`` provider.

    Raises :class:`UnreadEksOptions` for any other option value: the list would be wrong.
    """
    if component.type != EKS_COMPONENT:
        raise ValueError(f"{component.urn} is not an {EKS_COMPONENT}")
    inputs = component.inputs
    wrong = [
        f"{k}={inputs.get(k)!r} (read: {v!r})" for k, v in _EKS_OPTIONS_READ.items() if inputs.get(k) != v
    ]
    wrong += [f"{k} is set" for k in _EKS_INPUTS_NOT_READ if inputs.get(k) not in (None, False, [], {}, "")]
    for addon in ("corednsAddonOptions", "kubeProxyAddonOptions"):
        if (inputs.get(addon) or {}).get("enabled") is not False:
            wrong.append(f"{addon}.enabled is not false")
    if wrong:
        raise UnreadEksOptions(
            f"{component.urn}: pulumi-eks options whose children infra/dr.py eks_children does not list: "
            + "; ".join(wrong)
        )
    aws_provider = component.providers.get("aws") or component.provider
    name = component.name

    def child(parent: str, type_: str, child_name: str, **kw: Any) -> Resource:
        custom = not type_.startswith("eks:index:")
        return Resource(
            urn=_child_urn(parent, type_, child_name),
            type=type_,
            name=child_name,
            custom=custom,
            parent=parent,
            provider=kw.get("provider"),
            providers=dict(component.providers) if not custom else {},
            dependencies=list(kw.get("dependencies", [])),
            property_dependencies={},
            protect=component.protect,
            retain_on_delete=False,
            delete_before_replace=False,
            ignore_changes=[],
            remote=False,
            inputs=dict(kw.get("inputs", {})),
        )

    service_role = child(component.urn, EKS_SERVICE_ROLE, f"{name}-eksRole")
    role = child(
        service_role.urn,
        "aws:iam/role:Role",
        f"{name}-eksRole-role",
        provider=aws_provider,
        inputs={"assumeRolePolicy": "eks.amazonaws.com"},
    )
    attachment = child(
        service_role.urn,
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        f"{name}-eksRole-{_sha1_8(EKS_CLUSTER_POLICY_ID)}",
        provider=aws_provider,
        dependencies=[role.urn],
        inputs={"policyArn": EKS_CLUSTER_POLICY_ID},
    )
    # The control plane carries the component's inputs (vpcConfig, version, encryption ...).
    control_plane = child(
        component.urn,
        EKS_CONTROL_PLANE,
        f"{name}-eksCluster",
        provider=aws_provider,
        dependencies=[role.urn, attachment.urn],
        inputs={k: v for k, v in inputs.items() if k not in ("tags",)},
    )
    k8s_provider = child(component.urn, "pulumi:providers:kubernetes", f"{name}-eks-k8s")
    return [service_role, role, attachment, control_plane, k8s_provider]


def with_eks_children(plan: Plan) -> Plan:
    """``plan`` with pulumi-eks's children after each ``eks:index:Cluster`` (:func:`eks_children`),
    the resources a real ``pulumi up`` records and the runbook's commands must name."""
    known = {r.urn for r in plan.resources}
    resources: list[Resource] = []
    for r in plan.resources:
        resources.append(r)
        if r.type == EKS_COMPONENT:
            # Idempotent: a plan that has them already keeps them once.
            resources.extend(c for c in eks_children(r) if c.urn not in known)
    return Plan(plan.stack, plan.config, resources, plan.outputs)


def control_plane_urns(plan: Plan, regions: Sequence[str]) -> tuple[str, ...]:
    """The ``eks:index:Cluster`` components of ``regions`` and their control planes: what a
    targeted update of the clusters' endpoint settings names (no dependents: no Kubernetes call)."""
    out: list[str] = []
    for r in plan.resources:
        if r.type == EKS_COMPONENT and plan.region_of(r) in regions:
            out += [r.urn, *(c.urn for c in eks_children(r) if c.type == EKS_CONTROL_PLANE)]
    return tuple(out)


def region_resources(plan: Plan, region: str) -> list[Resource]:
    """Everything that lives in ``region``: its AWS resources (global IAM aside), its providers,
    its components, and the Kubernetes objects on its cluster."""
    regions = graph.region_index(plan)
    return sorted(
        (
            r
            for r in plan.resources
            if regions[r.urn] == region and not _is_global(r) and r.name != providers.ACCOUNT_PROVIDER
        ),
        key=lambda r: r.urn,
    )


def lost_with(plan: Plan, region: str) -> list[Resource]:
    """What cannot be reached while ``region`` is down: its resources, and the (global) IAM
    objects declared through its provider, whose provider authenticates in the lost region."""
    index = plan.by_urn()
    provider = f"aws-{region}"
    iam = [
        r
        for r in plan.resources
        if _is_global(r) and r.provider in index and index[r.provider].name == provider
    ]
    return sorted([*region_resources(plan, region), *iam], key=lambda r: r.urn)


def kubernetes_objects(plan: Plan, region: str) -> list[Resource]:
    """The objects on ``region``'s cluster: what its Kubernetes provider manages."""
    index = plan.by_urn()
    return [
        r
        for r in region_resources(plan, region)
        if r.custom
        and not r.is_provider
        and r.provider in index
        and index[r.provider].type == "pulumi:providers:kubernetes"
    ]


def rebuild_sets(plan: Plan, region: str) -> tuple[list[Resource], list[Resource]]:
    """(targets, dependents elsewhere): the region's resources, and what depends on them.

    The targets include the region's providers: their inputs change with
    ``platform:unreachableRegions``, and only a targeted provider is updated by a targeted
    ``pulumi up``. The account's IAM objects are declared through their own provider
    (infra/providers.py), so no regional provider drags them in.
    """
    targets = region_resources(plan, region)
    index = plan.by_urn()
    reached = graph.closure({r.urn for r in targets}, graph.dependents(plan))
    target_urns = {r.urn for r in targets}
    others = sorted((index[u] for u in reached - target_urns), key=lambda r: r.urn)
    return targets, others


def _describe(plan: Plan, r: Resource) -> str:
    where = plan.region_of(r) or "global"
    kind = next((k for prefix, k in GLOBAL_KINDS.items() if r.type.startswith(prefix)), None)
    if kind is not None:
        where = f"{kind}, declared through {where}"
    return f"{r.type} {r.name} ({where})"


def backfill_script(config: cfg.StackConfig, region: str) -> str:
    """The ECR backfill script for ``region`` (infra.documents.ecr.backfill_commands)."""
    from infra.documents import ecr as ecr_documents

    return "\n".join(ecr_documents.backfill_commands(config, region)) + "\n"


def _moved_config(plan: Plan, new_hub: str, raw_in: Mapping[str, Any] | None = None) -> dict[str, Any]:
    raw = copy.deepcopy(
        dict(raw_in) if raw_in is not None else cfg.read_stack_file(cfg.stack_file(plan.stack))
    )
    raw["platform:hubRegion"] = new_hub
    # accountRegion defaults to the hub: pinned to the old hub, the account-wide objects keep
    # their provider (infra/providers.py); the runbook's move step writes the same line.
    raw.setdefault("platform:accountRegion", plan.config.account_region)
    return raw


def hub_move(
    plan: Plan, new_hub: str, raw: Mapping[str, Any] | None = None
) -> tuple[Plan, list[Resource], list[Resource]]:
    """The plan with ``hubRegion`` moved, and the resources created and deleted (or replaced) by the move."""
    moved = offline.run(plan.stack, flat_config=raw if raw is not None else _moved_config(plan, new_hub))
    before = {r.urn: r for r in plan.resources}
    after = {r.urn: r for r in moved.resources}
    # A resource keeps its URN when only its provider changes (Argo CD's objects move to the new
    # hub's Kubernetes provider); Pulumi replaces it, so it is created on the new hub too.
    created = sorted(
        (r for r in moved.resources if r.urn not in before or before[r.urn].provider != r.provider),
        key=lambda r: r.urn,
    )
    deleted = sorted(
        (r for r in plan.resources if r.urn not in after or after[r.urn].provider != r.provider),
        key=lambda r: r.urn,
    )
    return moved, created, deleted


# ---------------------------------------------------------------------------------------------
# Timing: the creation times `make bench` uses
# ---------------------------------------------------------------------------------------------


def endpoint_waits(plan: Plan, reachable: Sequence[str]) -> list[str]:
    """The ``eks:index:Cluster`` components of ``plan`` whose endpoint a `pulumi up` from the
    operator's workstation waits for in vain: public (``endpointPublicAccess``, so pulumi-eks
    polls ``/healthz``: infra/bench.py EKS_ENDPOINT_WAIT_SECONDS) and not in ``reachable``, the
    regions whose endpoint admits the operator's address at that step and answers."""
    return sorted(
        r.urn
        for r in plan.of_type(EKS_COMPONENT)
        if r.inputs.get("endpointPublicAccess") and plan.region_of(r) not in reachable
    )


def _build_minutes(plan: Plan, urns: set[str], reachable: Sequence[str] | None = None) -> float:
    """The critical path of ``urns``; pulumi-eks's children are left out: the bench table's
    control-plane time is the ``eks:index:Cluster`` component's, which creates them. With
    ``reachable`` (a `pulumi up` from the workstation), each cluster :func:`endpoint_waits`
    names takes pulumi-eks's readiness wait on top (its outputs come after it, targeted or not:
    the program declares every cluster), and the update lasts at least that wait."""
    from infra import bench

    urns = {u for u in urns if f"${EKS_COMPONENT}$" not in u}
    durations = {r.urn: bench.seconds_of(r) for r in plan.resources}
    waiting = endpoint_waits(plan, reachable) if reachable is not None else []
    for urn in waiting:
        durations[urn] = (durations[urn] if urn in urns else 0.0) + bench.EKS_ENDPOINT_WAIT_SECONDS
    seconds, _ = graph.critical_path(plan, durations, urns | set(waiting))
    if waiting:
        seconds = max(seconds, bench.EKS_ENDPOINT_WAIT_SECONDS)
    return round(seconds / 60, 1)


def _wait_minutes(plan: Plan, reachable: Sequence[str]) -> float:
    """pulumi-eks's readiness wait in a short `pulumi up`, or a `pulumi refresh --run-program`,
    from the workstation (nothing created). A refresh that runs the program waits too: the engine
    calls every remote component's Construct whatever the targets (pulumi/pulumi v3.259.0
    pkg/resource/deploy/source_eval.go, RegisterResource of a remote component), and pulumi-eks
    polls the endpoint outside a preview (nodejs/eks/cluster/cluster.ts, v4.3.0: ``!isDryRun()``);
    the targeted objects' providers are built from that component's kubeconfig, so their reads
    start after it. After the last try it goes on: the step is slower, it does not fail."""
    from infra import bench

    return round(bench.EKS_ENDPOINT_WAIT_SECONDS / 60, 1) if endpoint_waits(plan, reachable) else 0.0


ENDPOINT_WAIT_NOTE = (
    "Running the program runs pulumi-eks for every cluster, targeted or not: it polls each public "
    "endpoint this workstation does not reach for up to 6 minutes before the reads start (counted "
    "above); that is expected, not a hang."
)


def _state_minutes(count: int) -> float:
    from infra import bench

    rounds = -(-count // PULUMI_PARALLEL)
    return round(max(1.0, rounds * bench.EVERYTHING_ELSE_SECONDS / 60), 1)


# ---------------------------------------------------------------------------------------------
# The runbook
# ---------------------------------------------------------------------------------------------


def _endpoint_otherwise(config: cfg.StackConfig, regions: Sequence[str]) -> str:
    """What reaches ``regions``' cluster API endpoints without the operator's address, from
    their ``publicAccessCidrs`` (empty: a private-only endpoint, infra/config.py)."""
    cidrs = sorted(
        {c for r in regions if r in config.region_names for c in config.region(r).public_access_cidrs}
    )
    if not cidrs:
        return "private otherwise, reached by no workstation"
    return f"otherwise open only to {', '.join(cidrs)}, the configured publicAccessCidrs"


def _deploy_role_arn(config: cfg.StackConfig) -> str | None:
    """The role deploy-prod.yml's job assumes through GitHub's OIDC token for ``config``'s stack
    (infra.documents.iam.role_specs, docs/iam.md ``deploy``); None for a stack that has none."""
    from infra.documents import iam

    names = [s.role_name for s in iam.role_specs(config) if s.purpose == iam.DEPLOY]
    return f"arn:aws:iam::{config.account_id}:role/{names[0]}" if names else None


def github_identity(slug: str) -> str:
    """Who the runbook's ``gh`` commands run as. Creating, updating and deleting a repository's
    Actions variable: "Authenticated users must have collaborator access to a repository to
    create, update, or read variables", a fine-grained token the repository's Variables write
    permission (https://docs.github.com/rest/actions/variables); cancelling a run and dispatching a
    workflow: write access, a fine-grained token Actions write, a classic token the repo scope
    (https://docs.github.com/rest/actions/workflow-runs#cancel-a-workflow-run,
    https://docs.github.com/rest/actions/workflows#create-a-workflow-dispatch-event). A
    repository admin has all of them. Pushing the runbook's branch and creating and merging its pull
    request: Contents write and Pull requests write for a fine-grained token
    (https://docs.github.com/en/rest/authentication/permissions-required-for-fine-grained-personal-access-tokens);
    the approval is a second person's (:class:`Approve`)."""
    return (
        f"gh signed in (gh auth status) as a GitHub identity that may write {slug}'s Actions variables, "
        "run and cancel its workflows, push a branch and open and merge a pull request: a user with write "
        "access (a repository admin has it), or a fine-grained token with Variables, Actions, Contents and "
        "Pull requests write"
    )


def _approvers(config: cfg.StackConfig) -> str:
    """Who may approve the runbook's pull request, from ``platform:github.reviewers`` (numeric
    GitHub IDs) when the stack sets it."""
    named = [f"user {u}" for u in config.github.reviewer_users] + [
        f"a member of team {t}" for t in config.github.reviewer_teams
    ]
    if not named:
        return "a second person with write access to the repository"
    return (
        f"one of {config.stack}'s platform:github.reviewers ({', '.join(named)}), who approve its "
        "production deploys too"
    )


def _page_the_approver(config: cfg.StackConfig) -> str:
    return (
        f"Page the approver now: {_approvers(config)}, neither you nor anyone who will push to this "
        f"runbook's branch. The runbook ends with a pull request into main ({config.github.slug}'s ruleset "
        "protect-main needs one approving review from someone other than its author and last pusher); "
        "paged now, the review does not start cold."
    )


def _where(config: cfg.StackConfig, hub: str) -> dict[str, str]:
    admin = f"as {config.cluster_admin_role_arn}"
    hub_cluster = naming.cluster_name(config.environment, hub)
    deploy_role = _deploy_role_arn(config)
    return {
        "workstation": f"an operator workstation (AWS APIs and GitHub only), {admin}",
        "hub": (
            f"the operator workstation ({admin}), whose address (${OPERATOR_CIDR_VARIABLE}) the "
            f"'Admit the operator' step added to {hub_cluster}'s API endpoint ({_endpoint_otherwise(config, [hub])}); "
            "CI's runners do not run while frozen"
        ),
        "runners": (
            f"{naming.WORKFLOW_DEPLOY} on {config.stack}'s CodeBuild runners in the hub's VPC (private endpoint), "
            "once the freeze is lifted, "
            + (
                f"as {deploy_role} (its OIDC token for environment {config.github.deploy_environment}); "
                if deploy_role
                else "with no deploy role in this stack (docs/iam.md); "
            )
            + "it reads the source stack's hub through that hub's public endpoint, as that stack's verify role"
        ),
    }


def _workflows_waiting_for(config: cfg.StackConfig) -> tuple[str, ...]:
    """The workflows whose queued or waiting runs the freeze step cancels for ``config``'s stack."""
    out: list[str] = []
    if config.github.reviewers is not None:
        out.append("up.yml")
    if config.argocd.sync != "automated":
        out.append("deploy-prod.yml")
    return tuple(out)


def source_stacks(config: cfg.StackConfig, root: Path = cfg.PROJECT_ROOT) -> list[str]:
    """The stacks whose hub admits ``config``'s hub NAT addresses (read through a StackReference to
    this stack's ``hubEgressCidrs``: infra.components.hub_readers), from the checkout's stack files."""
    stacks = stackset.load(root)
    return sorted(
        s.stack for s in stacks.values() if config.stack in stackset.deploy_readers(s, stacks.values())
    )


def hub_lost_stacks(config: cfg.StackConfig, lost: Sequence[str], root: Path = cfg.PROJECT_ROOT) -> list[str]:
    """The other stacks of the checkout whose hub (``platform:hubRegion`` in their stack file) is
    in ``lost``: their CI runners (the CodeBuild project in the hub's VPC, whose webhook is in
    the hub's region) are lost with it, so an up.yml run would queue their job for good
    (:class:`MergeAndLift`: the merge is a push to main). This runbook freezes them before its
    merge; each one's own runbook sets the same freeze again and its merge lifts it (``gh variable set`` POSTs, then PATCHes on the 409
    of an existing variable: cli/cli pkg/cmd/variable/set/http.go ``setVariable``, read at 10db389)."""
    return sorted(
        s.stack for s in stackset.load(root).values() if s.stack != config.stack and s.hub_region in lost
    )


def replicas_still_running(config: cfg.StackConfig, region: str, root: Path = cfg.PROJECT_ROOT) -> list[str]:
    """The replicas of ``config``'s stack (:func:`infra.stackset.deploy_readers`: the stacks that
    receive its images) whose stack file in ``root`` still lists ``region``. While one does, taking
    ``region`` out of the source leaves a pair of stack files the stack-set check refuses (a region
    of the replica that its source does not replicate into: infra/stackset.py), so every later
    ``make plan``, the runbooks' first step included, fails; the replica's runbook goes first."""
    stacks = stackset.load(root)
    readers = set(stackset.deploy_readers(config, stacks.values()))
    return sorted(s.stack for s in stacks.values() if s.stack in readers and region in s.region_names)


def region_outside(config: cfg.StackConfig, region: str) -> cfg.ConfigError:
    """The error for a ``--region`` that is not one of the stack's regions. The stack's
    ``accountRegion`` may be one (a moved hub leaves it behind; a fork may set it anywhere): no
    cluster of the stack is there, so there is no runbook, only the incident switch for its
    provider (docs/dr.md, "The account region alone"), which the error spells out."""
    regions = ", ".join(config.region_names)
    if region != config.account_region:
        return cfg.ConfigError("--region", region, f"expected one of the stack's regions: {regions}")
    listed = region in config.unreachable_regions
    return cfg.ConfigError(
        "--region",
        region,
        f"{region} is {config.stack}'s accountRegion but none of its regions ({regions}): none of its "
        "clusters is there now, so there is no runbook. "
        + (
            f"It is listed in platform:unreachableRegions of {stackset.file_name(config.stack)} already (a hub "
            "move leaves its old hub there): nothing else to do; remove it once the region answers again"
            if listed
            else f"While it does not answer, add it to platform:unreachableRegions in "
            f"{stackset.file_name(config.stack)} (the account's provider then calls a reachable region's "
            "STS), and bring it to main through a reviewed pull request (protect-main refuses a direct push); "
            "remove it the same way once the region answers again"
        )
        + ' (docs/dr.md, "The account region alone")',
    )


def paired_hub(regions: Sequence[str], lost: Collection[str], preferred: Sequence[str | None]) -> str | None:
    """Where another stack's hub moves when a runbook moves it with this one's (both hubs lost):
    the first of ``preferred`` (the operator's ``--new-hub``, the region this stack's hub goes to)
    among that stack's ``regions`` not in ``lost``, else its first surviving region; None when
    none survives. The stop step (which picks the replica's ``--new-hub``) and the nested source
    runbook step (which picks the source's) both use it, so the two runbooks name one region."""
    survivors = [r for r in regions if r not in lost]
    return next((r for r in preferred if r in survivors), survivors[0] if survivors else None)


def _replicas_first_steps(
    config: cfg.StackConfig,
    region: str,
    where: Mapping[str, str],
    root: Path,
    outer: str | None = None,
    new_hub: str | None = None,
) -> list[Step]:
    """A stop before anything changes when a replica still runs ``region`` (a runbook that takes
    ``region`` out of an image source): the replica's own runbook comes first, moving the
    replica's hub to ``new_hub`` (this runbook's) where it can, so that runbook moves this one's
    hub there too; the step's minutes are that runbook's total. None for ``outer``, whose runbook
    runs this one after taking ``region`` out of its own stack file."""
    steps: list[Step] = []
    for replica in replicas_still_running(config, region, root):
        if replica == outer:
            continue
        replica_raw = cfg.read_stack_file(cfg.stack_file(replica, root))
        other = cfg.load_stack_file(replica, root)
        # The replica's runbook loses what its own stack file lists as unreachable, and region.
        lost_there = {*other.unreachable_regions, region}
        replica_hub = (
            paired_hub(other.region_names, lost_there, (new_hub, config.hub_region))
            if region == other.hub_region
            else None
        )
        stays = region != other.hub_region
        how = f"--new-hub {replica_hub}" if replica_hub else "--stays-down" if stays else ""
        own = f".venv/bin/platform dr --stack {replica} --region {region} {how}".rstrip()
        minutes = 1.0
        refused = ""
        if replica_hub or stays:
            try:
                replica_book = build(
                    offline.run(replica, flat_config=replica_raw),
                    region,
                    new_hub=replica_hub,
                    stays_down=stays,
                    raw=replica_raw,
                    root=root,
                )
                minutes = replica_book.minutes
            except cfg.ConfigError as exc:
                # Printed as it is: the operator sees the same refusal when running the command.
                refused = f" From this checkout that command refuses: {exc}; fix that first."
        nests_this = region == other.hub_region and region == config.hub_region
        # Where the replica's runbook moves this stack's hub (its nested source step, same rule).
        this_hub = (
            paired_hub(config.region_names, lost_there, (replica_hub,))
            if nests_this and replica_hub
            else None
        )
        steps.append(
            Step(
                f"Stop: {replica}'s runbook for {region} comes first",
                f"an operator workstation with the {aws_profile(replica)} profile, as {other.cluster_admin_role_arn}",
                minutes,
                (
                    Shell(
                        f"{own}   # print it and follow it"
                        + (
                            "; it runs this one at its step naming it"
                            if nests_this
                            else "; then print this runbook again"
                        )
                    ),
                ),
                (
                    f"{stackset.file_name(replica)} still runs {region} and receives {config.stack}'s images "
                    f"there. Taking {region} out of {config.stack} first would leave a pair of stack files "
                    f"`make plan` refuses ({region} a region of {replica} that {config.stack} no longer "
                    "replicates into), and every later runbook's first step runs `make plan`. "
                    f"{replica}'s runbook takes {region} out of {replica}"
                    + (
                        f" and, since {config.stack}'s hub is in {region} too, tells you when to run this "
                        "runbook (its step naming it), before its own pull request"
                        + (f", with --new-hub {this_hub}" if this_hub else "")
                        + (
                            f" (not {new_hub}: {replica}'s hub cannot move there, and its runbook moves "
                            f"{config.stack}'s hub where {replica}'s goes when {config.stack} has that region)"
                            if this_hub and new_hub is not None and this_hub != new_hub
                            else ""
                        )
                        if nests_this
                        else ""
                    )
                    + f". Once {stackset.file_name(replica)} no longer lists {region}, this step is gone from "
                    "this runbook." + refused,
                ),
                ends_here=nests_this,
            )
        )
    return steps


def build(
    plan: Plan,
    region: str,
    new_hub: str | None = None,
    stays_down: bool = False,
    raw: Mapping[str, Any] | None = None,
    root: Path = cfg.PROJECT_ROOT,
    outer: str | None = None,
) -> Runbook:
    """The runbook for ``region`` of ``plan``'s stack.

    ``raw`` is the stack file's ``config:`` map (read from the stack file by default): the
    runbook's edits apply to it; ``root`` holds the stack files (the other stacks' are read
    there: the image source of a replica, the stacks frozen with this one). ``outer``: the stack
    whose runbook runs this one inside it (:class:`SourceRunbook`); that runbook froze it and
    lifts its freeze itself, and sets its own ECR primary region, so this one does neither
    (printed on its own, the source's runbook finds a moved outer hub out of the lost region in
    the checkout; for a rebuild it sets the outer's freeze again, which changes nothing). Raises :class:`infra.config.ConfigError` for a region outside
    the stack, ``--new-hub`` for a spoke, ``--stays-down`` for the hub (use ``--new-hub``).
    The lists of URNs include pulumi-eks's children (:func:`with_eks_children`).
    """
    config = plan.config
    if region not in config.region_names:
        raise region_outside(config, region)
    is_hub = region == config.hub_region
    if new_hub is not None and not is_hub:
        raise cfg.ConfigError(
            "--new-hub",
            new_hub,
            f"--new-hub applies only when --region is the hub ({config.hub_region}); --region {region} is a "
            "spoke: rebuild it without --new-hub, or keep it out with --stays-down",
        )
    if new_hub is not None and (new_hub == region or new_hub not in config.region_names):
        allowed = [r for r in config.region_names if r != region]
        raise cfg.ConfigError(
            "--new-hub",
            new_hub,
            f"expected a surviving region of the stack (not the lost hub {region}): {', '.join(allowed)}",
        )
    if stays_down and is_hub:
        raise cfg.ConfigError(
            "--stays-down", region, "the hub cannot leave the stack alone; use --new-hub REGION to move it"
        )
    if stays_down and len(config.region_names) < 2:
        raise cfg.ConfigError("--stays-down", region, "the stack's only region cannot leave it")
    raw = dict(raw) if raw is not None else cfg.read_stack_file(cfg.stack_file(plan.stack, root))
    kind = MOVE_HUB if new_hub is not None else STAYS_DOWN if stays_down else REBUILD
    full = with_eks_children(plan)
    stack = plan.stack
    gh = config.github
    hub_after = new_hub or config.hub_region
    where = _where(config, hub_after)
    sources = source_stacks(config, root)
    # The image source's profile (staging's): the stack whose deploy reads this one's Applications
    # is its replica (infra.stackset.deploy_readers), so a replica's source is the stack it reads.
    image_source = stack if config.builds_images else next(iter(sources), stack)
    source_profile = aws_profile(image_source)
    # The backfill script runs as the image source's profile (it exports AWS_PROFILE=$SOURCE_PROFILE).
    source_admin = (
        config if image_source == stack else stackset.load(root)[stackset.file_name(image_source)]
    ).cluster_admin_role_arn
    # Other stacks whose hub (and so CI runners) is lost too: frozen with this one (MergeAndLift).
    also_frozen = [
        s for s in hub_lost_stacks(config, sorted({*config.unreachable_regions, region}), root) if s != outer
    ]
    stack_configs = stackset.load(root)
    other_configs = {c.stack: c for c in stack_configs.values()}
    waiting_for = sorted(
        {
            w
            for c in (config, *(s for s in stack_configs.values() if s.stack in also_frozen))
            for w in _workflows_waiting_for(c)
        }
    )
    steps: list[Step] = [
        Step(
            "Prerequisites",
            where["workstation"],
            5,
            (
                (
                    Shell(
                        f"git switch main && git pull --ff-only && git switch -c {dr_branch(stack, region)} "
                        "&& make plan   # .venv with the platform CLI; this runbook's commits go on this branch"
                    )
                    if outer is None
                    else Shell(
                        f'case {CURRENT_BRANCH} in {DR_BRANCH_PREFIX}{outer}-*) make plan;; *) echo "expected '
                        f"{outer}'s {DR_BRANCH_PREFIX}{outer}-... branch: {stack}'s edits go into {outer}'s pull "
                        'request"; false;; esac'
                    )
                ),
                Shell(
                    "unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN   # they would win over "
                    "AWS_PROFILE below"
                ),
                Shell(
                    as_profile(stack, "pulumi login")
                    + " && "
                    + as_profile(stack, f"pulumi stack select {stack}")
                    + "   # a state bucket is read as the stack's profile too"
                ),
                Shell(
                    f"aws sts get-caller-identity --profile {aws_profile(stack)}   # account {config.account_id}, "
                    f"as {config.cluster_admin_role_arn}"
                ),
                *(
                    (
                        Shell(
                            f"aws sts get-caller-identity --profile {source_profile}   # the image source "
                            f"account ({image_source}), as {source_admin}: the steps with the "
                            f"{source_profile} profile use it"
                        ),
                    )
                    if source_profile != aws_profile(stack)
                    else ()
                ),
                *(
                    Shell(
                        f"aws sts get-caller-identity --profile {aws_profile(other)}   # {other}'s hub is lost "
                        "too: the freeze step asks EKS whether it is back"
                    )
                    for other in also_frozen
                    if aws_profile(other) not in (aws_profile(stack), source_profile)
                ),
                Shell(
                    f'export {OPERATOR_CIDR_VARIABLE}="$(curl -fsS https://checkip.amazonaws.com)/32"   '
                    "# this workstation's egress address, admitted to the clusters' APIs below"
                ),
            ),
            (
                "Run every pulumi command as the stack's clusterAdminRoleArn (docs/iam.md): it has an EKS "
                "access entry on every cluster, and the `up` role trusts only up.yml on main.",
                "Kube contexts are written where the clusters exist (the hub's after its rebuild), not here.",
                "Every command below uses .venv/bin/platform or pulumi with the project's .venv "
                "(Pulumi.yaml points the Python runtime at it), never a module run by another Python.",
                (
                    f"The runbook works on its own branch {DR_BRANCH_PREFIX}{stack}-{region}-<UTC time> (a new "
                    "name each run); main takes its edits only through a reviewed pull request (the ruleset "
                    "protect-main refuses a direct push). If main moves meanwhile, leave the branch as it is: the "
                    "pull request and merge steps compare it with main and say what to do."
                    if outer is None
                    else f"It runs inside {outer}'s runbook, on {outer}'s branch: it creates no branch, pushes "
                    f"nothing and opens no pull request; its last step commits {stackset.file_name(stack)} there, "
                    f"and {outer}'s pull request takes it to main."
                ),
            ),
        ),
        Step(
            f"Freeze {stack}'s automation: this runbook is the only writer of its state"
            + (f"; freeze {', '.join(also_frozen)} too (its hub is in {region})" if also_frozen else ""),
            where["workstation"],
            1,
            (
                Freeze(stack, gh.slug),
                *(
                    Freeze(
                        other,
                        gh.slug,
                        unless_recovered=HubCheck(
                            naming.cluster_name(
                                other_configs[other].environment, other_configs[other].hub_region
                            ),
                            other_configs[other].hub_region,
                            aws_profile(other),
                        ),
                    )
                    for other in also_frozen
                ),
                # Queued and waiting runs (an environment's approval) would start after the freeze
                # check ran: cancelled (gh run list --status, gh run cancel). Only the workflows
                # whose jobs write or deploy this stack and can wait past that check: up.yml when
                # this stack's environment has required reviewers (a run holds every stack's
                # job: another stack's incident leaves it alone), deploy-prod.yml for the stack it
                # deploys (the one that never syncs by itself).
                *(
                    Shell(
                        f"gh run list --repo {gh.slug} --workflow {w} --status {status} --json databaseId "
                        f"--jq '.[].databaseId' | xargs -r -n1 gh run cancel --repo {gh.slug}"
                    )
                    for w in waiting_for
                    for status in ("queued", "waiting")
                ),
                Shell(
                    f"gh run list --repo {gh.slug} --workflow up.yml --status in_progress   # wait for none"
                ),
                Shell(
                    as_profile(stack, f"pulumi cancel --stack {stack} --yes")
                    + "   # only if a run cut off by the outage still holds the lock"
                ),
            ),
            (
                f"The jobs of up.yml and deploy-prod.yml that write or deploy {stack} skip while "
                f'{freeze_variable(stack)} is true; other stacks\' jobs run as usual (docs/dr.md, "Freeze"); '
                "the Pulumi backend refuses a second concurrent update of the stack anyway.",
                *((_page_the_approver(config),) if outer is None and kind != REBUILD else ()),
                *(
                    (
                        f"{', '.join(also_frozen)}: the hub is in {region} too, and with it the CI runners "
                        "(CodeBuild, webhook in the hub's region). A push to main while unfrozen would queue "
                        "its up.yml job for a runner that never comes (GitHub cancels a queued self-hosted "
                        "job only after 24 h) and hold up.yml's pulumi-up group, so later runs wait too. "
                        "Its freeze is set unless its own runbook has finished already (its hub cluster ACTIVE "
                        "and its freeze lifted: a rebuild leaves its stack file unchanged, so only AWS and "
                        "GitHub can tell); when set, it stays until its own runbook lifts it (that runbook sets "
                        "it again: `gh variable set` overwrites), or until this runbook's merge step when this runbook "
                        "runs it (its step naming it).",
                    )
                    if also_frozen
                    else ()
                ),
            ),
        ),
    ]
    region_urns = [r.urn for r in region_resources(full, region)]
    k8s_objects = kubernetes_objects(full, region)
    k8s_urns = [r.urn for r in k8s_objects]
    # The lost cluster's Kubernetes provider is targeted with its objects: only a targeted
    # provider is registered with the program's new inputs (deleteUnreachable).
    k8s_providers = sorted({full.by_urn()[r.provider].urn for r in k8s_objects if r.provider})
    # Lost hub pinned as accountRegion (the default follows the hub): never change that region.
    pin: tuple[tuple[str, Any], ...] = ()
    if kind == MOVE_HUB and "platform:accountRegion" not in raw:
        pin = (("platform:accountRegion", config.account_region),)
    lost = sorted({*config.unreachable_regions, region})
    sts = next((r for r in (hub_after, *config.region_names) if r not in lost), hub_after)
    steps.append(
        Step(
            f"Mark {region} unreachable",
            where["workstation"],
            1,
            (EditStack(stack, (("platform:unreachableRegions", lost), *pin)),),
            (
                "Its Kubernetes provider drops the objects of the lost cluster from the state on refresh "
                "(deleteUnreachable); "
                + (
                    f"its AWS provider and the account's provider (accountRegion is {region}; it declares "
                    "the account-wide IAM objects and the Route 53 records and health checks) authenticate "
                    f"through {sts}'s STS and give up after one retry "
                    if config.account_region == region
                    else f"its AWS provider authenticates through {sts}'s STS and gives up after one retry "
                )
                + "(infra/providers.py). The edit stays on this runbook's branch until its last step commits it.",
            ),
        )
    )
    # The clusters whose Kubernetes API the runbook's updates call: the hub after the runbook (its
    # Argo CD objects, the cluster Secrets), and a rebuilt spoke (its own objects).
    admitted = [hub_after] + ([region] if kind == REBUILD and not is_hub and k8s_urns else [])
    # A cluster that exists now takes the address through a targeted update of its endpoint
    # settings only; the lost region's is created with it.
    existing = [r for r in admitted if r != region]
    admit_urns = control_plane_urns(plan, existing)
    steps.append(
        Step(
            f"Admit the operator's address to the API of {', '.join(naming.cluster_name(config.environment, r) for r in admitted)}",
            where["workstation"] + " (AWS APIs only: EKS UpdateClusterConfig)",
            _state_minutes(len(admit_urns))
            + ((5 + _wait_minutes(plan, [r for r in existing if r not in lost])) if admit_urns else 0),
            (
                EditStack(stack, admit=tuple(admitted)),
                *([Up(stack, admit_urns)] if admit_urns else []),
            ),
            (
                f"${OPERATOR_CIDR_VARIABLE} joins platform:regions.<region>.publicAccessCidrs (the endpoints are "
                f"{_endpoint_otherwise(config, admitted)}); "
                + "; ".join(
                    (
                        *(
                            (
                                "the targeted update names only the cluster component and control plane of "
                                f"{', '.join(naming.cluster_name(config.environment, r) for r in existing)}, "
                                "so no Kubernetes API is called",
                            )
                            if admit_urns
                            else ()
                        ),
                        *(
                            (
                                f"{naming.cluster_name(config.environment, region)} is created with the address "
                                "by the rebuild below"
                                + ("" if admit_urns else ": this step only edits the stack file, no update"),
                            )
                            if region in admitted
                            else ()
                        ),
                    )
                )
                + ". Withdrawn at the end.",
            ),
        )
    )
    hub_move_info: dict[str, Any] | None = None
    # The moved hub's runners get a new CodeConnections connection, PENDING until a person
    # authorizes it; CreateProject and CreateWebhook fail against it (infra/components/runner.py),
    # so the update that moves the hub declares the connection only (runnerConnectionAuthorized
    # false) and the runners follow the authorization (_runner_connection_steps).
    github_raw = dict(raw.get("platform:github") or {})
    # A rebuilt hub's connection is new too (the region came back empty).
    reconnect = (
        kind == MOVE_HUB or (kind == REBUILD and is_hub)
    ) and config.github.runner_connection_authorized
    unauthorized = (
        (("platform:github", {**github_raw, "runnerConnectionAuthorized": False}),) if reconnect else ()
    )
    targets: list[Resource]
    dependents: list[Resource]
    # The hub's NAT addresses change (a rebuilt hub's new Elastic IPs, a moved hub's): the
    # stacks whose hub admits them must read them again before the deploy (item below).
    hub_addresses_change = kind == MOVE_HUB or (kind == REBUILD and is_hub)
    # Other stack files this runbook edits, committed with its own (Commit, OpenPullRequest).
    also_pushed: tuple[str, ...] = ()
    if kind == REBUILD:
        targets, dependents = rebuild_sets(full, region)
        urns = tuple(r.urn for r in targets)
        plain = {r.urn for r in plan.resources}
        build_urns = urns
        runner_steps: list[Step] = []
        if reconnect:
            cleared = EditStack(
                stack,
                (("platform:unreachableRegions", [r for r in lost if r != region] or None), *unauthorized),
            )
            rebuild_raw = cleared.apply(
                EditStack(stack, admit=tuple(admitted)).apply(EditStack(stack, pin).apply(raw))
            )
            declared = with_eks_children(offline.run(stack, flat_config=rebuild_raw))
            # The runners are not declared while the connection is pending: not targeted.
            build_urns = tuple(u for u in urns if u in declared.by_urn())
            runner_steps, _ = _runner_connection_steps(stack, region, declared, full, github_raw, where)
        steps += [
            Step(
                f"Refresh {region}'s resources: what no longer exists drops out of the state",
                where["workstation"] + f"; {region}'s AWS APIs answer again",
                _state_minutes(len(urns)) + _wait_minutes(plan, [r for r in existing if r not in lost]),
                (Refresh(stack, urns),),
                (
                    "Run the program (--run-program) so the providers carry deleteUnreachable and stsRegion. "
                    f"The objects of the lost cluster go without a call to it; {region}'s AWS resources are read "
                    "and dropped if gone. Protected resources that still exist (KMS keys, repositories) stay. "
                    "The targets include pulumi-eks's children (the control plane, its role component, its "
                    "Kubernetes provider: infra/dr.py eks_children).",
                    ENDPOINT_WAIT_NOTE,
                ),
            ),
            Step(
                f"{region} answers again: clear the mark",
                where["workstation"],
                1,
                (
                    EditStack(
                        stack,
                        (
                            ("platform:unreachableRegions", [r for r in lost if r != region] or None),
                            *unauthorized,
                        ),
                    ),
                ),
                (
                    (
                        "runnerConnectionAuthorized false: the rebuild declares the hub runners' new "
                        "connection alone (it is PENDING); the runners follow its authorization below.",
                    )
                    if reconnect
                    else ()
                ),
            ),
            *(_argocd_secrets_steps(config, region, (), where) if is_hub else []),
            Step(
                f"Rebuild {region} and everything that depends on it",
                where["hub"],
                _build_minutes(plan, (set(urns) | {r.urn for r in dependents}) & plain, admitted),
                (Up(stack, build_urns, target_dependents=True),),
                (
                    f"{len(targets)} resources in {region}; --target-dependents also updates these "
                    f"{len(dependents)}, which depend on them:",
                    *(f"  {_describe(full, r)}" for r in dependents),
                ),
            ),
            *runner_steps,
        ]
        after = plan
    else:
        edit_keys: list[tuple[str, Any]] = []
        if kind == MOVE_HUB:
            assert new_hub is not None
            edit_keys.append(("platform:hubRegion", new_hub))
        # Once the region leaves the stack, only the account's provider may still name it, and a
        # replica keeps its image source's lost primary region listed: the stack-set check takes
        # the pair's disagreement on the primary region for an incident only while it is
        # (infra/stackset.py), until the source's own runbook has moved it or the region answers
        # again (docs/dr.md). In the example stacks both are the hub; a fork may split them.
        source_primaries = (
            set()
            if config.builds_images
            else {cfg.load_stack_file(s, root).ecr.primary_region for s in sources}
        )
        still = [r for r in lost if r != region or r == config.account_region or r in source_primaries]
        edit_keys.append(("platform:unreachableRegions", still or None))
        if reconnect:
            edit_keys.append(("platform:github", {**github_raw, "runnerConnectionAuthorized": False}))
        ecr_note = ""
        replica_edits: list[EditStack] = []
        if kind == MOVE_HUB and not config.builds_images:
            assert new_hub is not None
            ecr_key, ecr_note = _replica_primary_region(stack, raw, new_hub, sources, lost, root)
            edit_keys += ecr_key
        take_out = EditStack(stack, tuple(edit_keys), remove_region=region)
        admit_edit = EditStack(stack, admit=tuple(admitted))
        moved_raw = take_out.apply(admit_edit.apply(EditStack(stack, pin).apply(raw)))
        after = offline.run(stack, flat_config=moved_raw)
        if kind == MOVE_HUB and config.builds_images:
            replica_edits, ecr_note = _replica_edits(
                config, after.config, lost, stack_configs.values(), root, outer
            )
            also_pushed = tuple(e.stack for e in replica_edits)
        after_full = with_eks_children(after)
        before_index = full.by_urn()
        after_index = after_full.by_urn()
        created = sorted(
            (
                r
                for r in after_full.resources
                if r.urn not in before_index or before_index[r.urn].provider != r.provider
            ),
            key=lambda r: r.urn,
        )
        dependents = sorted(
            (
                before_index[u]
                for u in graph.closure(set(region_urns), graph.dependents(full)) - set(region_urns)
            ),
            key=lambda r: r.urn,
        )
        targets = region_resources(full, region)
        aws_urns = [r.urn for r in lost_with(full, region) if r.urn not in k8s_urns]
        # Declared again elsewhere under the same URN (the hub's runners, Argo CD's Pod Identity
        # associations): forgotten first, so the update creates them anew instead of replacing
        # them, which would delete the old ones in the lost region.
        survivors = tuple(u for u in aws_urns if u in after_index)
        # `pulumi state delete --target-dependents` also forgets what depends on them in the state
        # (pulumi/pulumi v3.259.0 pkg/resource/edit/operations.go DeleteResource, dependents from
        # pkg/resource/graph/dependency_graph.go OnlyDependsOn): the runners' project and webhook
        # (on the connection) and the runner role's inline policy (account-wide; the update puts it
        # again: PutRolePolicy overwrites). They are gone from the state after that step, and a
        # later `pulumi state delete` naming one fails as a whole (pkg/cmd/pulumi/state/io.go
        # locateStackResource: resourceNotFoundError, before anything is deleted).
        # The state at that step: the lost cluster's objects already refreshed out of it.
        in_state = Plan(
            full.stack, full.config, [r for r in full.resources if r.urn not in k8s_urns], full.outputs
        )
        cascade = sorted(graph.closure(set(survivors), graph.dependents(in_state)) - set(survivors))
        excludes = tuple(u for u in aws_urns if u not in after_index and u not in cascade)
        # No objects on the lost cluster: no refresh at all (a refresh without --target is the
        # whole stack, through the lost region's endpoints).
        drop_objects = (
            [
                Step(
                    f"Drop the objects of {region}'s cluster from the state",
                    where["workstation"],
                    _state_minutes(len(k8s_urns))
                    + _wait_minutes(plan, [r for r in admitted if r not in lost]),
                    (Refresh(stack, (*k8s_providers, *k8s_urns)),),
                    (
                        "No call reaches the lost cluster: with deleteUnreachable each refreshed object "
                        "leaves the state (Helm releases included; their delete would fail on an "
                        "unreachable cluster, their refresh does not).",
                        ENDPOINT_WAIT_NOTE,
                    ),
                )
            ]
            if k8s_urns
            else []
        )
        plain_created = {r.urn for r in created} & {r.urn for r in after.resources}
        steps += [
            *drop_objects,
            Step(
                (f"Move the hub to {new_hub} and take {region} out of the stack")
                if new_hub
                else f"Take {region} out of the stack",
                where["workstation"],
                1,
                (take_out, *replica_edits),
                _move_notes(config, new_hub, after, ecr_note)
                if new_hub
                else _stays_down_notes(config, region),
            ),
            *(
                [
                    Step(
                        f"Forget what moves out of {region}",
                        where["workstation"],
                        _state_minutes(len(survivors)),
                        (StateDelete(stack, survivors),),
                        (
                            f"{len(survivors)} resources of {region} that the program now declares elsewhere "
                            "under the same name: forgotten (state only, --force for protected ones), so the "
                            "next step creates them where they now belong."
                            + (
                                f" --target-dependents forgets these {len(cascade)} with them (they depend on "
                                "them; what the program still declares is created again by the next step):"
                                if cascade
                                else ""
                            ),
                            *(f"  {_describe(full, full.by_urn()[u])}" for u in cascade),
                        ),
                    )
                ]
                if survivors
                else []
            ),
            *_traffic_records_removal_steps(config, region, where),
            *(_argocd_secrets_steps(after.config, hub_after, lost, where) if new_hub else []),
            Step(
                f"Apply it everywhere but {region}",
                where["hub"],
                _build_minutes(after, plain_created, admitted)
                if plain_created
                else _state_minutes(len(dependents)) + _wait_minutes(after, admitted),
                (Up(stack, excludes=excludes),),
                (
                    f"--exclude leaves {region}'s {len(excludes)} AWS resources and providers alone, pulumi-eks's "
                    "children included (no call reaches the region); everything else is brought to the new "
                    "configuration"
                    + (f": {len(created)} resources created, on the new hub and for it." if created else "."),
                ),
            ),
            Step(
                f"Forget {region}'s resources",
                where["workstation"],
                _state_minutes(len(excludes)),
                (StateDelete(stack, excludes),),
                (
                    "State only: nothing in AWS is deleted. What still exists (the region's protected ECR "
                    "repositories and KMS keys, and its IAM roles, which are global) is left; when the "
                    "region returns, add it back (docs/walkthroughs.md, add a region) after deleting or "
                    'importing those (docs/dr.md, "When the region returns").',
                ),
            ),
        ]
        runner_urns: list[str] = []
        if reconnect:
            assert new_hub is not None
            authorized = offline.run(
                stack, flat_config=EditStack(stack, (("platform:github", github_raw),)).apply(moved_raw)
            )
            runner_steps, runner_urns = _runner_connection_steps(
                stack, new_hub, after, authorized, github_raw, where
            )
            steps += runner_steps
            after = authorized
        if new_hub:
            hub_move_info = {
                "newHub": new_hub,
                "created": [r.urn for r in created] + runner_urns,
                "deleted": [*survivors, *cascade, *excludes],
                "clusterSecrets": sorted(
                    r.name for r in after.of_type("kubernetes:core/v1:Secret") if "cluster" in r.name
                ),
            }
    from infra.documents import ecr as ecr_documents

    script = backfill_script(after.config, region) if kind == REBUILD else None
    backfill_step: Step | None = None
    if script is not None:
        path = f"backfill-{stack}-{region}.sh"
        backfill_step = Step(
            f"Restore the images in {region}'s registry (replication copies only new pushes)",
            f"an operator workstation (AWS APIs only), with the {source_profile} profile, as {source_admin}",
            15,
            (
                Shell(f".venv/bin/platform dr --stack {stack} --region {region} --backfill-script {path}"),
                Backfill(stack, region, path, source_profile),
            ),
            (
                "The script is saved, not pasted: it never deletes or re-tags anything in the source "
                '(docs/registry.md, "Backfill"). '
                + (
                    f"It copies back, from another region, the newest {ecr_documents.BACKFILL_NEWEST} tagged "
                    "images of each repository that the region lacks (an image whose tag the region already "
                    "holds on the same digest is skipped, so it can be run again after an interruption); "
                    "an older tag the region's Applications still reference is given as an argument "
                    f"(SOURCE_PROFILE={source_profile} bash {path} TAG...)."
                    if ecr_documents.restored_by_copy(after.config, region)
                    else "It starts ECR's replication backfill, which replicates every image the replication "
                    "configuration matches, not only those the region lacks; run again after an interruption, "
                    "it follows the backfill already running instead of starting another."
                )
                + " It needs the region's repositories: after the rebuild.",
            ),
        )
        steps.append(backfill_step)
    if config.argocd.sync == "automated":
        steps.append(_applications_step(config, hub_after, where))
    # The stacks whose hub admits this stack's hub addresses (they change with the hub), where
    # each one's hub is after its own runbook; one in the lost region too (both hubs in one
    # region) runs its own runbook on this runbook's branch before its pull request, while this
    # stack is still frozen: the outermost runbook's merge lifts both freezes, its own last
    # (MergeAndLift).
    source_hubs: list[tuple[str, Plan, str]] = []
    source_runbooks: list[Step] = []
    nested: set[str] = set()
    for source in sources if hub_addresses_change and outer is None else []:
        source_raw = cfg.read_stack_file(cfg.stack_file(source, root))
        source_plan = offline.run(source, flat_config=source_raw)
        source_hub = source_plan.config.hub_region
        if source_hub in lost:
            source_lost = source_hub
            source_survivors = [r for r in source_plan.config.region_names if r not in lost]
            moved_to: str | None = None
            own = f".venv/bin/platform dr --stack {source} --region {source_lost}"
            if kind != REBUILD and source_survivors:
                moved_to = paired_hub(source_plan.config.region_names, lost, (hub_after,))
                own += f" --new-hub {moved_to}"
            # --inside: the runbook printed is the one built here (outer=stack): it stays on this
            # runbook's branch and ends with a commit there, not with a pull request of its own.
            own += f" --inside {stack}"
            # The source's own runbook, from the same table: its minutes are on this runbook's
            # critical path (the update of its hub and this stack's pull request wait for it).
            inner = build(source_plan, source_lost, new_hub=moved_to, raw=source_raw, root=root, outer=stack)
            if moved_to is not None:
                source_plan = hub_move(
                    source_plan, moved_to, _moved_config(source_plan, moved_to, source_raw)
                )[0]
                source_hub = moved_to
            nested.add(source)
            source_runbooks.append(
                Step(
                    f"{source}'s hub is in {region} too: run {source}'s own runbook before this pull request, "
                    f"unless it has finished",
                    f"an operator workstation with the {aws_profile(source)} profile, as "
                    f"{source_plan.config.cluster_admin_role_arn}",
                    inner.minutes,
                    (SourceRunbook(source, gh.slug, own, inner, source_lost),),
                    (
                        f"{source}'s hub control plane and CI runners are in {region}: the update of "
                        f"{source}'s hub below and the deploy read {source}'s hub, so they wait until "
                        f"{source}'s own runbook has brought its hub back in {source_hub} "
                        f"(~{inner.minutes:g} min, its own steps' total). Run it only "
                        f"while {freeze_variable(source)} is set (the freeze step set it, or left it set by a "
                        f"runbook under way) and its commit is not on this branch yet: the command checks both; if "
                        f"another operator is running {source}'s runbook, wait for its end (its freeze lifted) "
                        f"instead. {source}'s runbook sets its freeze again and leaves it set.",
                        f"It runs on this branch, while {stack} is still frozen: it pushes nothing and opens no pull "
                        f"request; its last step commits {stackset.file_name(source)} here. This runbook's pull "
                        f"request takes both stack files to main in one merge, and its merge step lifts "
                        f"{freeze_variable(source)}, then {freeze_variable(stack)} last.",
                    ),
                )
            )
        source_hubs.append((source, source_plan, source_hub))
    # The backfill reads the image source's registry in its primary region: when that region is
    # lost too, the source's own runbook (above) rebuilds it first, so the backfill follows it.
    late_backfill: list[Step] = []
    if backfill_step is not None and image_source in nested:
        source_primary = cfg.load_stack_file(image_source, root).ecr.primary_region
        if source_primary in lost:
            steps.remove(backfill_step)
            late_backfill = [
                _replace(
                    backfill_step,
                    notes=(
                        *backfill_step.notes,
                        f"After {image_source}'s own runbook: the backfill copies from {image_source}'s "
                        f"registry in {source_primary}, which that runbook rebuilds (with its own backfill).",
                    ),
                )
            ]
    remaining = [r for r in admitted if r in after.config.region_names]
    withdraw_urns = control_plane_urns(after, remaining)
    steps += [
        Step(
            "Check that nothing is left to do",
            where["hub"],
            _state_minutes(len(after.resources)),
            (Preview(stack),),
        ),
        Step(
            "Withdraw the operator's address",
            where["workstation"] + " (AWS APIs only: EKS UpdateClusterConfig)",
            # The address is gone from the endpoints: no cluster answers the workstation.
            _state_minutes(len(withdraw_urns)) + 5 + _wait_minutes(after, []),
            (EditStack(stack, withdraw=tuple(remaining)), Up(stack, withdraw_urns)),
            (
                "The stack file is back to its configured CIDRs before it is committed; the targeted update "
                "names the cluster components and their control planes only.",
            ),
        ),
        *source_runbooks,
        *late_backfill,
        *_publish_steps(config, stack, region, kind, new_hub, outer, also_pushed, also_frozen, nested),
    ]
    for source, source_plan, source_hub in source_hubs:
        hub_urns = control_plane_urns(source_plan, [source_hub])
        steps.append(
            Step(
                f"{source}'s hub admits {stack}'s new hub addresses",
                f"an operator workstation with the {aws_profile(source)} profile (AWS APIs only), as "
                f"{source_plan.config.cluster_admin_role_arn}",
                # None of that stack's endpoints admits the workstation.
                _state_minutes(len(hub_urns)) + 5 + _wait_minutes(source_plan, []),
                (Up(source, hub_urns),),
                (
                    f"{source}'s hub endpoint admits {stack}'s hub NAT addresses, read from {stack}'s stack "
                    f"output {naming.OUTPUT_HUB_EGRESS_CIDRS} (a StackReference, read on every update: "
                    "infra/components/hub_readers.py); they changed with the hub. Until this update the deploy "
                    f"cannot read {source}'s Applications. Targeted: only {source}'s hub cluster and its "
                    "control plane (up.yml may be updating the same stack: on a 409 conflict, wait and re-run).",
                ),
            )
        )
    if config.argocd.sync != "automated":
        steps.append(_deploy_step(config, region, kind, where))
    # The way in (issue 18): the lost region was drained by its failing health check; it is
    # readmitted by the same check once the rebuilt region answers (docs/traffic.md).
    steps[1:1] = [
        *(_replicas_first_steps(config, region, where, root, outer, new_hub) if kind != REBUILD else []),
        *_traffic_drain_steps(config, region, where, kind),
    ]
    steps += _traffic_readmit_steps(config, region, kind, where)
    steps = _with_github_identity(_with_tool_check(steps, script), gh.slug)
    return Runbook(
        stack,
        region,
        is_hub,
        kind,
        tuple(targets),
        tuple(dependents),
        tuple(steps),
        hub_move_info,
        script,
    )


def _publish_steps(
    config: cfg.StackConfig,
    stack: str,
    region: str,
    kind: str,
    new_hub: str | None,
    outer: str | None,
    also_pushed: tuple[str, ...],
    also_frozen: Sequence[str],
    nested: set[str],
) -> list[Step]:
    """How the runbook's stack-file edits reach ``main`` (docs/dr.md, "Freeze"): on their own
    branch, through a pull request that a second person approves (the ruleset ``protect-main``
    refuses a direct push), merged by the operator, and only then the freezes lifted. Run inside
    ``outer``'s runbook: one commit on ``outer``'s branch, nothing pushed or lifted (``outer``'s
    merge step lifts this stack's freeze, so ``main`` goes in one merge from the pair of stack
    files before the incident to the pair after it)."""
    gh = config.github
    files = ", ".join(stackset.file_name(s) for s in (stack, *also_pushed))
    workstation = "an operator workstation (git and GitHub only)"
    if outer is not None:
        return [
            Step(
                f"Commit {files} on {outer}'s branch",
                workstation,
                1,
                (Commit(stack, region, also_pushed),),
                (
                    f"No push, no pull request, no lift: {outer}'s runbook publishes this commit with its own "
                    f"(one pull request takes {files} to main together with {outer}'s own stack file when either "
                    f"changed, so main never holds a pair of stack files make plan refuses), and its merge step "
                    f"lifts {freeze_variable(stack)} once main holds {files} as applied. Follow the steps below, "
                    f"if any, then go back to {outer}'s runbook.",
                ),
            )
        ]
    lifts = (
        *(Freeze(s, gh.slug, lift=True, or_lifted=True) for s in sorted(nested)),
        Freeze(stack, gh.slug, lift=True),
    )
    lifted = ", ".join(f.stack for f in lifts)
    others = (
        " "
        + "".join(
            f"{other}'s freeze, if the freeze step set it, "
            + (
                f"is lifted here too, after the merge ({other}'s own runbook ran above, on this branch). "
                if other in nested
                else f"stays until {other}'s own runbook lifts it; up.yml skips {other}'s job. "
            )
            for other in also_frozen
        ).rstrip()
        + " Check before going on: "
        + "; ".join(
            f"`gh variable get {freeze_variable(o)} --repo {gh.slug}` "
            + (
                'fails with "was not found"'
                if o in nested
                else "prints true until its runbook has run (fails if the freeze step found it finished)"
            )
            for o in also_frozen
        )
        + "."
        if also_frozen
        else ""
    )
    body = (
        f"platform dr --stack {stack} --region {region}"
        + (f" --new-hub {new_hub}" if new_hub else " --stays-down" if kind == STAYS_DOWN else "")
        + ". Only stack files; applied from this head, `pulumi preview --expect-no-changes` clean. "
        + f"{', '.join(freeze_variable(s) for s in (*sorted(nested), stack))} "
        + ("stay" if nested else "stays")
        + " set until this merges."
    )
    published = (stack, *also_pushed, *sorted(nested))
    files = published_files(published)
    # A rebuild clears its marks and withdraws the operator's address: its files end as they were,
    # so it opens no pull request (the drill checks it) and nobody waits for a review.
    review_minutes = 0 if kind == REBUILD else REVIEW_MINUTES
    frozen_verb = "stay" if len(lifts) > 1 else "stays"
    return [
        Step(
            "Open the pull request of this runbook's branch into main",
            workstation,
            2,
            (OpenPullRequest(stack, region, gh.slug, body, also_pushed, published),),
            (
                "The ruleset protect-main refuses a direct push to main for everyone (GH013: a pull request "
                "with one approving review; no bypass actor). Pushing this dr/ branch starts no up.yml (it runs "
                "on pushes to main only) and lifts nothing; the pull request starts preview.yml (the plan "
                "diff), which gates nothing. Send the printed URL to the approver.",
                f"If it prints that main already holds {files} (a rebuild: its marks are cleared, its files end "
                "as they were), no pull request is opened: skip the approval; the merge step then only lifts "
                "the freeze. If it stops because main changed them since this branch left it (a pull request "
                "merged during the incident), this runbook did not apply that change: rebase, run the preview "
                "step again (apply main's change, or have it reverted), then run this step again.",
            ),
        ),
        Step(
            "A second person approves the pull request",
            f"the approver's own workstation or the GitHub web UI, as their own GitHub identity: {_approvers(config)}; "
            f"write access to {gh.slug} (a fine-grained token: Pull requests write), neither the author nor the "
            "last pusher of the branch",
            review_minutes,
            (Approve(stack, gh.slug),),
            (
                "Only if the previous step opened a pull request"
                + (" (a rebuild normally opens none: counted as 0 min). " if kind == REBUILD else ". ")
                + "Nobody but the operator pushes to the branch, and nobody presses Update branch: a push by the "
                "approver makes them the last pusher, whose approval does not count (require_last_push_approval), "
                "and any push dismisses the approval (dismiss_stale_reviews_on_push).",
                (
                    "If a pull request was opened after all (a stack file differs from main), page an approver "
                    "now: the review is a human wait of about "
                    f"{REVIEW_MINUTES} min, not counted here."
                    if kind == REBUILD
                    else f"~{REVIEW_MINUTES} min is an assumption, not a bench time: a human wait, like the console "
                    "authorization of a runner connection (the approver, paged at the freeze step, reads a diff of "
                    "one or two stack files and may wait for preview.yml's plan comment)."
                )
                + " Users are not waiting on it: traffic already left the lost region. There is no bypass in this "
                'runbook (docs/dr.md, "Break-glass").',
            ),
        ),
        Step(
            f"Merge the pull request, then lift the freeze of {lifted}",
            workstation,
            1,
            (MergeAndLift(stack, gh.slug, lifts, published),),
            (
                "The merge is a push to main: up.yml runs, and skips every stack still frozen; each freeze is "
                f"lifted only after gh reports the pull request MERGED and main holds {files} exactly as this "
                f"runbook applied them, so no job of {lifted} runs again from another file, and that job finds "
                "nothing to do." + others,
                "Not approved yet: gh pr merge refuses (the base branch policy prohibits the merge) and nothing is "
                "lifted; run the step again after the approval (also after a failed lift: a merged pull request "
                "is not merged twice). No pull request (main already holds the published files as applied): "
                "what this runbook applied, and the step only lifts. --match-head-commit: only the head that was "
                "reviewed and applied merges. --squash: main gets one commit with every stack file of the runbook "
                "(GitHub allows squash merging unless the repository's settings turn it off; then use --merge).",
                f"If it stops because main changed {files} since this branch left it, or gh says the merge "
                f"commit cannot be cleanly created: `git fetch && git rebase origin/main && git push "
                f"--force-with-lease`, run `{Preview(stack).command()}` again (main's change is not applied yet: "
                "apply it, or have it reverted), get a new approval (the push dismissed the old one), then run "
                f"this step again; {lifted} {frozen_verb} frozen meanwhile.",
            ),
        ),
    ]


# The programs the printed steps (and the saved backfill script) may call, in check order.
TOOLS = ("git", "make", "aws", "pulumi", "gh", "jq", "dig", "curl", "crane", "kubectl")
PREREQUISITES = "Prerequisites"  # the first step's title (build)


def tools_called(commands: Sequence[str]) -> list[str]:
    """The :data:`TOOLS` that ``commands`` (shell text) call: a name at the start of a command,
    after ``|``, ``;``, ``&&``, ``||``, ``(`` or ``$(``, or after ``VAR=value`` prefixes."""
    called = set()
    for text in commands:
        for line in text.splitlines():
            for part in re.split(r"\$\(|[|;&()]|\bthen\b|\bdo\b|\bif\b", line):
                words = [w for w in part.split() if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", w)]
                if words and words[0].startswith("#"):
                    continue
                if words and words[0] in TOOLS:
                    called.add(words[0])
    return [t for t in TOOLS if t in called]


def _with_tool_check(steps: Sequence[Step], script: str | None) -> list[Step]:
    """The prerequisites with one check that every tool the runbook's steps call (and the saved
    backfill script, when a step runs it) is installed."""
    commands = [c for s in steps for c in s.commands]
    if script is not None and any(isinstance(a, Backfill) for s in steps for a in s.actions):
        commands.append(script)
    tools = tools_called(commands)
    check = Shell(
        f'for t in {" ".join(tools)}; do command -v "$t" >/dev/null || echo "missing: $t"; done'
        "   # the tools the steps below call; install any that is missing"
    )
    return [
        dataclasses.replace(s, actions=(*s.actions, check)) if s.title == PREREQUISITES else s for s in steps
    ]


def _with_github_identity(steps: Sequence[Step], slug: str) -> list[Step]:
    """Every step that runs ``gh`` says which GitHub identity it needs (:func:`github_identity`)."""
    return [
        dataclasses.replace(s, runs_from=f"{s.runs_from}; {github_identity(slug)}")
        # The approval is the second person's, under their own identity (the step says so).
        if "gh" in tools_called(s.commands) and not any(isinstance(a, Approve) for a in s.actions)
        else s
        for s in steps
    ]


def source_primary_after(source: cfg.StackConfig, lost: Sequence[str], hub_after: str) -> str:
    """Where the image source's ECR primary region is once its own runbook has run: unchanged
    while that region answers; otherwise where the source's hub move takes its hub (the region
    this stack's hub moves to when the source has it, else its first surviving region:
    :func:`paired_hub`, as the step that runs the source's runbook), which the primary region
    follows while ``platform:ecr.primaryRegion`` is unset."""
    if source.ecr.primary_region not in lost:
        return source.ecr.primary_region
    return paired_hub(source.region_names, lost, (hub_after,)) or source.ecr.primary_region


def _replica_primary_region(
    stack: str,
    raw: Mapping[str, Any],
    new_hub: str,
    sources: Sequence[str],
    lost: Sequence[str],
    root: Path = cfg.PROJECT_ROOT,
) -> tuple[list[tuple[str, Any]], str]:
    """A replica's ``platform:ecr.primaryRegion`` after its hub moves: the image source's primary
    region once the source's own runbook has run (infra.stackset requires the pair to agree; the
    stack's config refuses a primary region outside its regions, so the lost one cannot be
    named). Returns the stack-file edit (none when the default, the new hub, is already right)
    and the note."""
    if not sources:
        return (
            [],
            "This stack reads no image source in the checkout: platform:ecr.primaryRegion is left as is.",
        )
    source = sources[0]
    source_config = cfg.load_stack_file(source, root)
    target = source_primary_after(source_config, lost, new_hub)
    ecr_raw = dict(raw.get("platform:ecr") or {})
    current = ecr_raw.get("primaryRegion") or new_hub
    moved = target != source_config.ecr.primary_region
    when = (
        f"{source}'s primary region {source_config.ecr.primary_region} is lost too: its own runbook (below) "
        f"moves it to {target}, so {stack}'s is {target}"
        if moved
        else f"{stack}'s primary region is {source}'s, {target}"
    )
    if current == target:
        edit: list[tuple[str, Any]] = []
        what = (
            " (the default follows the hub there: nothing to set)." if "primaryRegion" not in ecr_raw else "."
        )
    else:
        edit = [("platform:ecr", {**ecr_raw, "primaryRegion": target})]
        what = f": this edit sets platform:ecr.primaryRegion: {target}."
    tail = (
        f" Until the pull request that carries {source}'s stack file has merged, the stack-set check warns that the two "
        "disagree (infra/stackset.py; an error outside an incident)."
        if moved
        else ""
    )
    return edit, "ECR: " + when + what + tail


def _replica_edits(
    config: cfg.StackConfig,
    after: cfg.StackConfig,
    lost: Sequence[str],
    stacks: Iterable[cfg.StackConfig],
    root: Path,
    outer: str | None,
) -> tuple[list[EditStack], str]:
    """An image source's hub move: its replicas' ``platform:ecr.primaryRegion`` must name the
    source's primary region after the move (infra/stackset.py refuses a pair that disagrees).
    A replica whose hub is lost too sets its own in its runbook (:func:`_replica_primary_region`);
    ``outer``, whose runbook runs this one, does too. Any other replica whose primary region
    differs is edited here, and the pull request commits its stack file with this one. Returns the edits
    and the note."""
    stacks = list(stacks)
    new_primary = after.ecr.primary_region
    edits: list[EditStack] = []
    notes: list[str] = []
    for replica in (s for s in stacks if s.stack in stackset.deploy_readers(config, stacks)):
        r = replica.stack
        if replica.ecr.primary_region == new_primary:
            notes.append(f"{r}'s platform:ecr.primaryRegion is {new_primary} already.")
        elif r == outer or replica.hub_region in lost:
            notes.append(f"{r}'s hub is lost too: its own runbook sets its platform:ecr.primaryRegion.")
        elif new_primary not in replica.region_names:
            notes.append(
                f"{r} cannot name {new_primary} as its platform:ecr.primaryRegion (not one of its regions): "
                f"add that region to {r} (docs/walkthroughs.md); until then `make plan` reports the pair."
            )
        else:
            replica_raw = cfg.read_stack_file(cfg.stack_file(r, root))
            ecr = dict(replica_raw.get("platform:ecr") or {})
            edits.append(EditStack(r, (("platform:ecr", {**ecr, "primaryRegion": new_primary}),)))
            notes.append(
                f"{r}'s platform:ecr.primaryRegion becomes {new_primary} (this step edits Pulumi.{r}.yaml; the "
                "pull request below commits it with this stack's file)."
            )
    head = (
        f"ECR: this stack's primary region is {new_primary} after the move"
        + (
            " (platform:ecr.primaryRegion is not set: it follows the hub)"
            if new_primary != config.ecr.primary_region
            else ""
        )
        + ". "
    )
    return edits, head + (" ".join(notes) if notes else "No replica in the checkout reads it.")


def _move_notes(config: cfg.StackConfig, new_hub: str, after: Plan, ecr_note: str = "") -> tuple[str, ...]:
    return (
        "Argo CD, Image Updater, the ApplicationSet, the CI runners and every cluster Secret are declared "
        f"on {new_hub}; the account-wide IAM objects stay as they are (platform:accountRegion does not "
        "follow the hub).",
        ecr_note,
        f"The new hub's cluster is {naming.cluster_name(config.environment, new_hub)}; the deploy "
        "workflow and command read the hub from the stack file. The CodeConnections connection of the "
        f"new runners needs its approval in {new_hub} (docs/github-actions.md).",
        f"The lost hub leaves the stack ({len(after.config.region_names)} regions remain) until it returns.",
    )


def _stays_down_notes(config: cfg.StackConfig, region: str) -> tuple[str, ...]:
    return (
        f"Its cluster Secret leaves the hub, so the ApplicationSet generates no Application for {region}: "
        "Argo CD deletes that Application"
        + (
            " and, with preserveResourcesOnDeletion (prod), nothing of what it deployed"
            if config.argocd.sync == "manual"
            else "; the template sets no resources finalizer, so Argo CD deletes nothing on the lost cluster"
        )
        + ".",
        f"The deploy command's order loses {region} (platform:deploy.regionOrder); the other regions "
        "deploy as before.",
        (
            f"Replication: {region} leaves this stack's replication rules; the stacks that receive its images "
            f"took {region} out first (a stop step at the top says so while one still lists it)."
            if config.builds_images
            else f"Replication: the image source still replicates into {region} until its own runbook takes "
            f"{region} out (it runs after this one); ECR tries each push once and never retries, so nothing "
            f"queues. If {region} later rejoins, add it back and run its backfill (docs/dr.md)."
        ),
        (
            f"Traffic: leaving the stack removes {region}'s certificate, health check and web ACL; its "
            "records, which its ExternalDNS wrote and cannot delete while down, are deleted by the runbook "
            "first (docs/traffic.md)."
            if config.traffic is not None
            else "Traffic: the stack has no platform:traffic, so no user reaches any region from outside."
        ),
    )


def _health_check_status(config: cfg.StackConfig, region: str) -> str:
    """The shell command printing the Route 53 health check status of ``region``'s name."""
    assert config.traffic is not None
    host = config.traffic.region_host(region)
    profile = aws_profile(config.stack)
    query = f"HealthChecks[?HealthCheckConfig.FullyQualifiedDomainName=='{host}'].Id"
    return (
        "aws route53 get-health-check-status --profile "
        f'{profile} --health-check-id "$(aws route53 list-health-checks --profile {profile} '
        f'--query "{query}" --output text)" --query "HealthCheckObservations[].StatusReport.Status"'
    )


def _runner_connection_steps(
    stack: str,
    hub: str,
    before: Plan,
    after: Plan,
    github_raw: Mapping[str, Any],
    where: Mapping[str, str],
) -> tuple[list[Step], list[str]]:
    """The new hub's runners, once a person has authorized their connection: the update that
    moved the hub declared the connection only (``runnerConnectionAuthorized: false``), as on
    day 0 (docs/github-actions.md, "Day 0"); CreateProject and CreateWebhook fail against a
    PENDING connection (infra/components/runner.py). Returns the steps and the URNs the
    targeted update creates (the runners: what ``after`` declares that ``before`` does not)."""
    have = {r.urn for r in before.resources}
    runner_urns = sorted(r.urn for r in after.resources if r.urn not in have)
    name = naming.runner_project_name(after.config.environment)
    # up.yml's job of the stack runs there (Push); deploy-prod.yml's for the stack it deploys.
    runner_jobs = [f"{naming.WORKFLOW_UP}'s {stack} job"] + (
        [naming.WORKFLOW_DEPLOY] if naming.WORKFLOW_DEPLOY in _workflows_waiting_for(after.config) else []
    )
    steps = [
        Step(
            f"Authorize the new hub's runner connection {name} in {hub}",
            where["workstation"] + ", in the AWS console",
            5,
            (AuthorizeConnection(stack, hub, name),),
            (
                "The update above created the connection PENDING: only a person, signed in to GitHub as an "
                "owner of the organization, can install or pick the AWS Connector for GitHub "
                '(docs/github-actions.md, "Day 0"). Go on only when the status is AVAILABLE.',
            ),
        ),
        Step(
            f"Create {hub}'s runners",
            where["hub"],
            _build_minutes(after, set(runner_urns) & {r.urn for r in after.resources}, [hub]),
            (
                EditStack(stack, (("platform:github", dict(github_raw)),)),
                Up(stack, tuple(runner_urns)),
            ),
            (
                "platform:github is back as configured (runnerConnectionAuthorized removed); the targeted "
                f"update creates the runners' {len(runner_urns)} resources ({_kinds(after, runner_urns)}) against "
                f"the authorized connection. Every job that runs on the runners ({', '.join(runner_jobs)}) comes after.",
            ),
        ),
    ]
    return steps, runner_urns


def _kinds(plan: Plan, urns: Sequence[str]) -> str:
    """``urns``' resource types, counted (``2 aws:ec2/securityGroupRule:SecurityGroupRule``)."""
    by_urn = plan.by_urn()
    types = [by_urn[u].type for u in urns if u in by_urn]
    return ", ".join(f"{n} {t}" if (n := types.count(t)) > 1 else t for t in sorted(set(types)))


def _traffic_drain_steps(
    config: cfg.StackConfig, region: str, where: Mapping[str, str], kind: str = REBUILD
) -> list[Step]:
    """Drain: nothing to do but confirm. Route 53 already skips the lost region's latency record
    because its health check fails (infra/traffic.py failover_bound). A rebuild keeps the record
    and the check (they readmit the region); a region that leaves the stack (``--stays-down``,
    ``--new-hub``) has its records deleted later in the runbook and its check with the update."""
    if config.traffic is None:
        return []
    bound = traffic.failover_bound(config.traffic)
    stays = (
        "No record is changed by hand now: the record and its health check stay, so the rebuilt region is "
        "readmitted by the same check."
        if kind == REBUILD
        else f"No record is changed by hand now: {region} leaves the stack, so its records are deleted later "
        "in this runbook (before the update that deletes its health check), and it is not readmitted."
    )
    return [
        Step(
            f"Traffic: confirm {region} is drained",
            where["workstation"],
            1,
            (Shell(_health_check_status(config, region) + "   # expect Failure from most checkers"),),
            (
                f"Users already left {region}: its Route 53 health check fails, so Route 53 skips its latency "
                f"record for {config.traffic.host} within {bound.formula()} (docs/traffic.md). " + stays,
                "If every region's check fails, Route 53 answers as if all were healthy (docs/traffic.md): "
                "the surviving regions must answer their health checks.",
            ),
        )
    ]


def _traffic_records_removal_steps(
    config: cfg.StackConfig, region: str, where: Mapping[str, str]
) -> list[Step]:
    """A region that leaves the stack loses its health check in the next update, but its records
    were written by its own ExternalDNS, which is down and cannot delete them. A record whose
    health check is deleted has an unpredictable status in Route 53 ("If you delete a health
    check ... the status of the health check can't be predicted": Route 53 Developer Guide,
    health-checks-creating-deleting.html), so the runbook deletes the region's records (its
    latency record and ExternalDNS's TXT registry records carry the region as set identifier; its
    own name is <region>.<host>) before that update."""
    if config.traffic is None:
        return []
    t = config.traffic
    host = t.region_host(region).rstrip(".") + "."
    batch = f"/tmp/{config.stack}-{region}-records.json"
    listing = f"/tmp/{config.stack}-{region}-zone.json"
    select = (
        f'{{Changes: [.ResourceRecordSets[] | select(.SetIdentifier == "{region}" or (.Name | endswith("{host}")))'
        ' | {Action: "DELETE", ResourceRecordSet: .}]}'
    )
    return [
        Step(
            f"Traffic: delete {region}'s records",
            where["workstation"],
            2,
            (
                # The listing is saved, then filtered (&&, not a pipe): a failed listing stops here
                # instead of leaving an empty batch that the next line would skip silently
                # (without pipefail a pipe's status is jq's).
                Shell(
                    f"aws route53 list-resource-record-sets --profile {aws_profile(config.stack)} --hosted-zone-id "
                    f"{t.hosted_zone_id} --output json > {listing} && jq '{select}' {listing} > {batch}"
                ),
                # An if, not &&: a region with no record left (ExternalDNS never wrote one) passes
                # with status 0 instead of stopping the runbook on jq's exit status 1.
                Shell(
                    f"if jq -e '.Changes | length > 0' {batch} >/dev/null; then aws route53 "
                    f"change-resource-record-sets --profile {aws_profile(config.stack)} --hosted-zone-id {t.hosted_zone_id} "
                    f"--change-batch file://{batch}; fi"
                ),
            ),
            (
                f"{region}'s ExternalDNS is down and cannot remove what it wrote; the next update deletes "
                f"{region}'s health check, and a record left pointing at a deleted health check has an "
                "unpredictable status (Route 53 Developer Guide, health-checks-creating-deleting.html). "
                "Route 53 is global: this works while the region is down.",
            ),
        )
    ]


def _traffic_readmit_steps(
    config: cfg.StackConfig, region: str, kind: str, where: Mapping[str, str]
) -> list[Step]:
    """Readmit only when healthy: the rebuilt region's ExternalDNS writes its records once its
    Application has synced its Ingresses; Route 53 sends users there only once the health check
    passes again. Only a rebuild readmits: ``--stays-down`` and ``--new-hub`` take the region out
    of the stack (its records deleted by the runbook, its health check by the update)."""
    if config.traffic is None or kind != REBUILD:
        return []
    seconds = traffic.readmission_bound(config.traffic)
    return [
        Step(
            f"Traffic: {region} is readmitted when healthy",
            where["workstation"],
            max(1, round(seconds / 60)),
            (
                Shell(
                    f"dig +short {config.traffic.region_host(region)}   # the rebuilt load balancer's addresses"
                ),
                Shell(_health_check_status(config, region) + "   # expect Success"),
            ),
            (
                "The rebuilt region's ExternalDNS writes its latency record (and the region's own name) once the "
                "Application above has synced its Ingresses; Route 53 sends users there only after the health "
                f"check passes {config.traffic.failure_threshold} times in a row: about {seconds} s "
                "(docs/traffic.md). Close the incident only when it reports Success.",
            ),
        )
    ]


def _argocd_secrets_steps(
    config: cfg.StackConfig, hub: str, lost: Sequence[str], where: Mapping[str, str]
) -> list[Step]:
    """The step that makes sure Argo CD's secrets are readable in ``hub`` (``config`` is the
    stack's configuration after the runbook) before the update that installs Argo CD's External
    Secrets store there; none when the hub runs no External Secrets (Argo CD then reads no
    secret from Secrets Manager)."""
    if hub not in config.addon_regions("external-secrets"):
        return []
    names = addons.argocd_secret_names(config)
    promoted = [r for r in lost if r != hub]
    return [
        Step(
            f"Argo CD's secrets in {hub}",
            where["workstation"] + f" (AWS APIs only: Secrets Manager in {hub})",
            1,
            (ArgoCdSecrets(config.stack, hub, names, tuple(promoted)),),
            (
                f"The hub's Argo CD reads {', '.join(names)} from Secrets Manager in {hub} (its store "
                f"{addons.ARGOCD_SECRET_STORE}, role {addons.store_role_name(config, hub, addons.STORE_ARGOCD)}). "
                "Day 0 created them with a replica in every region of the stack (docs/addons.md)"
                + (
                    f"; a replica whose primary is in {', '.join(promoted)} is promoted to a standalone "
                    "secret so it can be rotated while that region is gone (docs/dr.md, \"Argo CD's secrets "
                    'after a hub move", for the copies left behind).'
                    if promoted
                    else "."
                ),
                "A missing one stops here: create it in this region as docs/addons.md says (the value "
                "comes from wherever the team keeps the token, never from Git or the state), without "
                "--add-replica-regions for a region that still holds a copy of that name (a replica of the "
                "lost primary: create-secret would fail to replicate there; docs/dr.md, \"Argo CD's secrets "
                'after a hub move"), then run the step again. Without it the ExternalSecret reports an '
                "error and Argo CD cannot read a private repository.",
            ),
        )
    ]


def _applications_step(config: cfg.StackConfig, hub: str, where: Mapping[str, str]) -> Step:
    cluster = naming.cluster_name(config.environment, hub)
    return Step(
        "Applications come back by themselves",
        where["hub"],
        5,
        (
            Kubeconfig(config.stack, hub, cluster, aws_profile(config.stack)),
            ListApplications(config.stack, hub, cluster),
        ),
        (
            "The hub's context is written now that its cluster exists (a rebuilt hub has a new endpoint). "
            "Each Application's automated sync deploys its tag. An Application the ApplicationSet had to "
            "regenerate (a rebuilt or moved hub) has no tag until Image Updater writes the newest one (a "
            "minute or two); until then the chart renders only its ImageTagMissing guard, every sync fails "
            'on it and nothing is pruned (docs/argocd.md, "The first tag").',
        ),
    )


def _deploy_minutes(config: cfg.StackConfig, region: str, kind: str) -> float:
    """The deploy step's minutes, from the table ``make bench`` uses: two workflow runs (the dry
    run, then the deploy) and each region of ``regionOrder`` the deploy still reaches."""
    from infra import bench

    # A region that leaves the stack (a spoke that stays down, a hub that moves) leaves regionOrder.
    regions = [r for r in config.deploy.region_order if not (kind != REBUILD and r == region)]
    return round((2 * bench.DEPLOY_RUN_SECONDS + len(regions) * bench.DEPLOY_REGION_SECONDS) / 60, 1)


def _deploy_step(config: cfg.StackConfig, region: str, kind: str, where: Mapping[str, str]) -> Step:
    return Step(
        "Deploy the Applications (prod never syncs by itself)",
        where["runners"],
        _deploy_minutes(config, region, kind),
        (
            Deploy(config.stack, config.github.slug, dry_run=True),
            Deploy(config.stack, config.github.slug, dry_run=False),
        ),
        (
            "The deploy command syncs each Application in the configured order, verifying every image "
            "against what staging runs; regions already in sync finish at once. It runs on the runners, "
            "which reach the private hub, after the freeze is lifted (the job skips while frozen)."
            + (
                f" The job waits for a required reviewer of the {config.github.deploy_environment} environment "
                "to approve it: page a required reviewer (the approver of the pull request, if there was one)."
                if config.github.reviewers is not None
                else ""
            )
            + (f" {region} has left the stack: nothing is deployed there." if kind == STAYS_DOWN else ""),
        ),
    )


def render(book: Runbook) -> str:
    role = "the hub" if book.is_hub else "a spoke"
    what = {
        REBUILD: f"rebuild {book.region} ({role})",
        STAYS_DOWN: f"take {book.region} ({role}) out while it stays down",
        MOVE_HUB: f"move the hub away from {book.region}",
    }[book.kind]
    lines = [f"Disaster recovery runbook: {what} of stack {book.stack}", ""]
    lines.append("What state lives where (nothing here is lost with one region):")
    for where, what_ in STATE_LOCATIONS:
        lines.append(f"  - {where}: {what_}")
    lines += ["", f"Expected duration: about {book.minutes:g} min (creation times of infra/bench.py).", ""]
    for i, step in enumerate(book.steps, start=1):
        lines.append(f"{i}. {step.title}")
        lines.append(f"   Runs from: {step.runs_from}. Expected: ~{step.minutes:g} min.")
        for command in step.commands:
            lines.append("   $ " + command.replace("\n", "\n     "))
        for note in step.notes:
            lines.append(f"   {note}")
        if step.ends_here:
            lines.append(
                "   Followed on its own, this runbook ends here: the runbook this step starts runs the steps "
                "below inside it, printed again with --inside (they are not in the expected duration)."
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Sequence[str] | None = None, prog: str = "platform dr") -> int:
    """``prog`` is the command usage and errors name: ``platform dr`` (which passes ``plan``
    first), or ``python -m infra.dr`` with its ``plan`` subcommand."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "plan",
        prog=prog if prog.startswith("platform") else f"{prog} plan",
        help="print the ordered runbook for one lost region",
    )
    p.add_argument("--stack", required=True, help="stack name (a Pulumi.<stack>.yaml must exist)")
    p.add_argument("--region", required=True, help="the lost region")
    # A spoke that stays down leaves the stack; a hub that stays down moves: never both.
    lost = p.add_mutually_exclusive_group()
    lost.add_argument("--new-hub", help="when the hub stays down: the surviving region to move Argo CD to")
    lost.add_argument(
        "--stays-down", action="store_true", help="a spoke that stays down: take it out of the stack"
    )
    p.add_argument("--backfill-script", type=Path, help="write the region's ECR backfill script to this file")
    p.add_argument(
        "--inside",
        metavar="STACK",
        help="the stack whose runbook runs this one (its step names this command): this runbook then "
        "works on that runbook's dr/ branch and ends with a commit there",
    )
    p.add_argument("--json", action="store_true", help="print targets and dependents as JSON")
    args = parser.parse_args(argv)
    try:
        if args.inside is not None:
            # Only a replica's runbook runs another stack's inside it: that of a stack whose
            # image source this one is, for this stack's lost hub (build's nested source step).
            configs = {c.stack: c for c in stackset.load().values()}
            outers = [
                s for s, c in sorted(configs.items()) if s != args.stack and args.stack in source_stacks(c)
            ]
            if args.inside not in outers:
                raise cfg.ConfigError(
                    "--inside",
                    args.inside,
                    "the stack whose runbook runs this one (its step prints this command): "
                    + (
                        f"one of {', '.join(outers)}"
                        if outers
                        else f"none: no stack's runbook runs {args.stack}'s"
                    ),
                )
            own = configs.get(args.stack)
            if args.stays_down or args.backfill_script is not None or (own and args.region != own.hub_region):
                raise cfg.ConfigError(
                    "--inside",
                    args.inside,
                    f"only for {args.stack}'s lost hub ({own.hub_region if own else '?'}), rebuilt or moved with "
                    "--new-hub: that is the runbook another stack's runbook runs inside it; not with "
                    "--stays-down or --backfill-script",
                )
        plan = offline.run(args.stack)
        if args.backfill_script is not None:
            if args.region not in plan.config.region_names:
                raise region_outside(plan.config, args.region)
            if args.new_hub or args.stays_down:
                # Only a rebuilt region is backfilled: one that leaves the stack gets no images.
                raise cfg.ConfigError(
                    "--backfill-script",
                    str(args.backfill_script),
                    f"only for a region that is rebuilt (--region alone); {args.region} leaves the stack with "
                    f"{'--new-hub' if args.new_hub else '--stays-down'}, so its runbook has no backfill",
                )
            args.backfill_script.write_text(backfill_script(plan.config, args.region))
            args.backfill_script.chmod(0o755)
            print(f"wrote {args.backfill_script}")
            return 0
        book = build(plan, args.region, args.new_hub, args.stays_down, outer=args.inside)
    except cfg.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write the backfill script: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(
            json.dumps(
                {
                    "stack": book.stack,
                    "region": book.region,
                    "kind": book.kind,
                    "targets": book.target_urns,
                    "dependents": [r.urn for r in book.dependents],
                    "hubMove": book.hub_move,
                    "steps": [
                        {
                            "title": s.title,
                            "runsFrom": s.runs_from,
                            "minutes": s.minutes,
                            "commands": s.commands,
                            "endsHere": s.ends_here,
                        }
                        for s in book.steps
                    ],
                },
                indent=2,
            )
        )
    else:
        print(render(book))
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m infra.dr"))

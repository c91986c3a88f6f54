"""Which of the repository protections the program declares exist on which GitHub plan (issue 15).

Prod's roles trust a job only in a named environment of one workflow on ``main``
(infra/documents/iam.py); what makes that safe is the protection prod's stack declares on the
repository (infra/components/github_repository.py): the environments' deployment branch rule
(``main`` only), their required reviewers (prod's two environments; another stack's if it names
reviewers), and the ``protect-main`` ruleset. GitHub offers these by plan and by the repository's
visibility. Where one does not exist, GitHub ignores it (or refuses to set it), and a role would
trust an environment that nothing protects, so the stack file says the plan and the visibility
(``platform:github.plan``, ``platform:github.visibility``) and :func:`missing` refuses those
combinations before anything is declared.

GitHub's availability notes, read 2026-12-01 (github/docs, the "Who can use this feature?" boxes):

* environments, "Managing environments for deployment"
  (https://docs.github.com/en/actions/how-tos/deploy/configure-and-manage-deployments/manage-environments,
  github/docs data/reusables/gated-features/environments.md): "Environments, environment
  secrets, and deployment protection rules are available in public repositories for all current
  GitHub plans. [...] For access to environments, environment secrets, and deployment branches
  in private or internal repositories, you must use GitHub Pro, GitHub Team, or GitHub
  Enterprise. If you are on a GitHub Free, GitHub Pro, or GitHub Team plan, other deployment
  protection rules, such as a wait timer or required reviewers, are only available for public
  repositories.";
* rulesets, "About rulesets"
  (https://docs.github.com/en/repositories/configuring-branches-and-merges-in-your-repository/managing-rulesets/about-rulesets,
  data/reusables/gated-features/repo-rules.md): "Rulesets are available in public repositories
  with GitHub Free and GitHub Free for organizations, and in public and private repositories
  with GitHub Pro, GitHub Team, and GitHub Enterprise Cloud." (Push rulesets, which the program
  does not declare, are another matter.);
* internal repositories (data/reusables/gated-features/internal-repos.md): "available on GitHub
  Enterprise Cloud for organizations that are owned by an enterprise account".

``enterprise`` here is GitHub Enterprise Cloud (the program talks to github.com). GitHub Pro is
a plan of a personal account, Team and Enterprise Cloud of an organization; the program cannot
tell offline which kind of account ``platform:github.owner`` is, so that pairing is the stack
file's to get right.
"""

from __future__ import annotations

from typing import Literal

Plan = Literal["free", "pro", "team", "enterprise"]
Visibility = Literal["public", "private", "internal"]
Protection = Literal["environments", "reviewers", "ruleset"]

PLANS: tuple[Plan, ...] = ("free", "pro", "team", "enterprise")
VISIBILITIES: tuple[Visibility, ...] = ("public", "private", "internal")

# Per protection, the plans that offer it in a repository that is not public (in a public one
# every current plan offers all three).
_PLANS_OUTSIDE_PUBLIC: dict[Protection, tuple[Plan, ...]] = {
    # environments, their secrets and deployment branch rules (the main-only rule)
    "environments": ("pro", "team", "enterprise"),
    # required reviewers (and prevent self-review, which belongs to them)
    "reviewers": ("enterprise",),
    # the protect-main branch ruleset
    "ruleset": ("pro", "team", "enterprise"),
}

WHAT: dict[Protection, str] = {
    "environments": "environments (their secrets, their deployment branch rules)",
    "reviewers": "required reviewers of environments",
    "ruleset": "rulesets (protect-main)",
}


def plans_offering(protection: Protection, visibility: Visibility) -> tuple[Plan, ...]:
    """The plans on which ``protection`` exists in a repository of ``visibility``."""
    if visibility == "internal":
        # Internal repositories exist on Enterprise Cloud only.
        return ("enterprise",)
    if visibility == "public":
        return PLANS
    return _PLANS_OUTSIDE_PUBLIC[protection]


def visibility_exists(plan: Plan, visibility: Visibility) -> bool:
    """Whether a repository of ``visibility`` can exist on ``plan`` (internal: Enterprise Cloud only)."""
    return visibility != "internal" or plan == "enterprise"


def required(*, reviewers: bool) -> tuple[Protection, ...]:
    """The protections a stack relies on: every stack's environment (its write secret, the
    main-only rule) and the ruleset on ``main``; the reviewers where the stack names any."""
    return ("environments", "reviewers", "ruleset") if reviewers else ("environments", "ruleset")


def missing(plan: Plan, visibility: Visibility, *, reviewers: bool) -> tuple[Protection, ...]:
    """The protections the stack relies on (:func:`required`) that ``plan`` lacks for a
    repository of ``visibility``; empty when every one exists."""
    return tuple(p for p in required(reviewers=reviewers) if plan not in plans_offering(p, visibility))

"""Contracts of the release branch: who may push to it once prod's `protect-main` ruleset exists.

Each test names the upstream source read.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra import config, naming
from tests.conftest import fixture_config_map


def _image_updater_push_branch(git_branch: str | None, target_revision: str) -> str:
    """The branch Image Updater v1.2.2 pushes its git write-back commit to.

    argoproj-labs/argocd-image-updater v1.2.2, pkg/argocd/update.go ``parseGitConfig``: the
    ImageUpdater CR's ``gitConfig.branch`` is split at ``:`` into ``GitBranch`` (checkout) and
    ``GitWriteBranch`` (push, optional); pkg/argocd/git.go ``commitChangesGit``: the checkout branch
    is ``GitBranch`` or else the Application's ``targetRevision`` (``getWriteBackBranch``), and
    ``pushBranch := checkOutBranch`` unless a write branch (or PR mode) is set. The program's
    ``gitBranch`` admits no ``:`` (infra/config.py), so the push branch is the checkout branch."""
    assert git_branch is None or ":" not in git_branch
    return git_branch or target_revision


@pytest.mark.parametrize(
    ("git_branch", "revision"),
    [(None, "main"), ("main", "main"), ("main", "release"), ("image-updates", "main"), (None, "release")],
)
def test_git_write_back_never_pushes_to_the_protected_release_branch(
    git_branch: str | None, revision: str
) -> None:
    """Prod's ruleset (no bypass actors, a pull request with one approving review) rejects any
    direct push to main (GitHub: available rules for rulesets, "Require a pull request before
    merging"), so the config refuses a git write-back whose push branch is main on the stack's
    own repository, and accepts every other."""
    raw: dict[str, Any] = copy.deepcopy(fixture_config_map("staging"))
    raw["platform:imageUpdater"].update({"writeBackMethod": "git"})
    if git_branch is not None:
        raw["platform:imageUpdater"]["gitBranch"] = git_branch
    raw["platform:application"]["revision"] = revision
    refused = _image_updater_push_branch(git_branch, revision) == naming.RELEASE_BRANCH
    try:
        config.from_flat(config.as_pulumi_config(raw), "staging")
    except config.ConfigError as e:
        assert refused and "platform:imageUpdater.gitBranch" in str(e), str(e)
        return
    assert not refused

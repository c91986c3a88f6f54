"""The set-up is locked and reproducible: uv.lock matches pyproject.toml, comes from PyPI alone
with hashes, the installer itself is pinned, and `make test` installs helm rather than skipping.

uv.lock's format (the root package's `[package.metadata]` requires-dist / requires-dev tables,
`source = { registry = ... }`, per-file `hash`) is uv's: https://docs.astral.sh/uv/concepts/projects/sync/
and https://docs.astral.sh/uv/guides/integration/dependency-bots/ (uv 0.13.9, pinned in pyproject).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

PYPI = "https://pypi.org/simple"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK = tomllib.loads((ROOT / "uv.lock").read_text())
RELOCK = "the lock is out of date: run `make lock` and commit uv.lock"


def _norm(req: str | dict[str, Any], extra: str | None = None) -> tuple[str, str, str, str]:
    """One requirement as (name, extras, specifiers, marker), canonical; `extra` adds uv's marker."""
    if isinstance(req, dict):  # uv.lock's table form
        name, extras = req["name"], ",".join(sorted(req.get("extras", [])))
        specs, marker = req.get("specifier", "").split(","), req.get("marker", "")
    else:
        parsed = Requirement(req)
        name, extras = parsed.name, ",".join(sorted(parsed.extras))
        specs, marker = [str(s) for s in parsed.specifier], str(parsed.marker or "")
        if extra:
            marker = f"{marker} and extra == '{extra}'" if marker else f"extra == '{extra}'"
    spec = ",".join(sorted(s.strip() for s in specs if s.strip()))
    return (canonicalize_name(name), extras, spec, str(Marker(marker)) if marker else "")


def _root() -> dict[str, Any]:
    name = canonicalize_name(PYPROJECT["project"]["name"])
    [root] = [p for p in LOCK["package"] if p["name"] == name]
    return root


def test_lock_records_exactly_the_dependencies_declared_in_pyproject() -> None:
    project = PYPROJECT["project"]
    declared = {_norm(r) for r in project["dependencies"]}
    declared |= {_norm(r, extra) for extra, reqs in project["optional-dependencies"].items() for r in reqs}
    metadata = _root()["metadata"]
    locked = {_norm(r) for r in metadata["requires-dist"]}
    assert locked == declared, f"{RELOCK}; differs in {sorted(locked ^ declared)}"

    groups = {g: {_norm(r) for r in reqs} for g, reqs in PYPROJECT.get("dependency-groups", {}).items()}
    locked_groups = {g: {_norm(r) for r in reqs} for g, reqs in metadata.get("requires-dev", {}).items()}
    assert locked_groups == groups, RELOCK
    assert LOCK["requires-python"] == PYPROJECT["project"]["requires-python"], RELOCK


def test_every_locked_package_comes_from_pypi_with_hashes() -> None:
    """Nothing only this machine has (its pip is configured with local indexes) reaches the lock."""
    root = _root()
    for package in LOCK["package"]:
        if package is root:
            assert package["source"] == {"editable": "."}
            continue
        where = f"{package['name']} {package['version']}"
        assert package["source"] == {"registry": PYPI}, where
        files = package.get("wheels", []) + ([package["sdist"]] if "sdist" in package else [])
        assert files, where
        for f in files:
            assert f["url"].startswith("https://files.pythonhosted.org/"), (where, f["url"])
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", f["hash"]), (where, f["url"])


def test_dev_tools_have_upper_bounds() -> None:
    for req in PYPROJECT["project"]["optional-dependencies"]["dev"]:
        assert any(s.operator in ("<", "<=", "==", "~=") for s in Requirement(req).specifier), req


def test_build_requirements_are_pinned_exactly() -> None:
    """uv.lock does not cover build requirements; the editable install's backend is pinned instead."""
    for req in PYPROJECT["build-system"]["requires"]:
        assert [s.operator for s in Requirement(req).specifier] == ["=="], req


def test_the_installer_is_pinned_with_hashes_to_the_version_pyproject_requires() -> None:
    required = PYPROJECT["tool"]["uv"]["required-version"]
    assert required.startswith("==")
    text = (ROOT / "requirements-uv.txt").read_text()
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.M)
    assert pins == [("uv", required[2:])]
    assert len(re.findall(r"--hash=sha256:[0-9a-f]{64}", text)) >= 2


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_test_installs_the_locked_environment_and_helm_before_testing(tmp_path) -> None:
    """A dry run in a fresh copy (no .venv, no .uv, no .ci/bin) shows what `make test` does."""
    for name in ("Makefile", "pyproject.toml", "uv.lock", "requirements-uv.txt", "requirements-checkov.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    out = subprocess.run(
        ["make", "-n", "test"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.replace("\\\n", " ")
    lines = out.splitlines()

    def first(pattern: str) -> int:
        hits = [i for i, line in enumerate(lines) if re.search(pattern, line)]
        assert hits, f"{pattern!r} not in:\n{out}"
        return hits[0]

    install_uv = first(r"pip install .*--require-hashes .*-r requirements-uv\.txt")
    sync = first(r"uv sync --locked ")
    helm = first(r"\.ci/install-helm")
    checkov = first(r"uv pip install .*--require-hashes -r requirements-checkov\.txt")
    pytest_run = first(r"-m pytest")
    assert install_uv < sync < pytest_run and helm < pytest_run
    # The scanners' test (tests/stack/test_scan.py) runs checkov from its own locked environment.
    assert install_uv < checkov < pytest_run and ".venv/checkov" in lines[checkov]
    assert "PIP_CONFIG_FILE=/dev/null" in lines[install_uv] and "--isolated" in lines[install_uv]
    assert "UV_NO_CONFIG=1" in lines[sync]
    assert ".ci/bin" in lines[pytest_run]


def test_ci_runs_the_readmes_test_command() -> None:
    run = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", run, re.M)

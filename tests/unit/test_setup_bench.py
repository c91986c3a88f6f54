"""make bench's memory figure sums the RSS of a command's whole process tree (not only the largest).

The fresh-clone figures themselves are slow and need the network: they run in `make bench`, never here.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from infra import setup_bench

CHILD = "b = bytearray({mib} * 1024 * 1024); import time; time.sleep(1.5)"
PARENT = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', {child!r}])\n"
    "b = bytearray({mib} * 1024 * 1024)\n"
    "child.wait()\n"
)


def test_the_sampler_sums_the_process_tree(tmp_path: Path) -> None:
    code = PARENT.format(child=CHILD.format(mib=160), mib=100)
    figures = setup_bench.run_sampled([sys.executable, "-c", code], tmp_path, dict(os.environ), interval=0.05)
    assert figures.returncode == 0
    assert figures.largest_mib >= 160
    assert figures.tree_peak_mib >= 260
    assert figures.tree_peak_mib > figures.largest_mib + 90


def test_the_set_up_figure_times_what_make_plan_installs_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Figure 4 is the installing alone (issue 14's target), the plan and scanners timed apart:
    `make setup` has exactly `make plan`'s prerequisites and no recipe of its own."""
    makefile = (setup_bench.ROOT / "Makefile").read_text()

    def prerequisites(target: str) -> tuple[list[str], str]:
        m = re.search(rf"^{target}:([^\n]*)\n((?:\t[^\n]*\n)*)", makefile, re.M)
        assert m, target
        return m.group(1).split(), m.group(2)

    setup, setup_recipe = prerequisites("setup")
    plan, plan_recipe = prerequisites("plan")
    assert setup == plan and setup_recipe == "" and plan_recipe
    ran: list[list[str]] = []
    monkeypatch.setattr(setup_bench.subprocess, "run", lambda cmd, **_: ran.append(list(cmd)))
    setup_bench.measure_setup(tmp_path, {})
    setup_bench.measure_plan_after_setup(tmp_path, {})
    assert ran == [["make", "setup"], ["make", "plan"]]


def test_the_clone_downloads_everything_into_empty_caches_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Figure 4 is a first machine's set-up: uv's packages and helm's npm tarball
    (.ci/install-helm's `npm pack`) come from the network, not from this machine's warm caches."""
    monkeypatch.setenv("UV_CACHE_DIR", "/warm/uv")
    monkeypatch.setenv("npm_config_cache", "/warm/npm")
    env = setup_bench._environment(tmp_path)
    caches = [Path(env["UV_CACHE_DIR"]), Path(env["npm_config_cache"])]
    assert all(c.parent == tmp_path and not c.exists() for c in caches)
    assert len(set(caches)) == 2
    assert "npm pack" in (setup_bench.ROOT / ".ci" / "install-helm").read_text()

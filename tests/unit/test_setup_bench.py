"""make bench's memory figure sums the RSS of a command's whole process tree (not only the largest).

The fresh-clone figures themselves are slow and need the network: they run in `make bench`, never here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

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

"""What Pulumi runs for ``pulumi preview --policy-pack policies``.

Importing this module (tests, tooling) starts nothing: the pack is served only when the file runs
as the program, because constructing a ``PolicyPack`` starts a gRPC server and blocks.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Pulumi runs the pack from the policies/ directory, so the repository root, which holds the
# `policies` package and the `infra` constants it reads (naming, versions), is not importable
# by itself; with the project installed (pip install -e .) this is a no-op.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


def main() -> None:
    from policies.pack import serve

    serve()


if __name__ == "__main__":
    main()

"""The `nnlab` command: `nnlab check` verifies committed results against thresholds."""

from __future__ import annotations

import sys

from nnlab import check

COMMANDS = {"check": check.main}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: nnlab {{{','.join(COMMANDS)}}} [options]", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])

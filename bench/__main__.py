"""``python -m bench``: run every benchmark module listed in BENCHMARKS and print its report."""

from __future__ import annotations

import importlib
import sys

#: benchmark modules, each with ``main() -> int``.
BENCHMARKS: list[str] = [
    "startup",
    "keys",
    "headless",
    "boot_load",
    "monitor",
    "diagnostics_screen",
]


def main() -> int:
    """Run the benchmarks named on the command line, or all of them."""
    wanted = sys.argv[1:] or BENCHMARKS
    failed = 0
    for name in wanted:
        module = importlib.import_module(f"bench.{name}")
        failed |= int(module.main())
    return failed


if __name__ == "__main__":
    raise SystemExit(main())

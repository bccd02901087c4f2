"""Wall time of `dvc repro`: with everything up to date, and (with --full) from scratch.

    python bench/pipeline.py [--repeats 5] [--full]

The no-op case is the median of `--repeats` runs. `--full` re-runs every stage with
`dvc repro --force` once (many minutes), after which the results are as before: training is
deterministic for equal params and seed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from nnlab.atomic import write_json

RESULTS = Path("bench/results/pipeline.json")


def timed_repro(*options: str) -> float:
    environment = dict(os.environ)
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}"
    start = time.perf_counter()
    subprocess.run(
        ["dvc", "repro", *options], check=True, env=environment, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--full", action="store_true", help="also time a forced full run")
    args = parser.parse_args()

    timed_repro()
    noop = [timed_repro() for _ in range(args.repeats)]
    results = {"noop_seconds_median": statistics.median(noop), "noop_seconds": noop}
    print(f"no-op dvc repro: median {results['noop_seconds_median']:.2f} s of {args.repeats}")
    if args.full:
        results["full_seconds"] = timed_repro("--force")
        print(f"full dvc repro --force: {results['full_seconds']:.0f} s")
    write_json(RESULTS, results)


if __name__ == "__main__":
    main()

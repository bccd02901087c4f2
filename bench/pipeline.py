"""Wall time of `dvc repro`: with everything up to date, and (with --full) from scratch.

    python bench/pipeline.py [--repeats 5] [--full]

The no-op case is the median of `--repeats` runs after one that brings the pipeline up to
date. `--full` first re-runs every stage with `dvc repro --force` (many minutes) and prints
each stage's wall time (process start, imports and outputs included) beside what its
training stage recorded: training and evaluation seconds and the stage's peak memory.
Training is deterministic for equal params and seed, so the results are as before.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from nnlab.atomic import write_json

RESULTS = Path("bench/results/pipeline.json")
TIMING = Path("metrics/timing")
STAGE_LINE = re.compile(r"^Running stage '([^']+)'")


def repro(*options: str) -> list[tuple[str, float]]:
    """Run `dvc repro`; return when each stage started and, last, ("end", time)."""
    environment = dict(os.environ)
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}"
    start = time.perf_counter()
    marks = []
    with subprocess.Popen(
        ["dvc", "repro", *options],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        for line in process.stdout:
            match = STAGE_LINE.match(line)
            if match:
                marks.append((match.group(1), time.perf_counter() - start))
    if process.returncode != 0:
        raise SystemExit(f"dvc repro {' '.join(options)} exited with {process.returncode}")
    marks.append(("end", time.perf_counter() - start))
    return marks


def stage_table(marks: list[tuple[str, float]]) -> list[dict]:
    """Each stage's wall time, with the training and memory figures its stage recorded."""
    rows = []
    for (stage, started), (_, ended) in itertools.pairwise(marks):
        row: dict = {"stage": stage, "wall_seconds": round(ended - started, 1)}
        group, _, name = stage.partition("@")
        timing = TIMING / group / f"{_timing_name(group, name)}.json"
        if name and timing.exists():
            row.update(json.loads(timing.read_text()))
        rows.append(row)
    return rows


def _timing_name(group: str, name: str) -> str:
    return f"softmax-dropout-{name}" if group == "sweep" else name


def print_stages(rows: list[dict]) -> None:
    print(f"{'stage':<26}{'wall s':>8}{'train s':>9}{'eval s':>8}{'img/s':>9}{'peak MB':>9}")
    for row in rows:
        figures = [
            f"{row[key]:>{width}.{digits}f}" if key in row else " " * width
            for key, width, digits in (
                ("train_seconds", 9, 1),
                ("eval_seconds", 8, 1),
                ("images_per_second", 9, 0),
                ("peak_memory_mb", 9, 0),
            )
        ]
        print(f"{row['stage']:<26}{row['wall_seconds']:>8.1f}{''.join(figures)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--full", action="store_true", help="also time a forced full run")
    args = parser.parse_args()

    results: dict = {}
    if args.full:
        marks = repro("--force")
        results["full_seconds"] = marks[-1][1]
        results["stages"] = stage_table(marks)
        print_stages(results["stages"])
        print(f"full dvc repro --force: {results['full_seconds']:.0f} s")
    else:
        repro()
    noop = [repro()[-1][1] for _ in range(args.repeats)]
    results.update(noop_seconds_median=statistics.median(noop), noop_seconds=noop)
    print(f"no-op dvc repro: median {results['noop_seconds_median']:.2f} s of {args.repeats}")
    write_json(RESULTS, results)
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()

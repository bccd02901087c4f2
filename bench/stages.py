"""Whole training stages per Keras backend: process start, imports, training and outputs.

`bench/training.py` times one epoch inside a warm process; a stage also pays for starting
Python, importing Keras and its backend, the eight epochs with their test evaluations and
writing the model. This runs `stages/train.py` itself for each model and backend, taking
turns, in a temporary workspace (the project's params.yaml with `train.backend` changed, the
project's data, a temporary MLflow store), and prints medians.

    python bench/stages.py [--repeats 3] [--models softmax-plain mlp-plain]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ruamel.yaml import YAML

from nnlab import paths
from nnlab.atomic import write_json

RESULTS = Path("bench/results/stages.json")
BACKENDS = ("tensorflow", "torch", "jax")
STAGE = Path(__file__).resolve().parents[1] / "stages" / "train.py"
FIT_SECONDS = re.compile(r"iterations in ([0-9.]+) s")


def workspace(root: Path, backend: str) -> Path:
    """A folder holding the project's params with every model on `backend`, and its data."""
    folder = root / backend
    (folder / "data").mkdir(parents=True)
    (folder / paths.MNIST).symlink_to(paths.MNIST.resolve())
    yaml = YAML()
    params = yaml.load(paths.PARAMS)
    for arch in params["train"]["backend"]:
        params["train"]["backend"][arch] = backend
    yaml.dump(params, folder / "params.yaml")
    return folder


def run_stage(folder: Path, model_name: str) -> tuple[float, float]:
    """Wall seconds of one stage run, and the fit seconds it printed."""
    arch, variant = model_name.split("-")
    environment = dict(os.environ)
    environment["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(STAGE), arch, variant],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - start
    return wall, float(FIT_SECONDS.search(result.stdout).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per model and backend")
    parser.add_argument("--models", nargs="+", default=["softmax-plain", "mlp-plain"])
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    args = parser.parse_args()

    installed = [name for name in args.backends if importlib.util.find_spec(name) is not None]
    times: dict[str, dict[str, list[tuple[float, float]]]] = {}
    with tempfile.TemporaryDirectory() as root:
        folders = {backend: workspace(Path(root), backend) for backend in installed}
        for _ in range(args.repeats):
            for model_name in args.models:
                for backend, folder in folders.items():
                    measured = run_stage(folder, model_name)
                    times.setdefault(model_name, {}).setdefault(backend, []).append(measured)

    print(f"{'model':<16}{'backend':<12}{'stage wall s':>13}{'fit s':>8}")
    results: dict = {}
    for model_name, per_backend in times.items():
        for backend, runs in per_backend.items():
            wall = statistics.median(run[0] for run in runs)
            fit = statistics.median(run[1] for run in runs)
            measured = {"wall_seconds": wall, "fit_seconds": fit}
            results.setdefault(model_name, {})[backend] = measured
            print(f"{model_name:<16}{backend:<12}{wall:>13.1f}{fit:>8.1f}")
    write_json(RESULTS, results)
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()

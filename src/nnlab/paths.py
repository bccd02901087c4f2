"""Every file and folder the pipeline reads or writes, relative to the project root.

Stages run with the project root as working directory (DVC runs them there, also inside
the temporary copies that `dvc exp run` makes). Only the tracking store is shared across
those copies: `project_root()` finds the original project behind such a copy.
"""

from __future__ import annotations

import os
from pathlib import Path

PARAMS = Path("params.yaml")

DATA = Path("data")
MNIST = DATA / "mnist.npz"
MNIST_PROVENANCE = DATA / "provenance.json"

MODELS = Path("models")
METRICS = Path("metrics")
PLOTS = Path("plots")
SERIES = PLOTS / "series"
FIGURES = PLOTS / "figures"
REPORT = Path("report")

TRACKING_DB = "mlflow.db"
TRACKING_ARTIFACTS = "mlartifacts"

_EXPERIMENT_COPY = (".dvc", "tmp", "exps")


def run_name(arch: str, variant: str) -> str:
    """Name of one training run, as in stage names and file names: `cnn-batchnorm`."""
    return f"{arch}-{variant}"


def sweep_name(dropout_rate: float) -> str:
    """Name of one run of the softmax dropout sweep: `softmax-dropout-0.1`."""
    return f"softmax-dropout-{dropout_rate}"


def model_file(name: str, group: str = "train") -> Path:
    return MODELS / group / f"{name}.keras"


def train_metrics(name: str, group: str = "train") -> Path:
    """Final accuracy and loss of one training (reproducible to the byte)."""
    return METRICS / group / f"{name}.json"


def timing_metrics(name: str, group: str = "train") -> Path:
    """Wall times of one training, kept apart from its reproducible results."""
    return METRICS / "timing" / group / f"{name}.json"


def series_folder(name: str, group: str = "train") -> Path:
    return SERIES / group / name


def train_series(name: str, group: str = "train") -> Path:
    """Per-iteration training loss and accuracy (one row per iteration)."""
    return series_folder(name, group) / "train.csv"


def test_series(name: str, group: str = "train") -> Path:
    """Test loss and accuracy every `eval_every` iterations."""
    return series_folder(name, group) / "test.csv"


def project_root(start: Path | None = None) -> Path:
    """The project folder, also when running inside a copy made by `dvc exp run`.

    DVC names the original project in DVC_ROOT for queued experiments; for a run in a
    temporary copy without it, the copy's own path under `.dvc/tmp/exps` tells.
    """
    if start is None and os.environ.get("DVC_ROOT"):
        return Path(os.environ["DVC_ROOT"]).resolve()
    start = (start or Path.cwd()).resolve()
    parts = start.parts
    for index in range(len(parts) - len(_EXPERIMENT_COPY) + 1):
        if parts[index : index + len(_EXPERIMENT_COPY)] == _EXPERIMENT_COPY:
            return Path(*parts[:index])
    return start


# Part 1: hand-written gradients and gradient descent.

GRADCHECK_METRICS = METRICS / "gradcheck.json"
GRADIENT_TABLE = REPORT / "gradient_table.md"
GRADIENT_TABLE_VALUES = METRICS / "gradient_table.json"
DESCENT_METRICS = METRICS / "descent.json"
DESCENT_SERIES = SERIES / "descent"
GRADIENT_BENCHMARK = Path("bench") / "results" / "gradient.json"


def descent_series(dim: int) -> Path:
    """Mean loss per pass over the data set for size K = dim, one column per learning rate."""
    return DESCENT_SERIES / f"k{dim}.csv"


# Figures and report.

REPORT_README = REPORT / "README.md"


def figure_file(name: str) -> Path:
    """One rendered figure of the study: `plots/figures/fig04_descent.png`."""
    return FIGURES / f"{name}.png"

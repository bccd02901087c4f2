"""Plain gradient descent on sum_n L(x_n; A, B, C) over fixed random inputs.

Letters as in `nnlab.graph`: N inputs in the data set, K the size of each. The
inputs and the starting A, B, C are standard normal. One iteration is one pass
over the data set: `per_sample` takes one step per input, in a fixed order,
with that input's gradient; `full_batch` takes one step with the gradient of
the whole sum. The loss recorded per iteration is the mean of L(x_n) over the
data set, iteration 0 being the starting point.

A run whose loss stops being finite ends there and is marked diverged; it keeps
the losses up to the last finite one, so its summary stays valid strict JSON.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from nnlab import graph
from nnlab.graph import Weights
from nnlab.params import DescentParams, GraphParams

ITERATION = "iteration"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DescentRun:
    """The loss history of one (K, learning rate) case."""

    dim: int
    learning_rate: float
    losses: tuple[float, ...]
    diverged: bool

    @property
    def name(self) -> str:
        return run_name(self.dim, self.learning_rate)

    @property
    def initial_loss(self) -> float:
        return self.losses[0]

    @property
    def final_loss(self) -> float:
        """The last finite mean loss."""
        return self.losses[-1]

    @property
    def iterations(self) -> int:
        """Passes completed with a finite loss."""
        return len(self.losses) - 1

    def summary(self) -> dict[str, float | int]:
        """First and last finite loss, passes completed, 1 if diverged."""
        return {
            "initial_loss": self.initial_loss,
            "final_loss": self.final_loss,
            "iterations": self.iterations,
            "diverged": int(self.diverged),
        }


def run_name(dim: int, learning_rate: float) -> str:
    """Name of one case, as MLflow shows it: `descent-k8-lr0.01`."""
    return f"descent-k{dim}-lr{learning_rate:g}"


def learning_rate_column(learning_rate: float) -> str:
    """Column of one learning rate in the per-iteration table: `lr_0.01`."""
    return f"lr_{learning_rate:g}"


def descend(
    params: GraphParams,
    weights: Weights,
    x: np.ndarray,
    learning_rate: float,
    iterations: int,
    update: Literal["per_sample", "full_batch"],
) -> tuple[list[float], bool]:
    """Mean loss per iteration (0 = start); True if it stopped being finite."""
    losses = [graph.mean_loss(params, weights, x)]
    if not math.isfinite(losses[0]):
        raise ValueError(f"starting loss {losses[0]}: nothing to descend from")

    # Diverging weights overflow before the loss does; the loss decides.
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(iterations):
            if update == "per_sample":
                for row in range(len(x)):
                    one = x[row : row + 1]
                    weights = _step(params, weights, one, learning_rate)
            else:
                weights = _step(params, weights, x, learning_rate)

            loss = graph.mean_loss(params, weights, x)
            if not math.isfinite(loss):
                return losses, True
            losses.append(loss)
    return losses, False


def run_case(
    params: GraphParams, settings: DescentParams, dim: int, learning_rate: float, seed: int
) -> DescentRun:
    """Draw the data for K = dim and descend with one learning rate."""
    weights, x = graph.random_problem(dim, settings.samples, seed)
    losses, diverged = descend(
        params, weights, x, learning_rate, settings.iterations, settings.update
    )
    run = DescentRun(dim, learning_rate, tuple(losses), diverged)
    if diverged:
        passes = run.iterations
        log.warning("%s diverged after %d pass(es)", run.name, passes)
    return run


def series_table(runs: list[DescentRun]) -> pd.DataFrame:
    """Mean loss per iteration, one column per learning rate, for runs of one K.

    A diverged run's column is empty after its last finite loss.
    """
    length = max(len(run.losses) for run in runs)
    table = pd.DataFrame({ITERATION: range(length)})
    for run in runs:
        column = np.full(length, np.nan)
        column[: len(run.losses)] = run.losses
        table[learning_rate_column(run.learning_rate)] = column
    return table


def metrics_document(runs: list[DescentRun]) -> dict[str, Any]:
    """Initial and final loss and the diverged flag per case, numbers only."""
    document: dict[str, Any] = {}
    for run in runs:
        cases = document.setdefault(f"k{run.dim}", {})
        cases[learning_rate_column(run.learning_rate)] = run.summary()
    return document


def _step(params: GraphParams, weights: Weights, x: np.ndarray, learning_rate: float) -> Weights:
    _, gradients = graph.loss_and_gradients(params, weights, x)
    return graph.step(weights, gradients, learning_rate)

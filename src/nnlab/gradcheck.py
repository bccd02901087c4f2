"""The hand-written gradients of `nnlab.graph` against two references.

The references are torch autograd in float64 and central finite differences.
Every combination of gate, loss and activation is checked for each size K and
each random draw of x (N x K) and A, B, C (K x K).

Error measures, for one gradient matrix `actual` against its reference
`expected`:

    absolute error = max |actual - expected|
    relative error = max |actual - expected| / max(max |expected|, TINY)

Both maxima run over all entries of the matrix, so the relative error compares
the worst entry with the scale of the whole gradient: an entry close to zero
does not turn a rounding difference into a large ratio, and an all-zero
reference does not divide by zero. The error of one case is the largest over
dL/dA, dL/dB and dL/dC.
"""

from __future__ import annotations

import itertools
import textwrap
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nnlab import graph
from nnlab.graph import Gradients, Weights
from nnlab.params import GradcheckParams, GraphParams

TINY = float(np.finfo(np.float64).tiny)
TORCH = "torch"
FINITE_DIFFERENCES = "finite_differences"
TABLE_DECIMALS = 4

_TORCH_ACTIVATIONS = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
}


@dataclass(frozen=True)
class Errors:
    """Largest absolute and relative error, and the matrix of the latter."""

    absolute: float
    relative: float
    matrix: str


@dataclass(frozen=True)
class CaseResult:
    """The errors of one graph, size and draw against both references."""

    graph: GraphParams
    dim: int
    seed: int
    loss_error: float
    errors: dict[str, Errors]

    @property
    def name(self) -> str:
        g = self.graph
        where = f"K={self.dim} seed={self.seed}"
        return f"{g.combine}/{g.loss}/{g.activation} {where}"


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| / max(max |expected|, TINY), over all entries."""
    scale = max(float(np.max(np.abs(expected))), TINY)
    return float(np.max(np.abs(actual - expected))) / scale


def compare(actual: Gradients, expected: Gradients) -> Errors:
    """Largest absolute error; worst of dL/dA, dL/dB, dL/dC by relative error."""
    absolute: dict[str, float] = {}
    relative: dict[str, float] = {}
    named = zip(Gradients._fields, actual, expected, strict=True)
    for matrix, got, wanted in named:
        if got.shape != wanted.shape:
            raise ValueError(f"dL/d{matrix}: shape {got.shape}, expected {wanted.shape}")
        absolute[matrix] = float(np.max(np.abs(got - wanted)))
        relative[matrix] = relative_error(got, wanted)
    worst = max(relative, key=relative.__getitem__)
    return Errors(max(absolute.values()), relative[worst], worst)


def all_graphs() -> list[GraphParams]:
    """Every combination of gate, loss and activation."""
    return [
        GraphParams(combine=combine, loss=loss, activation=activation)
        for combine, loss, activation in itertools.product(
            graph.COMBINES, graph.LOSSES, graph.ACTIVATIONS
        )
    ]


def torch_loss_and_gradients(
    params: GraphParams, weights: Weights, x: np.ndarray
) -> tuple[float, Gradients]:
    """The batch loss and its gradients, by torch autograd in float64."""
    A, B, C = (torch.tensor(m, dtype=torch.float64, requires_grad=True) for m in weights)
    inputs = torch.as_tensor(x, dtype=torch.float64)

    y = inputs @ A.T
    u = _TORCH_ACTIVATIONS[params.activation](y)
    v = inputs @ B.T
    z = u + v if params.combine == "add" else u * v
    w = z @ C.T
    reduce = torch.mean if params.loss == "mean_square" else torch.sum
    total = reduce(w**2, dim=1).sum()

    total.backward()
    gradients = Gradients(A.grad.numpy(), B.grad.numpy(), C.grad.numpy())
    return float(total.detach()), gradients


def finite_difference_gradients(
    params: GraphParams, weights: Weights, x: np.ndarray, step: float
) -> Gradients:
    """(L(m + h) - L(m - h)) / 2h of the batch loss, entry by entry."""
    estimates = []
    for index, matrix in enumerate(weights):
        estimate = np.empty_like(matrix)
        for entry in np.ndindex(matrix.shape):
            above = _nudge(weights, index, entry, step)
            below = _nudge(weights, index, entry, -step)
            rise = graph.batch_loss(params, above, x) - graph.batch_loss(params, below, x)
            estimate[entry] = rise / (2 * step)
        estimates.append(estimate)
    return Gradients(*estimates)


def check_case(params: GraphParams, dim: int, seed: int, settings: GradcheckParams) -> CaseResult:
    """One graph's hand-written loss and gradients against both references."""
    weights, x = graph.random_problem(dim, settings.samples, seed)
    loss, gradients = graph.loss_and_gradients(params, weights, x)
    torch_loss, torch_gradients = torch_loss_and_gradients(params, weights, x)
    estimates = finite_difference_gradients(params, weights, x, settings.fd_step)

    return CaseResult(
        graph=params,
        dim=dim,
        seed=seed,
        loss_error=abs(loss - torch_loss) / max(abs(torch_loss), TINY),
        errors={
            TORCH: compare(gradients, torch_gradients),
            FINITE_DIFFERENCES: compare(gradients, estimates),
        },
    )


def check_all(settings: GradcheckParams) -> list[CaseResult]:
    """Every combination of graph, size K and seed that the settings name."""
    return [
        check_case(params, dim, seed, settings)
        for params in all_graphs()
        for dim in settings.dims
        for seed in settings.seeds
    ]


def summarize(results: list[CaseResult]) -> dict[str, Any]:
    """Largest absolute and relative error per reference, as numbers only."""
    summary: dict[str, Any] = {"cases": len(results)}
    for reference in (TORCH, FINITE_DIFFERENCES):
        errors = [result.errors[reference] for result in results]
        summary[reference] = {
            "max_abs_error": max(error.absolute for error in errors),
            "max_rel_error": max(error.relative for error in errors),
        }
    loss_errors = [result.loss_error for result in results]
    summary[TORCH]["max_loss_rel_error"] = max(loss_errors)
    return summary


def worst_failure(results: list[CaseResult], settings: GradcheckParams) -> str | None:
    """A message naming the worst case beyond its tolerance; None if all pass."""
    tolerances = {
        TORCH: settings.tolerance_torch,
        FINITE_DIFFERENCES: settings.tolerance_fd,
    }
    failures = []
    for result in results:
        if result.loss_error > settings.tolerance_torch:
            excess = result.loss_error / settings.tolerance_torch
            detail = f"loss vs torch, {result.name}: {result.loss_error:.3g}"
            failures.append((excess, detail))
        for reference, error in result.errors.items():
            excess = error.relative / tolerances[reference]
            if excess > 1:
                which = f"dL/d{error.matrix} vs {reference}, {result.name}"
                detail = f"{which}: {error.relative:.3g}"
                failures.append((excess, detail))
    if not failures:
        return None
    excess, detail = max(failures)
    return (
        f"gradcheck failed in {len(failures)} comparison(s); the worst "
        f"relative error is {excess:.3g} times its tolerance: {detail}"
    )


@dataclass(frozen=True)
class GradientTable:
    """Hand-written and torch gradients of one graph for one size and draw."""

    graph: GraphParams
    dim: int
    seed: int
    samples: int
    hand_written: Gradients
    autograd: Gradients

    def document(self) -> dict[str, Any]:
        """The table's numbers as nested lists, rows first."""
        return {
            "dim": self.dim,
            "seed": self.seed,
            "samples": self.samples,
            "hand_written": _as_lists(self.hand_written),
            "torch": _as_lists(self.autograd),
        }

    def markdown(self) -> str:
        """Markdown: each matrix row by row, hand-written beside torch."""
        spare = [""] * (self.dim - 1)
        header = ["gradient", "hand-written", *spare, "torch autograd", *spare]
        rows = []
        differing = 0
        for matrix, hand, reference in zip(
            Gradients._fields, self.hand_written, self.autograd, strict=True
        ):
            for row in range(self.dim):
                hand_cells = [_decimal(value) for value in hand[row]]
                torch_cells = [_decimal(value) for value in reference[row]]
                pairs = zip(hand_cells, torch_cells, strict=True)
                differing += sum(mine != theirs for mine, theirs in pairs)
                label = f"dL/d{matrix}" if row == 0 else ""
                rows.append(_markdown_row([label, *hand_cells, *torch_cells]))

        agreement = (
            "The two agree in every printed digit."
            if differing == 0
            else f"The two differ in {differing} printed entries."
        )
        caption = (
            f"Gradients of the batch loss, the sum of L over "
            f"N = {self.samples} standard-normal inputs, with gate "
            f"`{self.graph.combine}`, loss `{self.graph.loss}` and activation "
            f"`{self.graph.activation}`: each matrix row by row, rounded to "
            f"{TABLE_DECIMALS} decimals. {agreement}"
        )
        lines = [
            f"# Gradients for K = {self.dim}, seed {self.seed}",
            "",
            *textwrap.wrap(caption, width=88),
            "",
            _markdown_row(header),
            _markdown_row(["---", *["---:"] * (2 * self.dim)]),
            *rows,
        ]
        return "\n".join(lines) + "\n"


def gradient_table(params: GraphParams, settings: GradcheckParams) -> GradientTable:
    """The table of the configured graph, for table_dim and table_seed."""
    dim, seed = settings.table_dim, settings.table_seed
    weights, x = graph.random_problem(dim, settings.samples, seed)
    _, hand_written = graph.loss_and_gradients(params, weights, x)
    _, reference = torch_loss_and_gradients(params, weights, x)
    return GradientTable(
        graph=params,
        dim=dim,
        seed=seed,
        samples=settings.samples,
        hand_written=hand_written,
        autograd=reference,
    )


def _nudge(weights: Weights, index: int, entry: tuple[int, ...], delta: float) -> Weights:
    matrices = list(weights)
    matrices[index] = matrices[index].copy()
    matrices[index][entry] += delta
    return Weights(*matrices)


def _as_lists(gradients: Gradients) -> dict[str, list[list[float]]]:
    named = gradients._asdict().items()
    return {f"dL_d{name}": matrix.tolist() for name, matrix in named}


def _decimal(value: float) -> str:
    return f"{round(float(value), TABLE_DECIMALS) + 0.0:.{TABLE_DECIMALS}f}"


def _markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"

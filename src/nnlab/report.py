"""The study's report, `report/README.md`, from the pipeline's outputs.

The report follows the study. Part 1: the gradient table, the gradient
check and the descent losses with figure 4. Part 2: final accuracy and loss
of every training and of the dropout sweep, with figures 5 to 13. Every
number is read from a metrics file, none is typed in. Figures are linked
relative to the report's folder, so the page renders on a code-hosting site
as it does locally.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnlab import paths
from nnlab.figures import (
    ARCH_LABELS,
    STUDY_FIGURES,
    VARIANT_LABELS,
    FigureSettings,
    dropout_label,
)
from nnlab.params import ARCHS, VARIANTS

DECIMALS = 4  # digits after the point for accuracies and classifier losses

REFERENCE_LABELS = {
    "torch": "torch autograd",
    "finite_differences": "central finite differences",
}
ERROR_LABELS = {
    "max_rel_error": "largest relative error",
    "max_abs_error": "largest absolute error",
    "max_loss_rel_error": "largest relative error of L",
}
RESULT_COLUMNS = (
    "training accuracy",
    "training loss",
    "test accuracy",
    "test loss",
    "iterations",
    "parameters",
)


@dataclass(frozen=True)
class RunResult:
    """Final accuracy and loss of one training, as its metrics file holds them."""

    train_accuracy: float
    train_loss: float
    test_accuracy: float
    test_loss: float
    iterations: int
    parameters: int


@dataclass(frozen=True)
class StudyResults:
    """Everything the report shows, read from the pipeline's outputs."""

    training: dict[tuple[str, str], RunResult]  # (arch, variant) -> result
    sweep: dict[float, RunResult]  # softmax dropout rate -> result
    descent: dict[str, Any]  # as in metrics/descent.json
    gradcheck: dict[str, Any]  # as in metrics/gradcheck.json
    gradient_table: str  # markdown, as in report/gradient_table.md


def read_result(path: Path) -> RunResult:
    """One training's metrics file: final train and test accuracy and loss."""
    document = _read_json(path)
    try:
        return RunResult(
            train_accuracy=float(document["train"]["accuracy"]),
            train_loss=float(document["train"]["loss"]),
            test_accuracy=float(document["test"]["accuracy"]),
            test_loss=float(document["test"]["loss"]),
            iterations=int(document["iterations"]),
            parameters=int(document["parameters"]),
        )
    except (KeyError, TypeError) as error:
        problem = f"not a training's metrics ({error!r} missing)"
        raise ValueError(f"{path}: {problem}") from None


def load_training_results() -> dict[tuple[str, str], RunResult]:
    """The results of every model and variant."""
    results = {}
    for arch in ARCHS:
        for variant in VARIANTS:
            name = paths.run_name(arch, variant)
            results[arch, variant] = read_result(paths.train_metrics(name))
    return results


def load_results(dropout_rates: Sequence[float]) -> StudyResults:
    """Read every metrics file and table the report shows."""
    sweep = {
        rate: read_result(paths.train_metrics(paths.sweep_name(rate), "sweep"))
        for rate in dropout_rates
    }
    return StudyResults(
        training=load_training_results(),
        sweep=sweep,
        descent=_read_json(paths.DESCENT_METRICS),
        gradcheck=_read_json(paths.GRADCHECK_METRICS),
        gradient_table=paths.GRADIENT_TABLE.read_text(),
    )


def headline_table(training: Mapping[tuple[str, str], RunResult]) -> str:
    """Test accuracy: a row per model, a column per variant."""
    header = ["model", *(VARIANT_LABELS[variant] for variant in VARIANTS)]
    rows = [
        [
            ARCH_LABELS[arch],
            *(_fixed(training[arch, variant].test_accuracy) for variant in VARIANTS),
        ]
        for arch in ARCHS
    ]
    return markdown_table(header, rows)


def results_table(training: Mapping[tuple[str, str], RunResult]) -> str:
    """Final accuracy and loss, iterations and weights of every training."""
    rows = []
    for arch in ARCHS:
        for variant in VARIANTS:
            cells = _result_cells(training[arch, variant])
            rows.append([ARCH_LABELS[arch], VARIANT_LABELS[variant], *cells])
    header = ["model", "variant", *RESULT_COLUMNS]
    return markdown_table(header, rows, text_columns=2)


def sweep_table(sweep: Mapping[float, RunResult]) -> str:
    """The softmax model's final results for each dropout rate of the sweep."""
    rows = [[dropout_label(rate), *_result_cells(result)] for rate, result in sweep.items()]
    return markdown_table(["softmax regression", *RESULT_COLUMNS], rows)


def descent_table(document: Mapping[str, Any]) -> str:
    """Initial and final mean loss of each descent case, by K and rate."""
    cases = []
    for size_key, by_rate in document.items():
        for rate_key, summary in by_rate.items():
            dim = int(size_key.removeprefix("k"))
            rate = float(rate_key.removeprefix("lr_"))
            cases.append((dim, rate, summary))

    rows = [
        [
            str(dim),
            f"{rate:g}",
            f"{summary['initial_loss']:.4g}",
            f"{summary['final_loss']:.4g}",
            str(summary["iterations"]),
            "yes" if summary["diverged"] else "no",
        ]
        for dim, rate, summary in sorted(cases, key=lambda case: case[:2])
    ]
    header = [
        "K",
        "learning rate",
        "initial loss",
        "final loss",
        "iterations",
        "diverged",
    ]
    return markdown_table(header, rows)


def gradcheck_table(summary: Mapping[str, Any]) -> str:
    """Largest errors of the hand-written gradients, one row per reference."""
    references = {key: value for key, value in summary.items() if isinstance(value, dict)}
    measures = [
        key for key in ERROR_LABELS if any(key in errors for errors in references.values())
    ]
    rows = [
        [
            REFERENCE_LABELS.get(reference, reference),
            *(f"{errors[key]:.1e}" if key in errors else "" for key in measures),
        ]
        for reference, errors in references.items()
    ]
    header = ["compared with", *(ERROR_LABELS[key] for key in measures)]
    return markdown_table(header, rows)


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int = 1
) -> str:
    """A markdown table; `text_columns` left-aligned, the rest right-aligned."""
    alignment = [":---"] * text_columns + ["---:"] * (len(header) - text_columns)
    lines = [
        _row(header),
        _row(alignment),
        *(_row(row) for row in rows),
    ]
    return "\n".join(lines) + "\n"


def figure_link(name: str) -> str:
    """A figure's path from the report's folder: `../plots/figures/x.png`."""
    relative = os.path.relpath(paths.figure_file(name), paths.REPORT_README.parent)
    return Path(relative).as_posix()


def render_report(results: StudyResults, settings: FigureSettings) -> str:
    """The whole report as markdown; `settings` fill in the figure captions."""
    sections = [
        "# nnlab: results of the study",
        "Every number, table and figure on this page is regenerated by `dvc repro` from "
        "the files the pipeline writes; edits here are overwritten.",
        "## Part 1: backpropagation by hand",
        "### Hand-written gradients against torch autograd (table T2)",
        _demote_headings(results.gradient_table.strip(), levels=3),
        "### Gradient check",
        _gradcheck_sentence(results.gradcheck),
        gradcheck_table(results.gradcheck),
        "### Gradient descent",
        "Mean loss over the data set before the first iteration and after the last one.",
        descent_table(results.descent),
        _figure(4, settings),
        "## Part 2: MNIST classifiers",
        "### Final accuracy and loss",
        "Test accuracy after the last iteration:",
        headline_table(results.training),
        "All final results. Training values are measured on the whole training set in "
        "inference mode after the last iteration, unlike the per-iteration curves below, "
        "which show each iteration's batch in training mode.",
        results_table(results.training),
        "### Softmax regression",
        _figure(5, settings),
        _figure(6, settings),
        "### Softmax regression: dropout rate",
        sweep_table(results.sweep),
        _figure(7, settings),
        "### MLP",
        _figure(8, settings),
        _figure(9, settings),
        "### CNN",
        _figure(10, settings),
        _figure(11, settings),
        "### The three models compared",
        _figure(12, settings),
        _figure(13, settings),
    ]
    return "\n\n".join(section.strip("\n") for section in sections) + "\n"


def _result_cells(result: RunResult) -> list[str]:
    return [
        _fixed(result.train_accuracy),
        _fixed(result.train_loss),
        _fixed(result.test_accuracy),
        _fixed(result.test_loss),
        str(result.iterations),
        f"{result.parameters:,}",
    ]


def _figure(number: int, settings: FigureSettings) -> str:
    spec = next(spec for spec in STUDY_FIGURES if spec.number == number)
    image = f"![{spec.heading}]({figure_link(spec.name)})"
    return f"{image}\n\n*Figure {number}. {spec.caption(settings)}*"


def _gradcheck_sentence(summary: Mapping[str, Any]) -> str:
    cases = summary.get("cases")
    counted = f" over {cases} checked cases" if cases is not None else ""
    return f"Largest errors of the hand-written gradients{counted}:"


def _demote_headings(markdown: str, levels: int) -> str:
    lines = markdown.splitlines()
    prefix = "#" * levels
    demoted = [prefix + line if line.startswith("#") else line for line in lines]
    return "\n".join(demoted)


def _fixed(value: float) -> str:
    return f"{value:.{DECIMALS}f}"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _read_json(path: Path) -> dict[str, Any]:
    with path.open() as stream:
        return json.load(stream)

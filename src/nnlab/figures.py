"""The study's figures, drawn from the series files the pipeline writes.

Every figure reads alone: a numbered title, a title per panel, axis labels
that say what was measured and on which images, and a legend naming each
curve. Figures are drawn on the Agg canvas without pyplot, so nothing is
kept between them.

Per-iteration training values belong to that iteration's batch, in training
mode, and are noisy: the raw values are drawn faint, with their trailing
moving average over `SMOOTHING` iterations on top, named as such in the
legend. Test values are drawn only at the iterations where they were
measured, one marker each, joined by straight lines.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import matplotlib
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nnlab import paths
from nnlab.atomic import atomic_path
from nnlab.params import ARCHS, VARIANTS

SMOOTHING = 20  # iterations averaged by the moving average of the training series
ZOOM_SHARE = 0.5  # zoomed panels show this last share of the training iterations
DPI = 110  # pixels per inch of the written PNG files
MNIST_TEST_IMAGES = 10_000

SERIES_COLUMNS = ("step", "loss", "accuracy")
DESCENT_ITERATION = "iteration"
DESCENT_RATE_PREFIX = "lr_"

ARCH_LABELS = {"softmax": "softmax regression", "mlp": "MLP", "cnn": "CNN"}
VARIANT_LABELS = {"plain": "plain", "batchnorm": "batch norm", "dropout": "dropout"}

ITERATION_AXIS = "training iteration"
TRAIN_LOSS_AXIS = "training loss\n(cross-entropy of the iteration's batch)"
TRAIN_ACCURACY_AXIS = "training accuracy\n(share of the iteration's batch correct)"
DESCENT_ITERATION_AXIS = "iteration (one pass over the data set; 0 = start)"
DESCENT_LOSS_AXIS = "mean loss L over the data set (log scale)"

Color: TypeAlias = str | tuple[float, ...]

_RAW = {"alpha": 0.25, "linewidth": 0.7}
_AVERAGE = {"linewidth": 1.6}
_MEASURED = {"marker": "o", "markersize": 3.5, "linewidth": 1.2}


@dataclass(frozen=True)
class StudyFigure:
    """One figure of the study: number, file name, title and caption."""

    number: int
    name: str
    title: str
    caption: str

    @property
    def heading(self) -> str:
        return f"Figure {self.number}. {self.title}"


STUDY_FIGURES = (
    StudyFigure(
        4,
        "fig04_descent",
        "Gradient descent on the six-equation graph",
        "Mean loss per iteration of plain gradient descent, one panel per size K, "
        "one curve per learning rate.",
    ),
    StudyFigure(
        5,
        "fig05_softmax_train",
        "Softmax regression: training loss and accuracy",
        "Softmax regression: training loss (a) and training accuracy (b) per iteration, "
        "plain, batch norm and dropout.",
    ),
    StudyFigure(
        6,
        "fig06_softmax_test",
        "Softmax regression: test accuracy",
        "Softmax regression: test accuracy where it was measured, three variants.",
    ),
    StudyFigure(
        7,
        "fig07_softmax_dropout",
        "Softmax regression: accuracy for each dropout rate",
        "Softmax regression without dropout and with each rate of the sweep: training "
        "accuracy (a) and test accuracy (b).",
    ),
    StudyFigure(
        8,
        "fig08_mlp_train",
        "MLP: training loss and accuracy",
        "MLP: training loss (a) and training accuracy (b) per iteration, three variants.",
    ),
    StudyFigure(
        9,
        "fig09_mlp_test",
        "MLP: test accuracy",
        "MLP: test accuracy where it was measured, three variants.",
    ),
    StudyFigure(
        10,
        "fig10_cnn_train",
        "CNN: training loss and accuracy",
        "CNN: training loss (a) and training accuracy (b) per iteration, three variants.",
    ),
    StudyFigure(
        11,
        "fig11_cnn_test",
        "CNN: test accuracy",
        "CNN: test accuracy where it was measured, three variants.",
    ),
    StudyFigure(
        12,
        "fig12_models_train",
        "The three models compared: training accuracy and loss",
        "Plain softmax regression, MLP and CNN: training accuracy and loss over the whole "
        "run and zoomed on its last part.",
    ),
    StudyFigure(
        13,
        "fig13_models_test",
        "The three models compared: test accuracy",
        "Plain softmax regression, MLP and CNN: test accuracy where it was measured.",
    ),
)


@dataclass(frozen=True)
class RunSeries:
    """The recorded series of one training, with the name its curves carry."""

    label: str
    train: pd.DataFrame  # step, loss, accuracy: one row per training iteration
    test: pd.DataFrame  # step, loss, accuracy: one row per test evaluation


@dataclass(frozen=True)
class StudySeries:
    """Every series the figures draw."""

    descent: dict[int, pd.DataFrame]  # size K -> losses, a column per rate
    training: dict[tuple[str, str], RunSeries]  # (arch, variant) -> its series
    sweep: dict[float, RunSeries]  # softmax dropout rate -> its series


def read_series(path: Path) -> pd.DataFrame:
    """A per-step series file, checked to hold step, loss and accuracy."""
    table = pd.read_csv(path)
    missing = [column for column in SERIES_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    return table


def read_descent(dim: int) -> pd.DataFrame:
    """Descent losses for size K = dim: iteration, then a column per rate."""
    path = paths.descent_series(dim)
    table = pd.read_csv(path)
    if DESCENT_ITERATION not in table.columns or not _rate_columns(table):
        raise ValueError(
            f"{path}: expected an `{DESCENT_ITERATION}` column and one "
            f"`{DESCENT_RATE_PREFIX}<rate>` column per learning rate"
        )
    return table


def load_run(name: str, label: str, group: str = "train") -> RunSeries:
    """The training and test series of one run, with its curves' name."""
    return RunSeries(
        label,
        read_series(paths.train_series(name, group)),
        read_series(paths.test_series(name, group)),
    )


def load_study(descent_dims: Sequence[int], dropout_rates: Sequence[float]) -> StudySeries:
    """Read every series the figures need, from the paths the stages write."""
    training = {}
    for arch in ARCHS:
        for variant in VARIANTS:
            name = paths.run_name(arch, variant)
            training[arch, variant] = load_run(name, VARIANT_LABELS[variant])
    sweep = {
        rate: load_run(paths.sweep_name(rate), dropout_label(rate), "sweep")
        for rate in dropout_rates
    }
    descent = {dim: read_descent(dim) for dim in descent_dims}
    return StudySeries(descent, training, sweep)


def dropout_label(rate: float) -> str:
    """How a dropout rate of the sweep is named in legends and tables."""
    return f"dropout {rate:g}" if rate else "no dropout"


def evaluation_axis(test_images: int) -> str:
    """The y-axis label of test accuracy, with the images it counts."""
    return f"test accuracy\n({test_images:,} test images, inference mode)"


def evaluated_images(test_limit: int) -> int:
    """Images per test evaluation for a `data.test_limit` (0 = all)."""
    return min(test_limit, MNIST_TEST_IMAGES) if test_limit else MNIST_TEST_IMAGES


def moving_average(values: pd.Series, window: int = SMOOTHING) -> pd.Series:
    """Trailing mean of the last `window` values (fewer at the start)."""
    return values.rolling(window, min_periods=1).mean()


def descent_figure(title: str, tables: Mapping[int, pd.DataFrame]) -> Figure:
    """Loss per iteration, one panel per size K and one curve per learning rate."""
    figure, axes = _new_figure(title, panels=len(tables))
    for letter, ax, (dim, table) in zip(
        string.ascii_lowercase, axes, tables.items(), strict=False
    ):
        columns = _rate_columns(table)
        for color, column in zip(_colors(len(columns)), columns, strict=True):
            rate = column.removeprefix(DESCENT_RATE_PREFIX)
            ax.plot(
                table[DESCENT_ITERATION],
                table[column],
                color=color,
                label=f"learning rate {rate}",
            )
        ax.set_yscale("log")
        ax.set_title(f"({letter}) K = {dim}")
        ax.set_xlabel(DESCENT_ITERATION_AXIS)
        ax.set_ylabel(DESCENT_LOSS_AXIS)
        ax.legend()
    return figure


def training_figure(title: str, runs: Sequence[RunSeries], window: int = SMOOTHING) -> Figure:
    """Training loss (a) and accuracy (b) per iteration, a curve per run."""
    figure, (loss_ax, accuracy_ax) = _new_figure(title, panels=2)
    _plot_training(loss_ax, runs, "loss", window)
    loss_ax.set_title("(a) training loss")
    loss_ax.set_ylabel(TRAIN_LOSS_AXIS)
    _plot_training(accuracy_ax, runs, "accuracy", window)
    accuracy_ax.set_title("(b) training accuracy")
    accuracy_ax.set_ylabel(TRAIN_ACCURACY_AXIS)
    return figure


def evaluation_figure(title: str, runs: Sequence[RunSeries], test_images: int) -> Figure:
    """Test accuracy at each iteration where it was measured, a curve per run."""
    figure, (ax,) = _new_figure(title, panels=1)
    _plot_evaluations(ax, runs, test_images)
    return figure


def dropout_figure(
    title: str, runs: Sequence[RunSeries], test_images: int, window: int = SMOOTHING
) -> Figure:
    """Training accuracy (a) and test accuracy (b), a curve per dropout rate."""
    figure, (train_ax, test_ax) = _new_figure(title, panels=2)
    colors = _ordered_colors(len(runs))
    _plot_training(train_ax, runs, "accuracy", window, colors)
    train_ax.set_title("(a) training accuracy")
    train_ax.set_ylabel(TRAIN_ACCURACY_AXIS)
    _plot_evaluations(test_ax, runs, test_images, colors)
    test_ax.set_title("(b) test accuracy")
    return figure


def comparison_figure(
    title: str,
    runs: Sequence[RunSeries],
    window: int = SMOOTHING,
    zoom_share: float = ZOOM_SHARE,
) -> Figure:
    """Training accuracy and loss of several models, over the whole run and zoomed.

    The zoomed panels show the last `zoom_share` of the iterations, with the y-range
    fitted to the values drawn there. One legend below the panels serves all four.
    """
    figure, axes = _new_figure(title, panels=4, columns=2)
    percent = f"{zoom_share:.0%}"
    panels = (
        ("accuracy", TRAIN_ACCURACY_AXIS, "(a) training accuracy", None),
        ("accuracy", TRAIN_ACCURACY_AXIS, "(b) training accuracy", zoom_share),
        ("loss", TRAIN_LOSS_AXIS, "(c) training loss", None),
        ("loss", TRAIN_LOSS_AXIS, "(d) training loss", zoom_share),
    )
    for ax, (column, axis_label, panel_title, zoom) in zip(axes, panels, strict=True):
        _plot_training(ax, runs, column, window, legend=False)
        ax.set_ylabel(axis_label)
        if zoom is None:
            ax.set_title(panel_title)
        else:
            zoomed = f"zoomed on the last {percent} of iterations"
            ax.set_title(f"{panel_title}, {zoomed}")
            _zoom_on_end(ax, runs, column, zoom)

    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=len(labels),
        title=_smoothing_note(window, separator=" "),
    )
    return figure


def draw_study(
    series: StudySeries, test_images: int, window: int = SMOOTHING
) -> dict[str, Figure]:
    """Every figure of the study by file name, in `STUDY_FIGURES` order."""
    titles = {spec.number: spec.heading for spec in STUDY_FIGURES}

    def variants_of(arch: str) -> list[RunSeries]:
        return [series.training[arch, variant] for variant in VARIANTS]

    plain_models = []
    for arch in ARCHS:
        plain = series.training[arch, "plain"]
        plain_models.append(RunSeries(ARCH_LABELS[arch], plain.train, plain.test))
    drawn = [
        descent_figure(titles[4], series.descent),
        training_figure(titles[5], variants_of("softmax"), window),
        evaluation_figure(titles[6], variants_of("softmax"), test_images),
        dropout_figure(titles[7], list(series.sweep.values()), test_images, window),
        training_figure(titles[8], variants_of("mlp"), window),
        evaluation_figure(titles[9], variants_of("mlp"), test_images),
        training_figure(titles[10], variants_of("cnn"), window),
        evaluation_figure(titles[11], variants_of("cnn"), test_images),
        comparison_figure(titles[12], plain_models, window),
        evaluation_figure(titles[13], plain_models, test_images),
    ]
    pairs = zip(STUDY_FIGURES, drawn, strict=True)
    return {spec.name: figure for spec, figure in pairs}


def save_figure(figure: Figure, target: Path) -> None:
    """Write a PNG atomically; equal figures give equal bytes (no version stamp)."""
    with atomic_path(target) as temporary:
        figure.savefig(temporary, dpi=DPI, metadata={"Software": None})


def write_figures(figures: Mapping[str, Figure]) -> list[Path]:
    """Save each figure under its name in the figures folder; return paths."""
    written = []
    for name, figure in figures.items():
        target = paths.figure_file(name)
        save_figure(figure, target)
        written.append(target)
    return written


def _new_figure(title: str, panels: int, columns: int | None = None) -> tuple[Figure, list[Axes]]:
    columns = columns or panels
    rows = -(-panels // columns)
    width = max(6.2 * columns, 8.0)
    figure = Figure(figsize=(width, 4.4 * rows + 0.5), layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title, fontsize="x-large", fontweight="bold")
    axes = figure.subplots(rows, columns, squeeze=False).ravel().tolist()
    for ax in axes:
        ax.grid(alpha=0.3)
    return figure, axes[:panels]


def _plot_training(
    ax: Axes,
    runs: Sequence[RunSeries],
    column: str,
    window: int,
    colors: Sequence[Color] | None = None,
    legend: bool = True,
) -> None:
    """Faint raw per-iteration values and their labelled moving average."""
    for color, run in zip(colors or _colors(len(runs)), runs, strict=True):
        steps = run.train["step"]
        values = run.train[column]
        average = moving_average(values, window)
        raw_label = f"_{run.label}, each iteration"
        ax.plot(steps, values, color=color, label=raw_label, **_RAW)
        ax.plot(steps, average, color=color, label=run.label, **_AVERAGE)
    ax.set_xlabel(ITERATION_AXIS)
    if legend:
        ax.legend(title=_smoothing_note(window))


def _smoothing_note(window: int, separator: str = "\n") -> str:
    average = f"moving average of {window} iterations"
    return f"{average}{separator}(faint: each iteration)"


def _plot_evaluations(
    ax: Axes,
    runs: Sequence[RunSeries],
    test_images: int,
    colors: Sequence[Color] | None = None,
) -> None:
    """Test accuracy at the measured iterations only, a marker at each."""
    for color, run in zip(colors or _colors(len(runs)), runs, strict=True):
        steps, accuracy = run.test["step"], run.test["accuracy"]
        ax.plot(steps, accuracy, color=color, label=run.label, **_MEASURED)
    ax.set_xlabel(ITERATION_AXIS)
    ax.set_ylabel(evaluation_axis(test_images))
    ax.legend(title="one marker per test evaluation")


def _zoom_on_end(ax: Axes, runs: Sequence[RunSeries], column: str, share: float) -> None:
    """Limit the axes to the last `share` of iterations and their values."""
    first = min(run.train["step"].min() for run in runs)
    last = max(run.train["step"].max() for run in runs)
    start = last - share * (last - first)
    shown = pd.concat([run.train.loc[run.train["step"] >= start, column] for run in runs])
    low, high = shown.min(), shown.max()
    margin = 0.05 * (high - low) or 0.01
    ax.set_xlim(start, last)
    ax.set_ylim(low - margin, high + margin)


def _rate_columns(table: pd.DataFrame) -> list[str]:
    prefix = DESCENT_RATE_PREFIX
    return [column for column in table.columns if column.startswith(prefix)]


def _colors(count: int) -> list[Color]:
    """The default color cycle, repeated as needed."""
    return [f"C{index % 10}" for index in range(count)]


def _ordered_colors(count: int) -> list[Color]:
    """Colors along a sequential map, so that larger rates read as darker."""
    colormap = matplotlib.colormaps["viridis_r"]
    step = 0.75 / max(count - 1, 1)
    return [colormap(0.15 + step * index) for index in range(count)]

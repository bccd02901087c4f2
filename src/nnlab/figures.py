"""The study's figures, drawn from the series files the pipeline writes.

Every figure reads alone: a numbered title, a title per panel, axis labels
that say what was measured and on which images, and a legend naming each
curve. Each curve of a figure has its own color, line style and marker, so
curves that overlap stay visible. Figures are drawn on the Agg canvas without
pyplot, so nothing is kept between them.

Per-iteration training values belong to that iteration's batch, in training
mode (dropout active, batch norm on the batch's own statistics), and are
noisy: the raw values are drawn faint, with their trailing moving average over
`SMOOTHING` iterations on top, named as such in the legend. Test values, in
inference mode, are drawn only at the iterations where they were measured,
one marker each, joined by straight lines.
"""

from __future__ import annotations

import string
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nnlab import paths
from nnlab.atomic import atomic_path
from nnlab.params import ARCHS, VARIANTS, Params

SMOOTHING = 20  # iterations averaged by the moving average of the training series
ZOOM_SHARE = 0.5  # zoomed panels show this last share of the training iterations
DPI = 110  # pixels per inch of the written PNG files
MNIST_TEST_IMAGES = 10_000
MARKERS_PER_CURVE = 10  # markers on a curve of many points, spread along it
NOTE_WIDTH = 52  # characters per line of a note drawn inside a panel
MEASURED_MARKER_SIZES = (7.5, 6.0, 5.0, 4.5)  # test markers, curve by curve: later ones nest

SERIES_COLUMNS = ("step", "loss", "accuracy")
DESCENT_ITERATION = "iteration"
DESCENT_RATE_PREFIX = "lr_"

ARCH_LABELS = {"softmax": "softmax regression", "mlp": "MLP", "cnn": "CNN"}
VARIANT_LABELS = {"plain": "plain", "batchnorm": "batch norm", "dropout": "dropout"}
LOSS_FORMULAS = {"mean_square": "mean(w²)", "sum_square": "sum(w²)"}

TRAINING_MODE = "training mode: dropout active"
DROPOUT_RATE_TITLE = "dropout rate (share of units dropped)"
EVALUATION_TITLE = "one marker per test evaluation"


@dataclass(frozen=True)
class CurveStyle:
    """How one curve is told apart from the others of its figure."""

    color: str
    linestyle: str
    marker: str


# Colors that stay distinct to color-blind readers, each with its own dashes and marker.
CURVE_STYLES = (
    CurveStyle("#0072B2", "solid", "o"),  # blue
    CurveStyle("#D55E00", "dashed", "s"),  # vermilion
    CurveStyle("#009E73", "dotted", "^"),  # bluish green
    CurveStyle("#CC79A7", "dashdot", "D"),  # reddish purple
    CurveStyle("#E69F00", "solid", "v"),  # orange
    CurveStyle("#56B4E9", "dashed", "P"),  # sky blue
)

_RAW = {"alpha": 0.25, "linewidth": 0.7}
_AVERAGE = {"linewidth": 1.6, "markersize": 5.5}
_MEASURED = {"linewidth": 1.3, "markerfacecolor": "none"}


@dataclass(frozen=True)
class FigureSettings:
    """The settings of the study that the figures and their captions state."""

    test_images: int  # images per test evaluation
    batch_size: int  # images per training iteration
    dropout_rate: float  # share of units the dropout variant drops while training
    batchnorm_momentum: float  # momentum of batch norm's moving averages
    descent_samples: int  # inputs N of the gradient-descent data set
    descent_loss: str  # the six-equation graph's loss: mean_square or sum_square

    @classmethod
    def from_params(cls, params: Params) -> FigureSettings:
        """The settings as params.yaml holds them.

        Reads data.test_limit, train.batch_size, model.dropout,
        model.batchnorm.momentum, descent.samples and graph.loss.
        """
        return cls(
            test_images=evaluated_images(params.data.test_limit),
            batch_size=params.train.batch_size,
            dropout_rate=params.model.dropout,
            batchnorm_momentum=params.model.batchnorm.momentum,
            descent_samples=params.descent.samples,
            descent_loss=params.graph.loss,
        )

    @property
    def momentum_window(self) -> int:
        """Iterations the moving averages mostly span: 1 / (1 - momentum)."""
        return round(1 / (1 - self.batchnorm_momentum))

    @property
    def loss_formula(self) -> str:
        """L(x) of one input x, in terms of the graph's output w."""
        return LOSS_FORMULAS[self.descent_loss]

    def caption_fields(self) -> dict[str, str]:
        """The values a caption template may name, as they are printed."""
        return {
            "test_images": f"{self.test_images:,}",
            "batch_size": f"{self.batch_size:,}",
            "dropout": f"{self.dropout_rate:g}",
            "momentum": f"{self.batchnorm_momentum:g}",
            "momentum_window": f"{self.momentum_window:,}",
            "samples": f"{self.descent_samples:,}",
            "loss": self.loss_formula,
        }


@dataclass(frozen=True)
class StudyFigure:
    """One figure of the study: number, file name, title and caption.

    The caption is a template: names in braces are the `FigureSettings`
    values of `caption_fields`, filled in by `caption`.
    """

    number: int
    name: str
    title: str
    caption_template: str

    @property
    def heading(self) -> str:
        return f"Figure {self.number}. {self.title}"

    def caption(self, settings: FigureSettings) -> str:
        return self.caption_template.format(**settings.caption_fields())


_TRAINING_CAPTION = (
    "{model}: training loss (a) and training accuracy (b) per training iteration "
    "(one batch of {{batch_size}} images); plain, batch norm and dropout {{dropout}}. "
    "Each value is measured on the iteration's batch in training mode, with dropout "
    "active and batch norm on the batch's own statistics, so the dropout variant's "
    "curves are not directly comparable with the others. Faint lines: single "
    "iterations; bold lines: their moving average."
)
_TEST_CAPTION = (
    "{model}: test accuracy on the {{test_images}} test images at each iteration where "
    "it was measured; plain, batch norm and dropout {{dropout}}. Test accuracy is "
    "measured in inference mode: no units dropped, batch norm on its moving averages."
)


STUDY_FIGURES = (
    StudyFigure(
        4,
        "fig04_descent",
        "Gradient descent on the six-equation graph",
        "Plain gradient descent on the six-equation graph: the loss L after each pass "
        "over the data set of N = {samples} random inputs (pass 0 = the random start). "
        "L is the mean over the data set of L(x) = {loss}, the loss of the graph's "
        "output w for one input x. One panel per size K, each with its own y range and "
        "its initial loss in its title; one curve per learning rate.",
    ),
    StudyFigure(
        5,
        "fig05_softmax_train",
        "Softmax regression: training loss and accuracy",
        _TRAINING_CAPTION.format(model="Softmax regression"),
    ),
    StudyFigure(
        6,
        "fig06_softmax_test",
        "Softmax regression: test accuracy",
        _TEST_CAPTION.format(model="Softmax regression"),
    ),
    StudyFigure(
        7,
        "fig07_softmax_dropout",
        "Softmax regression: accuracy for each dropout rate",
        "Softmax regression without dropout and with each rate of the sweep, the rate "
        "being the share of units dropped while training: training accuracy per "
        "iteration (a), measured on the iteration's batch of {batch_size} images in "
        "training mode with dropout active, and test accuracy on the {test_images} "
        "test images (b), measured in inference mode with no units dropped.",
    ),
    StudyFigure(
        8,
        "fig08_mlp_train",
        "MLP: training loss and accuracy",
        _TRAINING_CAPTION.format(model="MLP"),
    ),
    StudyFigure(
        9,
        "fig09_mlp_test",
        "MLP: test accuracy",
        _TEST_CAPTION.format(model="MLP"),
    ),
    StudyFigure(
        10,
        "fig10_cnn_train",
        "CNN: training loss and accuracy",
        _TRAINING_CAPTION.format(model="CNN"),
    ),
    StudyFigure(
        11,
        "fig11_cnn_test",
        "CNN: test accuracy",
        _TEST_CAPTION.format(model="CNN")
        + " Early in training the batch-norm CNN's test accuracy can fall to chance "
        "(0.1) while its training accuracy (Figure 10) is high, and recover later. "
        "This is how batch norm behaves, not a fault and not a sign that batch norm "
        "hurts: in inference mode it normalizes with moving averages of the batch "
        "statistics (momentum {momentum}, roughly the last {momentum_window} "
        "iterations), which lag behind the fast-changing weights early in training; "
        "in training mode it uses each batch's own statistics.",
    ),
    StudyFigure(
        12,
        "fig12_models_train",
        "Plain variants of the three models: training accuracy and loss",
        "Softmax regression, MLP and CNN, plain variants (no batch norm, no dropout): "
        "training accuracy and loss per training iteration (one batch of {batch_size} "
        "images) over the whole run (a, c) and zoomed on its last part (b, d).",
    ),
    StudyFigure(
        13,
        "fig13_models_test",
        "Plain variants of the three models: test accuracy",
        "Softmax regression, MLP and CNN, plain variants (no batch norm, no dropout): "
        "test accuracy on the {test_images} test images at each iteration where it "
        "was measured.",
    ),
)


@dataclass(frozen=True)
class CurveNote:
    """A note drawn inside a panel, with an arrow to the lowest point of one curve."""

    label: str  # the legend label of the curve it points at
    text: str


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


def load_study(
    descent_dims: Sequence[int], dropout_rates: Sequence[float], dropout_rate: float
) -> StudySeries:
    """Read every series the figures need, from the paths the stages write.

    `dropout_rate` is the dropout variant's rate, named in its curves' label.
    """
    training = {}
    for arch in ARCHS:
        for variant in VARIANTS:
            name = paths.run_name(arch, variant)
            label = variant_label(variant, dropout_rate)
            training[arch, variant] = load_run(name, label)
    sweep = {
        rate: load_run(paths.sweep_name(rate), dropout_label(rate), "sweep")
        for rate in dropout_rates
    }
    descent = {dim: read_descent(dim) for dim in descent_dims}
    return StudySeries(descent, training, sweep)


def variant_label(variant: str, dropout_rate: float) -> str:
    """How a variant is named in legends: the dropout variant with its rate."""
    if variant == "dropout":
        return f"dropout {dropout_rate:g}"
    return VARIANT_LABELS[variant]


def dropout_label(rate: float) -> str:
    """How a dropout rate of the sweep is named in legends and tables."""
    return f"dropout {rate:g}" if rate else "no dropout"


def iteration_axis(batch_size: int) -> str:
    """The x-axis label of training figures, with the images per iteration."""
    return f"training iteration (one batch of {batch_size:,} images)"


def training_axis(column: str, dropout_active: bool) -> str:
    """The y-axis label of per-iteration training loss or accuracy."""
    measured = {
        "loss": "training loss\n(cross-entropy of the iteration's batch",
        "accuracy": "training accuracy\n(share of the iteration's batch correct",
    }[column]
    if dropout_active:
        return f"{measured};\n{TRAINING_MODE})"
    return f"{measured})"


def evaluation_axis(test_images: int) -> str:
    """The y-axis label of test accuracy, with the images it counts."""
    return f"test accuracy\n({test_images:,} test images, inference mode)"


def descent_axes(samples: int, loss_formula: str) -> tuple[str, str]:
    """The x- and y-axis labels of the descent figure."""
    passes = f"pass over the N = {samples:,} inputs (0 = start)"
    loss = f"loss L: mean over the N inputs\nof L(x) = {loss_formula} (log scale)"
    return passes, loss


def evaluated_images(test_limit: int) -> int:
    """Images per test evaluation for a `data.test_limit` (0 = all)."""
    return min(test_limit, MNIST_TEST_IMAGES) if test_limit else MNIST_TEST_IMAGES


def batchnorm_note(momentum: float, window: int, training_figure_number: int) -> str:
    """Why batch norm's test accuracy can dip early in training, for a panel."""
    text = (
        "Batch norm's early dip is expected, not a fault: "
        "in inference mode it normalizes with moving averages "
        f"of the batch statistics (momentum {momentum:g}, "
        f"roughly the last {window:,} iterations). "
        "Early in training these lag behind the fast-changing weights, "
        "so test accuracy can fall to chance while training accuracy "
        f"(Figure {training_figure_number}, on each batch's own statistics) is high."
    )
    return textwrap.fill(text, NOTE_WIDTH)


def moving_average(values: pd.Series, window: int = SMOOTHING) -> pd.Series:
    """Trailing mean of the last `window` values (fewer at the start)."""
    return values.rolling(window, min_periods=1).mean()


def curve_style(index: int) -> CurveStyle:
    """The style of a figure's `index`-th curve (styles repeat after six)."""
    return CURVE_STYLES[index % len(CURVE_STYLES)]


def descent_figure(
    title: str, tables: Mapping[int, pd.DataFrame], samples: int, loss_formula: str
) -> Figure:
    """Loss per pass, one panel per size K and one curve per learning rate."""
    figure, axes = _new_figure(title, panels=len(tables))
    x_label, y_label = descent_axes(samples, loss_formula)
    for letter, ax, (dim, table) in zip(
        string.ascii_lowercase, axes, tables.items(), strict=False
    ):
        columns = _rate_columns(table)
        for index, column in enumerate(columns):
            rate = column.removeprefix(DESCENT_RATE_PREFIX)
            ax.plot(
                table[DESCENT_ITERATION],
                table[column],
                label=f"learning rate {rate}",
                **_sparse_style(index, len(columns), len(table)),
                **_AVERAGE,
            )
        initial_loss = table[columns[0]].iloc[0]
        ax.set_yscale("log")
        ax.set_title(f"({letter}) K = {dim}, initial loss {initial_loss:.4g}")
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.legend()
    return figure


def training_figure(
    title: str, runs: Sequence[RunSeries], batch_size: int, window: int = SMOOTHING
) -> Figure:
    """Training loss (a) and accuracy (b) per iteration, a curve per run."""
    figure, (loss_ax, accuracy_ax) = _new_figure(title, panels=2)
    _plot_training(loss_ax, runs, "loss", batch_size, window)
    loss_ax.set_title("(a) training loss")
    loss_ax.set_ylabel(training_axis("loss", dropout_active=True))
    _plot_training(accuracy_ax, runs, "accuracy", batch_size, window)
    accuracy_ax.set_title("(b) training accuracy")
    accuracy_ax.set_ylabel(training_axis("accuracy", dropout_active=True))
    return figure


def evaluation_figure(
    title: str,
    runs: Sequence[RunSeries],
    test_images: int,
    batch_size: int,
    note: CurveNote | None = None,
) -> Figure:
    """Test accuracy at each iteration where it was measured, a curve per run.

    A `note` is written in the lower right of the panel, with an arrow to the
    lowest point of the curve it names; the legend then moves to the right.
    """
    figure, (ax,) = _new_figure(title, panels=1)
    location = "center right" if note else "best"
    _plot_evaluations(ax, runs, test_images, batch_size, legend_location=location)
    if note:
        _draw_note(ax, runs, note)
    return figure


def dropout_figure(
    title: str,
    runs: Sequence[RunSeries],
    test_images: int,
    batch_size: int,
    window: int = SMOOTHING,
) -> Figure:
    """Training accuracy (a) and test accuracy (b), a curve per dropout rate."""
    figure, (train_ax, test_ax) = _new_figure(title, panels=2)
    _plot_training(
        train_ax, runs, "accuracy", batch_size, window, legend_heading=DROPOUT_RATE_TITLE
    )
    train_ax.set_title("(a) training accuracy")
    train_ax.set_ylabel(training_axis("accuracy", dropout_active=True))
    _plot_evaluations(test_ax, runs, test_images, batch_size, legend_heading=DROPOUT_RATE_TITLE)
    test_ax.set_title("(b) test accuracy")
    return figure


def comparison_figure(
    title: str,
    runs: Sequence[RunSeries],
    batch_size: int,
    window: int = SMOOTHING,
    zoom_share: float = ZOOM_SHARE,
) -> Figure:
    """Training accuracy and loss of several models, over the whole run and zoomed.

    The runs have no dropout. The zoomed panels show the last `zoom_share` of the
    iterations, with the y-range fitted to the values drawn there. One legend below
    the panels serves all four.
    """
    figure, axes = _new_figure(title, panels=4, columns=2)
    percent = f"{zoom_share:.0%}"
    panels = (
        ("accuracy", "(a) training accuracy", None),
        ("accuracy", "(b) training accuracy", zoom_share),
        ("loss", "(c) training loss", None),
        ("loss", "(d) training loss", zoom_share),
    )
    for ax, (column, panel_title, zoom) in zip(axes, panels, strict=True):
        _plot_training(ax, runs, column, batch_size, window, legend=False)
        ax.set_ylabel(training_axis(column, dropout_active=False))
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
    series: StudySeries, settings: FigureSettings, window: int = SMOOTHING
) -> dict[str, Figure]:
    """Every figure of the study by file name, in `STUDY_FIGURES` order."""
    titles = {spec.number: spec.heading for spec in STUDY_FIGURES}
    batch = settings.batch_size
    images = settings.test_images

    def variants_of(arch: str) -> list[RunSeries]:
        return [series.training[arch, variant] for variant in VARIANTS]

    plain_models = []
    for arch in ARCHS:
        plain = series.training[arch, "plain"]
        plain_models.append(RunSeries(ARCH_LABELS[arch], plain.train, plain.test))

    batchnorm = series.training["cnn", "batchnorm"].label
    cnn_note = CurveNote(
        batchnorm,
        batchnorm_note(settings.batchnorm_momentum, settings.momentum_window, 10),
    )
    sweep = list(series.sweep.values())
    drawn = [
        descent_figure(titles[4], series.descent, settings.descent_samples, settings.loss_formula),
        training_figure(titles[5], variants_of("softmax"), batch, window),
        evaluation_figure(titles[6], variants_of("softmax"), images, batch),
        dropout_figure(titles[7], sweep, images, batch, window),
        training_figure(titles[8], variants_of("mlp"), batch, window),
        evaluation_figure(titles[9], variants_of("mlp"), images, batch),
        training_figure(titles[10], variants_of("cnn"), batch, window),
        evaluation_figure(titles[11], variants_of("cnn"), images, batch, cnn_note),
        comparison_figure(titles[12], plain_models, batch, window),
        evaluation_figure(titles[13], plain_models, images, batch),
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


def _sparse_style(index: int, count: int, points: int) -> dict:
    """Color, dashes and sparse markers for curve `index` of `count`.

    About `MARKERS_PER_CURVE` markers per curve, shifted along the x axis from
    one curve to the next so that the markers of different curves do not coincide.
    """
    style = curve_style(index)
    every = max(points // MARKERS_PER_CURVE, 1)
    first = index * every // count
    return {
        "color": style.color,
        "linestyle": style.linestyle,
        "marker": style.marker,
        "markevery": (first, every),
    }


def _plot_training(
    ax: Axes,
    runs: Sequence[RunSeries],
    column: str,
    batch_size: int,
    window: int,
    legend: bool = True,
    legend_heading: str | None = None,
) -> None:
    """Faint raw per-iteration values and their labelled moving average."""
    for index, run in enumerate(runs):
        steps = run.train["step"]
        values = run.train[column]
        average = moving_average(values, window)
        style = _sparse_style(index, len(runs), len(steps))
        raw_label = f"_{run.label}, each iteration"
        ax.plot(steps, values, color=style["color"], label=raw_label, **_RAW)
        ax.plot(steps, average, label=run.label, **style, **_AVERAGE)
    ax.set_xlabel(iteration_axis(batch_size))
    if legend:
        note = _smoothing_note(window)
        title = f"{legend_heading}\n{note}" if legend_heading else note
        ax.legend(title=title)


def _smoothing_note(window: int, separator: str = "\n") -> str:
    average = f"moving average of {window} iterations"
    return f"{average}{separator}(faint: each iteration)"


def _plot_evaluations(
    ax: Axes,
    runs: Sequence[RunSeries],
    test_images: int,
    batch_size: int,
    legend_heading: str | None = None,
    legend_location: str = "best",
) -> None:
    """Test accuracy at the measured iterations only, an open marker at each.

    Runs measured at the same iterations put their markers on the same spots;
    each later curve's markers are smaller, so they sit inside the earlier ones.
    """
    for index, run in enumerate(runs):
        style = curve_style(index)
        size = MEASURED_MARKER_SIZES[min(index, len(MEASURED_MARKER_SIZES) - 1)]
        ax.plot(
            run.test["step"],
            run.test["accuracy"],
            color=style.color,
            linestyle=style.linestyle,
            marker=style.marker,
            markersize=size,
            label=run.label,
            **_MEASURED,
        )
    ax.set_xlabel(iteration_axis(batch_size))
    ax.set_ylabel(evaluation_axis(test_images))
    title = f"{legend_heading}\n{EVALUATION_TITLE}" if legend_heading else EVALUATION_TITLE
    ax.legend(title=title, loc=legend_location)


def _draw_note(ax: Axes, runs: Sequence[RunSeries], note: CurveNote) -> None:
    """The note in the lower right, with an arrow to its curve's lowest point."""
    (run,) = [run for run in runs if run.label == note.label]
    lowest = run.test["accuracy"].idxmin()
    point = (run.test["step"][lowest], run.test["accuracy"][lowest])
    ax.annotate(
        note.text,
        xy=point,
        xytext=(0.97, 0.05),
        textcoords="axes fraction",
        horizontalalignment="right",
        verticalalignment="bottom",
        fontsize="small",
        bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "0.6"},
        arrowprops={"arrowstyle": "->", "color": "0.3"},
    )


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

"""The study's figures: panels, curves, labels and data, read back from the figure objects."""

import re
import runpy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from ruamel.yaml import YAML

from nnlab import figures, paths, tracking
from nnlab.atomic import write_csv
from nnlab.params import ARCHS, VARIANTS, load_params

PROJECT = Path(__file__).resolve().parents[1]
ITERATIONS = 30
MEASURED_STEPS = [5, 10, 15, 20, 25, 30]
WINDOW = 3
TEST_IMAGES = 2000
DIMS = (8, 20)
RATES = (0.0, 0.5)
SETTINGS = figures.FigureSettings(
    test_images=TEST_IMAGES,
    batch_size=50,
    dropout_rate=0.3,
    batchnorm_momentum=0.99,
    descent_samples=100,
    descent_loss="mean_square",
)
VARIANT_NAMES = ["plain", "batch norm", "dropout 0.3"]


def training_table(offset: float) -> pd.DataFrame:
    steps = np.arange(1, ITERATIONS + 1)
    wiggle = 0.02 * (steps % 2)
    return pd.DataFrame(
        {
            "step": steps,
            "loss": 2.0 / steps + offset + wiggle,
            "accuracy": 0.9 - 0.5 / steps - offset + wiggle,
        }
    )


def evaluation_table(offset: float) -> pd.DataFrame:
    steps = np.array(MEASURED_STEPS)
    return pd.DataFrame(
        {"step": steps, "loss": 1.0 / steps + offset, "accuracy": 0.95 - 0.4 / steps - offset}
    )


def descent_table(dim: int) -> pd.DataFrame:
    iterations = np.arange(6)
    return pd.DataFrame(
        {
            "iteration": iterations,
            "lr_0.001": dim * 3.0 * 0.8**iterations,
            "lr_0.01": dim * 3.0 * 0.2**iterations,
        }
    )


def make_study() -> figures.StudySeries:
    """Series with a distinct offset per run, so each curve can be told apart."""
    training = {}
    for index, (arch, variant) in enumerate(
        (arch, variant) for arch in ARCHS for variant in VARIANTS
    ):
        offset = index / 100
        label = figures.variant_label(variant, SETTINGS.dropout_rate)
        run = figures.RunSeries(label, training_table(offset), evaluation_table(offset))
        training[arch, variant] = run
    sweep = {
        rate: figures.RunSeries(
            figures.dropout_label(rate), training_table(rate / 10), evaluation_table(rate / 10)
        )
        for rate in RATES
    }
    descent = {dim: descent_table(dim) for dim in DIMS}
    return figures.StudySeries(descent, training, sweep)


def write_study_files(study: figures.StudySeries) -> None:
    """The series as the training, sweep and descent stages write them (cwd = project)."""
    for (arch, variant), run in study.training.items():
        name = paths.run_name(arch, variant)
        write_csv(paths.train_series(name), run.train)
        write_csv(paths.test_series(name), run.test)
    for rate, run in study.sweep.items():
        write_csv(paths.train_series(paths.sweep_name(rate), "sweep"), run.train)
        write_csv(paths.test_series(paths.sweep_name(rate), "sweep"), run.test)
    for dim, table in study.descent.items():
        write_csv(paths.descent_series(dim), table)


@pytest.fixture(scope="module")
def study() -> figures.StudySeries:
    return make_study()


@pytest.fixture(scope="module")
def drawn(study):
    return figures.draw_study(study, SETTINGS, window=WINDOW)


def legend_labels(ax) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def labelled_lines(ax) -> list:
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


def line_styles(lines) -> list[tuple]:
    return [(line.get_color(), line.get_linestyle(), line.get_marker()) for line in lines]


def assert_all_different(values) -> None:
    assert len(set(values)) == len(values), values


def test_draw_study_returns_every_figure_in_the_study_order(drawn):
    assert list(drawn) == [
        "fig04_descent",
        "fig05_softmax_train",
        "fig06_softmax_test",
        "fig07_softmax_dropout",
        "fig08_mlp_train",
        "fig09_mlp_test",
        "fig10_cnn_train",
        "fig11_cnn_test",
        "fig12_models_train",
        "fig13_models_test",
    ]


def test_every_figure_has_a_numbered_title_and_labelled_axes(drawn):
    for spec in figures.STUDY_FIGURES:
        figure = drawn[spec.name]
        assert figure.get_suptitle().startswith(f"Figure {spec.number}. ")
        for ax in figure.axes:
            assert ax.get_xlabel()
            assert ax.get_ylabel()


def test_descent_figure_has_a_log_panel_per_size_and_a_curve_per_learning_rate(drawn):
    axes = drawn["fig04_descent"].axes
    for ax, dim in zip(axes, DIMS, strict=True):
        assert ax.get_yscale() == "log"
        assert legend_labels(ax) == ["learning rate 0.001", "learning rate 0.01"]
        np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), dim * 3.0 * 0.2 ** np.arange(6))


def test_descent_panels_name_their_size_and_initial_loss(drawn):
    axes = drawn["fig04_descent"].axes
    titles = [ax.get_title() for ax in axes]
    assert titles == ["(a) K = 8, initial loss 24", "(b) K = 20, initial loss 60"]


def test_descent_axes_say_an_iteration_is_a_pass_over_the_inputs_and_define_the_loss(drawn):
    ax = drawn["fig04_descent"].axes[0]
    assert ax.get_xlabel() == "pass over the N = 100 inputs (0 = start)"
    assert ax.get_ylabel() == "loss L: mean over the N inputs\nof L(x) = mean(w²) (log scale)"


def test_descent_learning_rates_differ_in_color_dashes_and_marker(drawn):
    ax = drawn["fig04_descent"].axes[0]
    for styles in zip(*line_styles(ax.get_lines()), strict=True):
        assert_all_different(styles)


@pytest.mark.parametrize(
    ("name", "arch"),
    [("fig05_softmax_train", "softmax"), ("fig08_mlp_train", "mlp"), ("fig10_cnn_train", "cnn")],
)
def test_training_figure_has_loss_and_accuracy_panels_with_a_curve_per_variant(drawn, name, arch):
    loss_ax, accuracy_ax = drawn[name].axes
    assert loss_ax.get_title() == "(a) training loss"
    assert accuracy_ax.get_title() == "(b) training accuracy"
    assert "cross-entropy of the iteration's batch" in loss_ax.get_ylabel()
    assert "the iteration's batch" in accuracy_ax.get_ylabel()
    for ax in (loss_ax, accuracy_ax):
        assert legend_labels(ax) == VARIANT_NAMES
        assert len(ax.get_lines()) == 6


def test_training_axes_give_the_batch_size_and_the_training_mode(drawn):
    for ax in drawn["fig10_cnn_train"].axes:
        assert ax.get_xlabel() == "training iteration (one batch of 50 images)"
        assert ax.get_ylabel().endswith("training mode: dropout active)")


def test_training_variants_differ_in_color_dashes_and_marker(drawn):
    for ax in drawn["fig05_softmax_train"].axes:
        styles = line_styles(labelled_lines(ax))
        assert styles == [
            ("#0072B2", "-", "o"),
            ("#D55E00", "--", "s"),
            ("#009E73", ":", "^"),
        ]


def test_training_markers_of_different_curves_do_not_coincide(drawn):
    ax = drawn["fig08_mlp_train"].axes[0]
    starts = [line.get_markevery()[0] for line in labelled_lines(ax)]
    assert starts == [0, 1, 2]
    assert {line.get_markevery()[1] for line in labelled_lines(ax)} == {3}


def test_training_curves_pair_faint_raw_values_with_their_moving_average(drawn, study):
    loss_ax = drawn["fig08_mlp_train"].axes[0]
    raw, average = loss_ax.get_lines()[2:4]
    losses = study.training["mlp", "batchnorm"].train["loss"]

    np.testing.assert_array_equal(raw.get_xdata(), np.arange(1, ITERATIONS + 1))
    np.testing.assert_allclose(raw.get_ydata(), losses)
    np.testing.assert_allclose(average.get_ydata(), losses.rolling(WINDOW, min_periods=1).mean())
    assert raw.get_alpha() < 0.5
    assert average.get_label() == "batch norm"
    assert "moving average of 3 iterations" in loss_ax.get_legend().get_title().get_text()


@pytest.mark.parametrize(
    ("name", "arch"),
    [("fig06_softmax_test", "softmax"), ("fig09_mlp_test", "mlp"), ("fig11_cnn_test", "cnn")],
)
def test_test_accuracy_is_drawn_only_at_the_measured_iterations(drawn, study, name, arch):
    (ax,) = drawn[name].axes
    assert legend_labels(ax) == VARIANT_NAMES
    for line, variant in zip(ax.get_lines(), VARIANTS, strict=True):
        assert list(line.get_xdata()) == MEASURED_STEPS
        np.testing.assert_allclose(
            line.get_ydata(), study.training[arch, variant].test["accuracy"]
        )


def test_test_accuracy_variants_differ_in_dashes_and_nest_their_open_markers(drawn):
    (ax,) = drawn["fig11_cnn_test"].axes
    lines = ax.get_lines()
    assert [line.get_linestyle() for line in lines] == ["-", "--", ":"]
    assert [line.get_marker() for line in lines] == ["o", "s", "^"]
    assert [line.get_markerfacecolor() for line in lines] == ["none"] * 3
    sizes = [line.get_markersize() for line in lines]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 3


def test_cnn_test_figure_explains_the_batch_norm_dip_next_to_its_curve(drawn, study):
    (ax,) = drawn["fig11_cnn_test"].axes
    (note,) = ax.texts
    text = " ".join(note.get_text().split())
    assert "inference mode" in text
    assert "moving averages of the batch statistics" in text
    assert "(momentum 0.99, roughly the last 100 iterations)" in text
    assert "Figure 10" in text
    batchnorm = study.training["cnn", "batchnorm"].test
    assert note.xy == (batchnorm["step"][0], batchnorm["accuracy"][0])


def test_note_arrow_points_at_the_lowest_test_accuracy_of_its_curve(study):
    dipped = evaluation_table(0.0).assign(accuracy=[0.6, 0.11, 0.1, 0.4, 0.9, 0.95])
    runs = [
        study.training["cnn", "plain"],
        figures.RunSeries("batch norm", study.training["cnn", "batchnorm"].train, dipped),
    ]
    note = figures.CurveNote("batch norm", "lagging moving averages")

    figure = figures.evaluation_figure("CNN", runs, TEST_IMAGES, 50, note)

    (annotation,) = figure.axes[0].texts
    assert annotation.get_text() == "lagging moving averages"
    assert annotation.xy == (15, 0.1)


def test_other_test_figures_carry_no_note(drawn):
    for name in ("fig06_softmax_test", "fig09_mlp_test", "fig13_models_test"):
        (ax,) = drawn[name].axes
        assert len(ax.texts) == 0


def test_test_accuracy_axis_names_the_number_of_test_images(drawn):
    (ax,) = drawn["fig06_softmax_test"].axes
    assert ax.get_ylabel() == "test accuracy\n(2,000 test images, inference mode)"


def test_dropout_figure_has_training_and_test_panels_with_a_curve_per_rate(drawn):
    train_ax, test_ax = drawn["fig07_softmax_dropout"].axes
    assert train_ax.get_title() == "(a) training accuracy"
    assert test_ax.get_title() == "(b) test accuracy"
    assert legend_labels(train_ax) == ["no dropout", "dropout 0.5"]
    assert legend_labels(test_ax) == ["no dropout", "dropout 0.5"]
    assert [list(line.get_xdata()) for line in test_ax.get_lines()] == [MEASURED_STEPS] * 2


def test_dropout_legends_say_the_rate_is_the_share_of_units_dropped(drawn):
    for ax in drawn["fig07_softmax_dropout"].axes:
        title = ax.get_legend().get_title().get_text()
        assert title.startswith("dropout rate (share of units dropped)\n")


def test_dropout_rates_differ_in_color_dashes_and_marker(drawn):
    train_ax, test_ax = drawn["fig07_softmax_dropout"].axes
    for lines in (labelled_lines(train_ax), test_ax.get_lines()):
        for styles in zip(*line_styles(lines), strict=True):
            assert_all_different(styles)
    assert train_ax.get_ylabel().endswith("training mode: dropout active)")


def test_model_comparison_has_full_and_zoomed_accuracy_and_loss_panels(drawn):
    figure = drawn["fig12_models_train"]
    assert "Plain variants" in figure.get_suptitle()
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == [
        "(a) training accuracy",
        "(b) training accuracy, zoomed on the last 50% of iterations",
        "(c) training loss",
        "(d) training loss, zoomed on the last 50% of iterations",
    ]
    (legend,) = figure.legends
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels == ["softmax regression", "MLP", "CNN"]
    for ax in figure.axes:
        assert [line.get_label() for line in labelled_lines(ax)] == labels
        assert "dropout" not in ax.get_ylabel()
        for styles in zip(*line_styles(labelled_lines(ax)), strict=True):
            assert_all_different(styles)


def test_zoomed_panel_shows_the_last_half_with_a_fitted_y_range(drawn, study):
    zoomed = drawn["fig12_models_train"].axes[1]
    last_half = pd.concat(
        [study.training[arch, "plain"].train.query("step >= 15.5")["accuracy"] for arch in ARCHS]
    )
    assert zoomed.get_xlim() == (15.5, 30.0)
    low, high = zoomed.get_ylim()
    assert low < last_half.min() and last_half.max() < high
    assert high - low < 1.2 * (last_half.max() - last_half.min())


def test_model_test_figure_compares_the_plain_variants(drawn, study):
    assert "Plain variants" in drawn["fig13_models_test"].get_suptitle()
    (ax,) = drawn["fig13_models_test"].axes
    assert legend_labels(ax) == ["softmax regression", "MLP", "CNN"]
    for line, arch in zip(ax.get_lines(), ARCHS, strict=True):
        assert list(line.get_xdata()) == MEASURED_STEPS
        np.testing.assert_allclose(
            line.get_ydata(), study.training[arch, "plain"].test["accuracy"]
        )


def test_settings_are_read_from_params_yaml():
    settings = figures.FigureSettings.from_params(load_params(PROJECT / "params.yaml"))
    assert settings == figures.FigureSettings(
        test_images=10_000,
        batch_size=500,
        dropout_rate=0.5,
        batchnorm_momentum=0.99,
        descent_samples=100,
        descent_loss="mean_square",
    )
    assert settings.momentum_window == 100


def test_captions_fill_in_the_settings():
    captions = {spec.number: spec.caption(SETTINGS) for spec in figures.STUDY_FIGURES}
    assert "N = 100 random inputs" in captions[4]
    assert "L(x) = mean(w²)" in captions[4]
    assert "one batch of 50 images" in captions[5]
    assert "plain, batch norm and dropout 0.3" in captions[10]
    assert "on the 2,000 test images" in captions[9]
    assert "share of units dropped" in captions[7]
    assert "plain variants" in captions[12] and "plain variants" in captions[13]
    assert all("{" not in caption for caption in captions.values())


def test_cnn_test_caption_explains_the_batch_norm_dip():
    (spec,) = [spec for spec in figures.STUDY_FIGURES if spec.number == 11]
    caption = spec.caption(SETTINGS)
    assert "can fall to chance (0.1)" in caption
    assert "moving averages of the batch statistics" in caption
    assert "(momentum 0.99, roughly the last 100 iterations)" in caption


def test_training_captions_warn_that_dropout_is_active():
    for number in (5, 8, 10):
        (spec,) = [spec for spec in figures.STUDY_FIGURES if spec.number == number]
        assert "training mode, with dropout active" in spec.caption(SETTINGS)


def test_moving_average_is_the_trailing_mean_of_the_window():
    averaged = figures.moving_average(pd.Series([1.0, 2.0, 3.0, 4.0]), window=2)
    assert averaged.tolist() == [1.0, 1.5, 2.5, 3.5]


def test_evaluated_images_is_the_whole_test_set_unless_limited():
    assert figures.evaluated_images(0) == 10_000
    assert figures.evaluated_images(2000) == 2000
    assert figures.evaluated_images(20_000) == 10_000


def test_load_study_reads_the_files_the_stages_write(tmp_path, monkeypatch, study):
    monkeypatch.chdir(tmp_path)
    write_study_files(study)

    loaded = figures.load_study(DIMS, RATES, dropout_rate=0.3)

    pd.testing.assert_frame_equal(
        loaded.training["cnn", "dropout"].test, study.training["cnn", "dropout"].test
    )
    assert loaded.training["cnn", "dropout"].label == "dropout 0.3"
    assert loaded.training["cnn", "batchnorm"].label == "batch norm"
    assert loaded.sweep[0.5].label == "dropout 0.5"
    assert list(loaded.descent[20].columns) == ["iteration", "lr_0.001", "lr_0.01"]


def test_read_series_refuses_a_file_without_accuracy(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("step,loss\n1,2.3\n")
    with pytest.raises(ValueError, match=re.escape("train.csv: missing column(s) accuracy")):
        figures.read_series(path)


def test_written_figures_are_identical_bytes_for_identical_inputs(tmp_path, monkeypatch, study):
    monkeypatch.chdir(tmp_path)
    runs = [study.training["cnn", variant] for variant in VARIANTS]

    def draw() -> dict:
        note = figures.CurveNote("batch norm", "moving averages lag")
        figure = figures.evaluation_figure("CNN", runs, TEST_IMAGES, 50, note)
        return {"fig11_cnn_test": figure}

    (written,) = figures.write_figures(draw())
    first = written.read_bytes()
    figures.write_figures(draw())

    assert written == Path("plots/figures/fig11_cnn_test.png")
    assert first.startswith(b"\x89PNG")
    assert written.read_bytes() == first
    assert sorted(path.name for path in written.parent.iterdir()) == [written.name]


def test_figures_stage_writes_every_figure_and_logs_them_in_one_run(
    tmp_path, monkeypatch, tracking_store, study
):
    yaml = YAML()
    params = yaml.load(PROJECT / "params.yaml")
    params["descent"]["dims"] = list(DIMS)
    params["sweep"]["dropout_rates"] = list(RATES)
    yaml.dump(params, tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    write_study_files(study)

    runpy.run_path(str(PROJECT / "stages" / "figures.py"), run_name="__main__")

    names = sorted(f"{spec.name}.png" for spec in figures.STUDY_FIGURES)
    assert sorted(path.name for path in (tmp_path / "plots" / "figures").iterdir()) == names
    client = MlflowClient(tracking_store)
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT)
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "figures"
    assert run.data.tags["nnlab.stage"] == "figures"
    logged = client.list_artifacts(run.info.run_id, "figures")
    assert sorted(Path(item.path).name for item in logged) == names

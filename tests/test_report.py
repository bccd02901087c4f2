"""The study's report: every figure linked, every number taken from the metrics files."""

import re
import runpy
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from nnlab import paths, report
from nnlab.atomic import write_json, write_text
from nnlab.figures import STUDY_FIGURES, FigureSettings
from nnlab.params import ARCHS, VARIANTS, load_params

PROJECT = Path(__file__).resolve().parents[1]
RATES = (0.0, 0.5)
SETTINGS = FigureSettings.from_params(load_params(PROJECT / "params.yaml"))
GRADIENT_TABLE = """# Gradients for K = 2, seed 1

| gradient | hand-written |  | torch autograd |  |
| --- | ---: | ---: | ---: | ---: |
| dL/dA | -0.0346 | 0.0126 | -0.0346 | 0.0126 |
"""
DESCENT = {
    "k20": {
        "lr_0.001": {
            "diverged": 0,
            "final_loss": 0.2207,
            "initial_loss": 514.76,
            "iterations": 100,
        },
        "lr_0.01": {"diverged": 1, "final_loss": 3.5, "initial_loss": 514.76, "iterations": 7},
    },
    "k8": {
        "lr_0.001": {
            "diverged": 0,
            "final_loss": 0.0322,
            "initial_loss": 62.663,
            "iterations": 100,
        },
    },
}
GRADCHECK = {
    "cases": 108,
    "finite_differences": {"max_abs_error": 8.08e-05, "max_rel_error": 1.81e-08},
    "torch": {"max_abs_error": 2.91e-11, "max_rel_error": 1.23e-15},
}


def training_metrics(index: int) -> dict:
    """Distinct numbers per training: test accuracy 0.90012, 0.91012, ..."""
    return {
        "test": {"accuracy": 0.90012 + index / 100, "loss": 0.31237 - index / 100},
        "train": {"accuracy": 0.88341 + index / 100, "loss": 0.27652 - index / 100},
        "iterations": 960,
        "parameters": 7850 + index,
    }


@pytest.fixture
def study_outputs(tmp_path, monkeypatch) -> Path:
    """The metrics and tables the earlier stages write, in a project folder (cwd)."""
    monkeypatch.chdir(tmp_path)
    names = [paths.run_name(arch, variant) for arch in ARCHS for variant in VARIANTS]
    for index, name in enumerate(names):
        write_json(paths.train_metrics(name), training_metrics(index))
    for index, rate in enumerate(RATES):
        write_json(paths.train_metrics(paths.sweep_name(rate), "sweep"), training_metrics(index))
    write_json(paths.DESCENT_METRICS, DESCENT)
    write_json(paths.GRADCHECK_METRICS, GRADCHECK)
    write_text(paths.GRADIENT_TABLE, GRADIENT_TABLE)
    return tmp_path


@pytest.fixture
def text(study_outputs) -> str:
    return report.render_report(report.load_results(RATES), SETTINGS)


def test_report_embeds_every_figure_relative_to_the_report_folder(text):
    for spec in STUDY_FIGURES:
        assert f"![{spec.heading}](../plots/figures/{spec.name}.png)" in text
        assert f"*Figure {spec.number}. {spec.caption(SETTINGS)}*" in text


def test_report_captions_state_the_settings_of_the_figures(text):
    assert "N = 100 random inputs" in text
    assert "L is the mean over the data set of L(x) = mean(w²)" in text
    assert "(one batch of 500 images); plain, batch norm and dropout 0.5." in text


def test_report_explains_the_batch_norm_dip_of_the_cnn_under_its_figure(text):
    cnn = text[text.index("fig11_cnn_test.png") : text.index("### The three models")]
    assert "in inference mode it normalizes with moving averages" in cnn
    assert "(momentum 0.99, roughly the last 100 iterations)" in cnn


def test_figure_links_resolve_from_the_report_folder(study_outputs):
    link = report.figure_link("fig04_descent")
    assert (paths.REPORT_README.parent / link).resolve() == (
        study_outputs / "plots" / "figures" / "fig04_descent.png"
    )


def test_report_puts_part_1_then_part_2_with_figures_in_number_order(text):
    positions = [text.index("## Part 1"), text.index("fig04_descent.png"), text.index("## Part 2")]
    positions += [text.index(f"{spec.name}.png") for spec in STUDY_FIGURES[1:]]
    assert positions == sorted(positions)


def test_report_includes_the_gradient_table_in_part_1(text):
    part_1 = text[text.index("## Part 1") : text.index("## Part 2")]
    assert "#### Gradients for K = 2, seed 1" in part_1
    assert "| dL/dA | -0.0346 | 0.0126 | -0.0346 | 0.0126 |" in part_1


def test_report_shows_final_numbers_of_every_training(text):
    assert (
        "| softmax regression | plain | 0.8834 | 0.2765 | 0.9001 | 0.3124 | 960 | 7,850 |" in text
    )
    assert "| MLP | batch norm | 0.9234 | 0.2365 | 0.9401 | 0.2724 | 960 | 7,854 |" in text
    assert "| CNN | dropout | 0.9634 | 0.1965 | 0.9801 | 0.2324 | 960 | 7,858 |" in text


def test_report_shows_the_dropout_sweep(text):
    assert "| no dropout | 0.8834 | 0.2765 | 0.9001 | 0.3124 | 960 | 7,850 |" in text
    assert "| dropout 0.5 | 0.8934 | 0.2665 | 0.9101 | 0.3024 | 960 | 7,851 |" in text


def test_headline_table_gives_test_accuracy_per_model_and_variant(study_outputs):
    table = report.headline_table(report.load_training_results())
    assert table == (
        "| model | plain | batch norm | dropout |\n"
        "| :--- | ---: | ---: | ---: |\n"
        "| softmax regression | 0.9001 | 0.9101 | 0.9201 |\n"
        "| MLP | 0.9301 | 0.9401 | 0.9501 |\n"
        "| CNN | 0.9601 | 0.9701 | 0.9801 |\n"
    )


def test_report_contains_the_headline_table(text):
    headline = report.headline_table(report.load_training_results())
    assert headline in text


def test_descent_table_lists_cases_by_size_then_learning_rate():
    assert report.descent_table(DESCENT) == (
        "| K | learning rate | initial loss | final loss | iterations | diverged |\n"
        "| :--- | ---: | ---: | ---: | ---: | ---: |\n"
        "| 8 | 0.001 | 62.66 | 0.0322 | 100 | no |\n"
        "| 20 | 0.001 | 514.8 | 0.2207 | 100 | no |\n"
        "| 20 | 0.01 | 514.8 | 3.5 | 7 | yes |\n"
    )


def test_gradcheck_table_gives_the_largest_errors_per_reference():
    assert report.gradcheck_table(GRADCHECK) == (
        "| compared with | largest relative error | largest absolute error |\n"
        "| :--- | ---: | ---: |\n"
        "| central finite differences | 1.8e-08 | 8.1e-05 |\n"
        "| torch autograd | 1.2e-15 | 2.9e-11 |\n"
    )


def test_report_states_the_number_of_checked_gradient_cases(text):
    assert "over 108 checked cases" in text


def test_read_result_names_the_file_missing_a_key(tmp_path):
    path = tmp_path / "cnn-plain.json"
    write_json(path, {"test": {"accuracy": 0.99}})
    with pytest.raises(ValueError, match=re.escape(f"{path}: not a training's metrics")):
        report.read_result(path)


def test_report_stage_writes_the_rendered_report(study_outputs, text):
    yaml = YAML()
    params = yaml.load(PROJECT / "params.yaml")
    params["sweep"]["dropout_rates"] = list(RATES)
    yaml.dump(params, study_outputs / "params.yaml")

    runpy.run_path(str(PROJECT / "stages" / "report.py"), run_name="__main__")

    assert (study_outputs / "report" / "README.md").read_text() == text

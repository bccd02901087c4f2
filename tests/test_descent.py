"""Gradient descent on the six-equation graph: it learns, and a divergence is reported."""

import json
import runpy
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from ruamel.yaml import YAML

from nnlab import descent, graph, tracking
from nnlab.atomic import write_json
from nnlab.params import DescentParams, GraphParams, load_params

PROJECT = Path(__file__).resolve().parents[1]
GRAPH = GraphParams(combine="add", loss="mean_square", activation="sigmoid")


def small_case(update: str = "per_sample", iterations: int = 20) -> DescentParams:
    return DescentParams(
        dims=(3,), learning_rates=(0.01,), samples=10, iterations=iterations, update=update
    )


def strict_json(path: Path) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"{path} holds {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.mark.parametrize("update", ["per_sample", "full_batch"])
def test_descent_lowers_the_mean_loss(update):
    run = descent.run_case(GRAPH, small_case(update), dim=3, learning_rate=0.01, seed=0)

    assert not run.diverged
    assert run.iterations == 20
    assert run.final_loss < run.initial_loss / 2


def test_iteration_zero_is_the_loss_before_any_step():
    weights, x = graph.random_problem(dim=3, samples=10, seed=0)

    run = descent.run_case(GRAPH, small_case(), dim=3, learning_rate=0.01, seed=0)

    assert run.initial_loss == graph.mean_loss(GRAPH, weights, x)


def test_a_huge_learning_rate_is_reported_as_diverged_in_strict_json(tmp_path):
    settings = small_case(iterations=50)
    run = descent.run_case(GRAPH, settings, dim=3, learning_rate=1e3, seed=0)
    target = tmp_path / "descent.json"

    write_json(target, descent.metrics_document([run]))

    case = strict_json(target)["k3"]["lr_1000"]
    assert case["diverged"] == 1
    assert case["iterations"] < 50
    assert case["final_loss"] == run.losses[-1]


def test_a_diverged_column_ends_with_empty_cells():
    calm = descent.DescentRun(dim=3, learning_rate=0.01, losses=(4.0, 2.0, 1.0), diverged=False)
    wild = descent.DescentRun(dim=3, learning_rate=10.0, losses=(4.0,), diverged=True)

    table = descent.series_table([calm, wild])

    assert list(table.columns) == ["iteration", "lr_0.01", "lr_10"]
    assert table["lr_10"].isna().tolist() == [False, True, True]


def test_default_settings_start_near_the_studys_losses():
    params = load_params(PROJECT / "params.yaml")
    starts = {
        dim: descent.run_case(
            params.graph, params.descent.model_copy(update={"iterations": 1}), dim, 0.001, 1
        ).initial_loss
        for dim in (8, 20)
    }

    assert 45 < starts[8] < 80
    assert 400 < starts[20] < 600


def test_descent_stage_logs_one_mlflow_run_per_case(tmp_path, monkeypatch, tracking_store):
    yaml = YAML()
    params = yaml.load(PROJECT / "params.yaml")
    params["descent"].update(dims=[2, 3], learning_rates=[0.01, 0.1], samples=5, iterations=3)
    yaml.dump(params, tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)

    runpy.run_path(str(PROJECT / "stages" / "descent.py"), run_name="__main__")

    client = MlflowClient(tracking_store)
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(run.info.run_name for run in runs) == [
        "descent-k2-lr0.01",
        "descent-k2-lr0.1",
        "descent-k3-lr0.01",
        "descent-k3-lr0.1",
    ]
    first = next(run for run in runs if run.info.run_name == "descent-k2-lr0.01")
    history = client.get_metric_history(first.info.run_id, "mean_loss")
    assert [metric.step for metric in history] == [0, 1, 2, 3]
    assert set(strict_json(tmp_path / "metrics" / "descent.json")) == {"k2", "k3"}

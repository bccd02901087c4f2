"""Stage scripts as processes: bad settings stop them early, results are reproducible.

Each test runs real stage scripts in a temporary workspace holding a params.yaml and a small
synthetic data set, with the default MLflow store (mlflow.db in the workspace).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from ruamel.yaml import YAML

PROJECT = Path(__file__).resolve().parents[1]
OUTPUT_FOLDERS = ("models", "metrics", "plots", "report")


def set_key(params: dict, dotted_key: str, value) -> None:
    *parents, leaf = dotted_key.split(".")
    for parent in parents:
        params = params[parent]
    params[leaf] = value


def write_params(workspace: Path, **settings) -> None:
    """The project's params.yaml, shrunk for speed, with `settings` (a__b means a.b) applied."""
    yaml = YAML()
    params = yaml.load(PROJECT / "params.yaml")
    small = {
        "train.epochs": 1,
        "train.batch_size": 50,
        "train.eval_every": 2,
        "train.eval_batch_size": 100,
        "descent.samples": 5,
        "descent.iterations": 3,
    }
    small.update({key.replace("__", "."): value for key, value in settings.items()})
    for key, value in small.items():
        set_key(params, key, value)
    yaml.dump(params, workspace / "params.yaml")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (200, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 200, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (100, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 100, dtype=np.uint8),
    }
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "mnist.npz", **arrays)
    write_params(tmp_path)
    return tmp_path


def run_stage(workspace: Path, *arguments: str) -> subprocess.CompletedProcess:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("MLFLOW_", "DVC_"))
    }
    script, *rest = arguments
    return subprocess.run(
        [sys.executable, str(PROJECT / "stages" / script), *rest],
        cwd=workspace,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


def assert_nothing_produced(workspace: Path) -> None:
    assert not any((workspace / folder).exists() for folder in OUTPUT_FOLDERS)
    assert not (workspace / "mlflow.db").exists()


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("model.dropout", 1.0, "model.dropout: Input should be less than 1 (got 1.0)"),
        ("train.epochs", 0, "train.epochs: Input should be greater than 0 (got 0)"),
        ("train.batch_size", 0, "train.batch_size: Input should be greater than 0 (got 0)"),
        ("train.batch_size", 70000, "train.batch_size: Input should be less than or equal"),
        ("train.eval_every", 0, "train.eval_every: Input should be greater than 0 (got 0)"),
        ("train.learning_rate", -0.1, "train.learning_rate: Input should be greater than 0"),
        ("train.learning_rate", "0.001", "train.learning_rate: Input should be a valid number"),
        ("train.backend.mlp", "theano", "train.backend.mlp: Input should be 'tensorflow'"),
        ("model.dropuot", 0.8, "model.dropuot: unknown key (0.8); check its spelling"),
    ],
)
def test_bad_setting_stops_training_before_any_output(workspace, setting, value, message):
    write_params(workspace, **{setting.replace(".", "__"): value})
    result = run_stage(workspace, "train.py", "mlp", "dropout")
    assert result.returncode == 1
    assert message in result.stderr
    assert_nothing_produced(workspace)


def test_missing_key_stops_training_before_any_output(workspace):
    yaml = YAML()
    params = yaml.load(workspace / "params.yaml")
    del params["train"]["epochs"]
    yaml.dump(params, workspace / "params.yaml")
    result = run_stage(workspace, "train.py", "softmax", "plain")
    assert result.returncode == 1
    assert "train.epochs: missing (required)" in result.stderr
    assert_nothing_produced(workspace)


def test_batch_larger_than_the_limited_training_set_is_refused(workspace):
    write_params(workspace, data__train_limit=100, train__batch_size=150)
    result = run_stage(workspace, "train.py", "softmax", "plain")
    assert result.returncode == 1
    assert "train.batch_size: 150 is larger than the training set (100 images)" in result.stderr
    assert_nothing_produced(workspace)


def test_unknown_model_or_variant_is_refused_with_the_allowed_names(workspace):
    result = run_stage(workspace, "train.py", "resnet", "plain")
    assert result.returncode == 2
    assert "invalid choice: 'resnet' (choose from 'softmax', 'mlp', 'cnn')" in result.stderr
    result = run_stage(workspace, "train.py", "mlp", "weightnorm")
    assert "invalid choice: 'weightnorm' (choose from 'plain', 'batchnorm', 'dropout')" in (
        result.stderr
    )
    assert_nothing_produced(workspace)


@pytest.mark.parametrize("stage", ["descent.py", "gradcheck.py"])
def test_dimension_below_one_is_refused(workspace, stage):
    section = stage.removesuffix(".py")
    write_params(workspace, **{f"{section}__dims": [8, 0]})
    result = run_stage(workspace, stage)
    assert result.returncode == 1
    assert f"{section}.dims.1: Input should be greater than 0 (got 0)" in result.stderr
    assert_nothing_produced(workspace)


def produced_bytes(workspace: Path, name: str) -> dict[str, bytes]:
    files = [
        workspace / "metrics" / "train" / f"{name}.json",
        *sorted((workspace / "plots" / "series" / "train" / name).glob("*.csv")),
    ]
    return {file.name: file.read_bytes() for file in files}


@pytest.mark.slow
@pytest.mark.parametrize(("arch", "variant"), [("mlp", "dropout"), ("cnn", "batchnorm")])
def test_same_seed_gives_identical_results_and_another_seed_different_ones(
    workspace, arch, variant
):
    name = f"{arch}-{variant}"
    write_params(workspace, train__epochs=6, train__batch_size=200)
    assert run_stage(workspace, "train.py", arch, variant).returncode == 0
    first = produced_bytes(workspace, name)
    assert run_stage(workspace, "train.py", arch, variant).returncode == 0
    assert produced_bytes(workspace, name) == first

    write_params(workspace, train__epochs=6, train__batch_size=200, seed=2)
    assert run_stage(workspace, "train.py", arch, variant).returncode == 0
    other = produced_bytes(workspace, name)
    assert other["train.csv"] != first["train.csv"]
    assert other[f"{name}.json"] != first[f"{name}.json"]


def training_runs(workspace: Path) -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{workspace / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("nnlab")
    return client.search_runs([experiment.experiment_id])


@pytest.mark.slow
def test_diverging_training_is_recorded_and_fails_the_stage(workspace):
    write_params(workspace, train__learning_rate=1e38)
    result = run_stage(workspace, "train.py", "mlp", "plain")
    assert result.returncode == 1
    assert "mlp-plain: training loss became" in result.stderr
    assert "train.allow_divergence" in result.stderr

    metrics_text = (workspace / "metrics" / "train" / "mlp-plain.json").read_text()
    metrics = json.loads(metrics_text)
    assert metrics["diverged"] == 1
    assert "NaN" not in metrics_text
    (run,) = training_runs(workspace)
    assert run.info.status == "FAILED"
    assert run.data.tags["diverged"] == "true"


@pytest.mark.slow
def test_expected_divergence_lets_the_stage_succeed(workspace):
    write_params(workspace, train__learning_rate=1e38, train__allow_divergence=True)
    result = run_stage(workspace, "train.py", "mlp", "plain")
    assert result.returncode == 0, result.stderr
    assert "mlp-plain: diverged" in result.stdout
    (run,) = training_runs(workspace)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["diverged"] == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("keras_backend", ["tensorflow", "torch", "jax"])
def test_every_backend_trains_and_reports_what_its_saved_model_scores(workspace, keras_backend):
    write_params(workspace, train__backend__cnn=keras_backend)
    result = run_stage(workspace, "train.py", "cnn", "batchnorm")
    assert result.returncode == 0, result.stderr

    metrics = json.loads((workspace / "metrics" / "train" / "cnn-batchnorm.json").read_text())
    assert metrics["iterations"] == 4  # 200 images, batches of 50, one epoch
    test_series = workspace / "plots" / "series" / "train" / "cnn-batchnorm" / "test.csv"
    assert test_series.read_text().splitlines()[1:] != []
    (run,) = training_runs(workspace)
    assert run.data.tags["keras_backend"] == keras_backend

    import keras

    from nnlab.models import load_model

    model = load_model(workspace / "models" / "train" / "cnn-batchnorm.keras")
    with np.load(workspace / "data" / "mnist.npz") as data:
        images, labels = data["x_test"][..., None], data["y_test"]
    probabilities = keras.ops.convert_to_numpy(model(images, training=False))
    accuracy = float(np.mean(np.argmax(probabilities, axis=1) == labels))
    loss = float(-np.mean(np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1))))
    assert metrics["test"]["accuracy"] == pytest.approx(accuracy, abs=1e-9)
    assert metrics["test"]["loss"] == pytest.approx(loss, rel=1e-4)

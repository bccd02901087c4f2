"""End to end: real `dvc repro` and `dvc exp run` in a temporary git repository.

The repository is a copy of this project with a small synthetic data set standing in for
MNIST (the download stage is marked done with `dvc commit`), and settings shrunk so that
every training takes seconds.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from ruamel.yaml import YAML

from nnlab import atomic

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1]
TRAIN_IMAGES = 300
BATCH = 100
EPOCHS = 2
EVAL_EVERY = 2
ITERATIONS = EPOCHS * TRAIN_IMAGES // BATCH
TRAININGS = [
    f"{arch}-{variant}"
    for arch in ("softmax", "mlp", "cnn")
    for variant in ("plain", "batchnorm", "dropout")
]
DROPOUT_STAGES = {"train@softmax-dropout", "train@mlp-dropout", "train@cnn-dropout"}


def run(command: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")
    }
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}"
    environment["PYTHONPATH"] = str(cwd / "src")
    environment["DVC_NO_ANALYTICS"] = "1"
    result = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def write_small_params(repo: Path) -> None:
    yaml = YAML()
    path = repo / "params.yaml"
    params = yaml.load(path)
    params["train"]["epochs"] = EPOCHS
    params["train"]["batch_size"] = BATCH
    params["train"]["eval_every"] = EVAL_EVERY
    params["train"]["eval_batch_size"] = 200
    params["descent"]["iterations"] = 5
    params["descent"]["samples"] = 10
    yaml.dump(params, path)


def write_synthetic_mnist(repo: Path) -> None:
    """Images whose brightest row encodes the label, so the models can learn something."""
    rng = np.random.default_rng(0)

    def split(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 10, count).astype(np.uint8)
        images = rng.integers(0, 60, (count, 28, 28)).astype(np.uint8)
        images[np.arange(count), 2 * labels + 4, :] = 255
        return images, labels

    x_train, y_train = split(TRAIN_IMAGES)
    x_test, y_test = split(100)
    (repo / "data").mkdir()
    np.savez(
        repo / "data" / "mnist.npz",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
    )
    atomic.write_json(repo / "data" / "provenance.json", {"source": "synthetic test data"})


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A committed copy of the project whose pipeline has been reproduced once."""
    repo = tmp_path_factory.mktemp("study")
    for name in ("dvc.yaml", "params.yaml", ".gitignore"):
        shutil.copy(PROJECT / name, repo / name)
    for folder in ("stages", "src"):
        shutil.copytree(
            PROJECT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    write_small_params(repo)
    run(["git", "init", "-q", "-b", "main"], repo)
    run(["git", "config", "user.email", "test@example.com"], repo)
    run(["git", "config", "user.name", "test"], repo)
    run(["dvc", "init", "-q"], repo)
    write_synthetic_mnist(repo)
    run(["dvc", "commit", "-f", "-q", "download"], repo)
    run(["dvc", "repro"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "baseline"], repo)
    return repo


def store(repo: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")


def all_runs(repo: Path) -> list:
    client = store(repo)
    experiment = client.get_experiment_by_name("nnlab")
    return client.search_runs([experiment.experiment_id], max_results=1000)


def training_runs(repo: Path) -> list:
    """Runs of the `train@` stages (not the sweep, figures or part 1)."""
    return [run for run in all_runs(repo) if run.data.tags["nnlab.stage"].startswith("train@")]


def runs_by_name(repo: Path) -> dict:
    """The first run of each name (the baseline's, before any experiment)."""
    runs = sorted(all_runs(repo), key=lambda run: run.info.start_time, reverse=True)
    return {run.info.run_name: run for run in runs}


def test_repro_writes_numeric_metrics_for_every_training(repo):
    for name in TRAININGS:
        metrics = json.loads((repo / "metrics" / "train" / f"{name}.json").read_text())
        assert metrics["iterations"] == ITERATIONS
        assert 0 <= metrics["test"]["accuracy"] <= 1
        assert metrics["parameters"] > 0


def test_repro_writes_a_series_row_per_iteration_and_per_evaluation(repo):
    folder = repo / "plots" / "series" / "train" / "mlp-dropout"
    train_rows = (folder / "train.csv").read_text().splitlines()
    test_rows = (folder / "test.csv").read_text().splitlines()
    assert train_rows[0] == "step,loss,accuracy"
    assert [row.split(",")[0] for row in train_rows[1:]] == [
        str(step) for step in range(1, ITERATIONS + 1)
    ]
    assert [row.split(",")[0] for row in test_rows[1:]] == [
        str(step) for step in range(EVAL_EVERY, ITERATIONS + 1, EVAL_EVERY)
    ]


def test_repro_logs_one_finished_run_per_training_with_its_history(repo):
    runs = runs_by_name(repo)
    for name in TRAININGS:
        assert runs[name].info.status == "FINISHED"
        assert runs[name].data.tags["nnlab.stage"] == f"train@{name}"
    run_id = runs["cnn-batchnorm"].info.run_id
    history = store(repo).get_metric_history(run_id, "train_loss")
    assert sorted(metric.step for metric in history) == list(range(1, ITERATIONS + 1))
    assert runs["cnn-batchnorm"].data.params["train.batch_size"] == str(BATCH)
    artifacts = store(repo).list_artifacts(run_id, "model")
    assert [Path(item.path).name for item in artifacts] == ["cnn-batchnorm.keras"]


def test_second_repro_runs_nothing(repo):
    output = run(["dvc", "repro"], repo).stdout
    assert "Running stage" not in output


def test_dvc_metrics_show_lists_the_training_results(repo):
    output = run(["dvc", "metrics", "show", "--json"], repo).stdout
    shown = json.dumps(json.loads(output))
    assert "metrics/train/cnn-plain.json" in shown


def test_exp_run_with_new_dropout_reruns_only_the_dropout_trainings(repo):
    result = run(["dvc", "exp", "run", "-n", "dropout-08", "-S", "model.dropout=0.8"], repo)
    ran = {line.split("'")[1] for line in result.stdout.splitlines() if "Running stage" in line}
    assert DROPOUT_STAGES | {"params"} <= ran
    assert ran <= DROPOUT_STAGES | {"params", "figures", "report"}

    dropout_runs = [run for run in training_runs(repo) if run.data.params["dropout_rate"] == "0.8"]
    assert len(dropout_runs) == 3
    assert {run.data.tags.get("dvc_experiment") for run in dropout_runs} == {"dropout-08"}


def test_misspelt_override_is_refused_naming_the_key(repo):
    result = run(["dvc", "exp", "run", "-S", "model.dropuot=0.8"], repo, check=False)
    assert result.returncode != 0
    assert "model.dropuot" in result.stdout + result.stderr


def test_appended_unknown_key_is_refused_by_the_params_stage(repo):
    result = run(["dvc", "exp", "run", "-S", "+model.dropuot=0.8"], repo, check=False)
    assert result.returncode != 0
    assert "model.dropuot: unknown key (0.8); check its spelling" in result.stderr
    run(["git", "checkout", "--", "params.yaml"], repo)


def wait_for_queue(repo: Path, timeout_s: float = 1200) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = run(["dvc", "queue", "status"], repo).stdout
        if not any(word in status for word in ("Queued", "Running")):
            return status
        time.sleep(5)
    raise AssertionError(f"queue still busy after {timeout_s} s:\n{status}")


def test_queued_sweep_lands_every_run_in_the_one_store(repo):
    before = {run.info.run_id for run in training_runs(repo)}
    run(["dvc", "exp", "run", "--queue", "-S", "model.dropout=0.1,0.3,0.6"], repo)
    run(["dvc", "queue", "start", "-j", "2"], repo)
    try:
        status = wait_for_queue(repo)
    finally:
        run(["dvc", "queue", "stop"], repo, check=False)
    assert status.count("Success") >= 3, status

    new_runs = [run for run in training_runs(repo) if run.info.run_id not in before]
    assert all(run.info.status == "FINISHED" for run in new_runs)
    by_rate = {}
    for stored in new_runs:
        by_rate.setdefault(stored.data.params["dropout_rate"], set()).add(stored.info.run_name)
    expected = {"softmax-dropout", "mlp-dropout", "cnn-dropout"}
    assert by_rate == {"0.1": expected, "0.3": expected, "0.6": expected}
    assert len({stored.data.tags["dvc_experiment"] for stored in new_runs}) == 3

    shown = run(["dvc", "exp", "show", "--json"], repo).stdout
    names = run(["dvc", "exp", "list", "--name-only"], repo).stdout.split()
    assert len(names) >= 3
    assert all(name in shown for name in names)
    rendered = run(["dvc", "plots", "diff", "-o", "diff-plots", *names], repo)
    assert (repo / "diff-plots" / "index.html").exists(), rendered.stdout

"""Every stage execution leaves one MLflow run whose status tells what happened."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from nnlab import paths, tracking


def only_run(uri: str):
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT)
    (run,) = client.search_runs([experiment.experiment_id])
    return client, run


def test_successful_stage_is_finished_with_params_tags_and_batched_history(tracking_store):
    with tracking.start_run("train@mlp-plain", "mlp-plain", {"train.epochs": 8}) as run:
        for step in range(1, 2501):
            run.log_metrics({"train_loss": 1 / step}, step=step)
    client, stored = only_run(tracking_store)
    assert stored.info.status == "FINISHED"
    assert stored.info.run_name == "mlp-plain"
    assert stored.data.params == {"train.epochs": "8"}
    assert stored.data.tags["nnlab.stage"] == "train@mlp-plain"
    history = client.get_metric_history(stored.info.run_id, "train_loss")
    assert sorted(metric.step for metric in history) == list(range(1, 2501))


def test_series_sent_during_a_stage_are_all_stored_when_it_ends(tracking_store):
    with tracking.start_run("train@cnn-plain", "cnn-plain") as run:
        for epoch in range(3):
            steps = range(epoch * 100 + 1, epoch * 100 + 101)
            run.log_series("train_loss", steps, [float(step) for step in steps])
            run.send()
    client, stored = only_run(tracking_store)
    history = client.get_metric_history(stored.info.run_id, "train_loss")
    assert sorted((metric.step, metric.value) for metric in history) == [
        (step, float(step)) for step in range(1, 301)
    ]


def test_a_write_that_fails_in_the_background_raises_at_flush(tracking_store):
    client, experiment_id = tracking.open_store()
    run_id = client.create_run(experiment_id).info.run_id
    run = tracking.TrackedRun(client, run_id)
    client.delete_run(run_id)
    run.log_series("train_loss", [1, 2], [0.5, 0.25])
    run.send()
    with pytest.raises(MlflowException, match="active"):
        run.flush()
    run.close()


def test_exception_inside_a_stage_marks_the_run_failed(tracking_store):
    with pytest.raises(ZeroDivisionError), tracking.start_run("descent", "descent-k8"):
        _ = 1 / 0
    _, stored = only_run(tracking_store)
    assert stored.info.status == "FAILED"
    assert stored.info.end_time is not None


def test_keyboard_interrupt_marks_the_run_killed(tracking_store):
    with pytest.raises(KeyboardInterrupt), tracking.start_run("descent", "descent-k8"):
        raise KeyboardInterrupt
    _, stored = only_run(tracking_store)
    assert stored.info.status == "KILLED"


def test_sigterm_to_a_stage_process_marks_its_run_killed(tracking_store, tmp_path):
    script = tmp_path / "stage.py"
    script.write_text(
        textwrap.dedent(
            """
            import time
            from nnlab import tracking

            with tracking.start_run("train@cnn-plain", "cnn-plain"):
                print("running", flush=True)
                time.sleep(60)
            """
        )
    )
    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=os.environ
    )
    assert process.stdout.readline().strip() == "running"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) != 0
    _, stored = only_run(tracking_store)
    assert stored.info.status == "KILLED"
    assert stored.info.end_time is not None


def test_unreachable_tracking_server_fails_within_seconds(monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(tracking.TrackingError, match=f"127.0.0.1:{port} is not reachable"):
        tracking.open_store()
    assert time.monotonic() - started < 10


def test_default_store_is_sqlite_in_the_project_root(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"


def test_experiment_copies_find_the_original_project(tmp_path, monkeypatch):
    monkeypatch.delenv("DVC_ROOT", raising=False)
    copy = tmp_path / ".dvc" / "tmp" / "exps" / "run" / "abc123"
    assert paths.project_root(copy) == tmp_path.resolve()


def test_dvc_root_names_the_project_for_queued_experiments(tmp_path, monkeypatch):
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert paths.project_root() == tmp_path.resolve()


def test_runs_record_the_dvc_experiment_name(tracking_store, monkeypatch):
    monkeypatch.setenv("DVC_EXP_NAME", "dropout-08")
    with tracking.start_run("train@mlp-dropout", "mlp-dropout"):
        pass
    _, stored = only_run(tracking_store)
    assert stored.data.tags["dvc_experiment"] == "dropout-08"

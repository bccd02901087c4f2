"""MLflow conventions: one store per project, one run per stage execution.

The store defaults to SQLite in the project root (`mlflow.db`, artifacts in `mlartifacts/`),
both as absolute paths so runs from the copies that `dvc exp run` makes land in the same
store. `MLFLOW_TRACKING_URI` overrides it. Per-step metrics are buffered and written in
batches by a writer thread of the run's own; a run that raises is marked FAILED and one
stopped by SIGINT or SIGTERM KILLED.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlparse

from filelock import FileLock
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from nnlab import paths

EXPERIMENT = "nnlab"
BATCH_LIMIT = 1000  # most metrics MLflow accepts in one log_batch call
PARAM_LIMIT = 100  # most params MLflow accepts in one log_batch call

log = logging.getLogger(__name__)


class TrackingError(RuntimeError):
    """The tracking store cannot be reached or used."""


class StageInterrupted(BaseException):
    """SIGTERM arrived while a tracked stage was running."""


def tracking_uri(root: Path | None = None) -> str:
    """`MLFLOW_TRACKING_URI` if set, else the SQLite store in the project root."""
    configured = os.environ.get("MLFLOW_TRACKING_URI")
    if configured:
        return configured
    root = root or paths.project_root()
    return f"sqlite:///{(root / paths.TRACKING_DB).resolve()}"


def artifact_root(root: Path | None = None) -> str:
    root = root or paths.project_root()
    return (root / paths.TRACKING_ARTIFACTS).resolve().as_uri()


def check_reachable(uri: str, timeout_s: float = 3.0) -> None:
    """Fail within seconds when an HTTP tracking server does not answer."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https"):
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout_s):
            pass
    except OSError as error:
        raise TrackingError(
            f"MLflow tracking server {uri} is not reachable ({error}); start it, or unset "
            "MLFLOW_TRACKING_URI to use the project's own store"
        ) from None


def ensure_experiment(client: MlflowClient, root: Path | None = None) -> str:
    """Create the store's schema and the project's experiment if missing; return its id."""
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(EXPERIMENT, artifact_location=artifact_root(root))


def open_store() -> tuple[MlflowClient, str]:
    """Client and experiment id of the project's store, checked to be usable.

    Several stages may open a new SQLite store at once (queued experiments); MLflow's schema
    set-up is not safe against that, so it runs under a file lock beside the database.
    """
    uri = tracking_uri()
    check_reachable(uri)
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite":
        client = MlflowClient(tracking_uri=uri)
        return client, ensure_experiment(client)
    with FileLock(f"{parsed.path}.lock", timeout=120):
        client = MlflowClient(tracking_uri=uri)
        return client, ensure_experiment(client)


def source_tags(stage: str) -> dict[str, str]:
    """Where a run came from: git commit, DVC experiment and stage."""
    tags = {"nnlab.stage": stage, "mlflow.source.type": "LOCAL"}
    commit = _git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["git_commit"] = commit
    experiment = os.environ.get("DVC_EXP_NAME")
    if experiment:
        tags["dvc_experiment"] = experiment
    baseline = os.environ.get("DVC_EXP_BASELINE_REV")
    if baseline:
        tags["dvc_baseline_rev"] = baseline
    return tags


class TrackedRun:
    """One MLflow run; metrics are buffered and written in batches.

    `send()` hands the buffered metrics to the run's writer thread and returns at once, so a
    training loop does not wait for the database; `flush()` also waits until all of them are
    stored. One writer keeps the batches in order. MLflow's own asynchronous logging is not
    used: closing it waits for its queue's one-second poll, longer than a small model's
    whole series takes to store.
    """

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self._pending: list[Metric] = []
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-writer")
        self._sending: list[Future] = []

    def log_params(self, params: Mapping[str, Any]) -> None:
        items = [Param(key, str(value)) for key, value in params.items()]
        for start in range(0, len(items), PARAM_LIMIT):
            self.client.log_batch(self.run_id, params=items[start : start + PARAM_LIMIT])

    def set_tags(self, tags: Mapping[str, str]) -> None:
        items = [RunTag(key, str(value)) for key, value in tags.items()]
        self.client.log_batch(self.run_id, tags=items)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        timestamp = int(time.time() * 1000)
        for key, value in metrics.items():
            self._pending.append(Metric(key, float(value), timestamp, step))
        if len(self._pending) >= BATCH_LIMIT:
            self.send()

    def log_series(self, key: str, steps: Sequence[int], values: Sequence[float]) -> None:
        """A per-step history of one metric, kept until the next `flush()`."""
        timestamp = int(time.time() * 1000)
        for step, value in zip(steps, values, strict=True):
            self._pending.append(Metric(key, float(value), timestamp, int(step)))

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.flush()
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def send(self) -> None:
        """Start writing the buffered metrics in the background."""
        while self._pending:
            batch, self._pending = self._pending[:BATCH_LIMIT], self._pending[BATCH_LIMIT:]
            written = self._writer.submit(self.client.log_batch, self.run_id, metrics=batch)
            self._sending.append(written)

    def flush(self) -> None:
        """Write the buffered metrics and wait until every metric sent so far is stored.

        A write that failed raises here, in the caller's thread.
        """
        self.send()
        sending, self._sending = self._sending, []
        for written in sending:
            written.result()

    def close(self) -> None:
        """Stop the writer thread; call after the last `flush()`."""
        self._writer.shutdown(wait=True)


@contextmanager
def start_run(
    stage: str, run_name: str, params: Mapping[str, Any] | None = None
) -> Iterator[TrackedRun]:
    """Open a run for one stage execution and always close it with its true status."""
    client, experiment_id = open_store()
    created = client.create_run(experiment_id, run_name=run_name, tags=source_tags(stage))
    run = TrackedRun(client, created.info.run_id)
    status = "FAILED"
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        if params:
            run.log_params(params)
        yield run
        run.flush()
        status = "FINISHED"
    except (KeyboardInterrupt, StageInterrupted):
        status = "KILLED"
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        try:
            run.flush()
        finally:
            run.close()
            client.set_terminated(run.run_id, status=status)
            log.info("MLflow run %s (%s) %s", run_name, run.run_id, status)


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise StageInterrupted(f"stopped by signal {signal.Signals(signum).name}")


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None

"""One training stage of the study: data, model, fit, outputs and tracking, in that order."""

from __future__ import annotations

import hashlib
import logging
import resource

import keras

from nnlab import atomic, paths, tracking
from nnlab.mnist import load_mnist
from nnlab.models import Variant, build_model, save_model
from nnlab.params import Params, flatten
from nnlab.training import TrainingResult, fit

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The training loss stopped being finite and params do not allow that."""


def train_classifier(
    name: str, arch: str, variant: Variant, params: Params, stage: str, group: str = "train"
) -> TrainingResult:
    """Train one classifier, write its model, metrics and series, and log an MLflow run.

    A diverged training is recorded as such (metrics JSON, run tag and metric) and then
    raises `TrainingDiverged`, marking the run FAILED, unless `train.allow_divergence`.
    """
    data = load_mnist(
        paths.MNIST, train_limit=params.data.train_limit, test_limit=params.data.test_limit
    )
    images = data.x_train[..., None]  # (N, 28, 28, 1)
    test_images = data.x_test[..., None]

    model = build_model(arch, variant, params.arch)
    resolved = {
        "seed": params.seed,
        "arch": arch,
        "batchnorm": variant.batchnorm is not None,
        "dropout_rate": variant.dropout_rate or 0.0,
        "train_images": len(images),
        "test_images": len(test_images),
        **flatten(params.train, prefix="train."),
        **flatten(getattr(params.arch, arch), prefix=f"arch.{arch}."),
    }
    if variant.batchnorm is not None:
        resolved.update(flatten(variant.batchnorm, prefix="batchnorm."))

    with tracking.start_run(stage=stage, run_name=name, params=resolved) as run:
        run.set_tags({"keras_backend": keras.backend.backend(), "data": _data_digest()})
        result = fit(model, images, data.y_train, test_images, data.y_test, params.train, run=run)
        timing = _timing(result, params.train.batch_size)
        _write_outputs(name, group, model, result, timing)
        run.log_metrics({**_summary(result), **timing})
        run.set_tags({"diverged": str(result.history.diverged).lower()})
        run.log_artifact(paths.model_file(name, group), "model")
        if result.history.diverged and not params.train.allow_divergence:
            raise TrainingDiverged(
                f"{name}: training loss became {result.history.train_loss[-1]} at iteration "
                f"{result.iterations}; lower train.learning_rate, or set "
                "train.allow_divergence: true if this is an expected outcome"
            )

    return result


def summary_line(name: str, result: TrainingResult) -> str:
    """The one line a training stage prints."""
    outcome = "diverged"
    if result.test is not None:
        outcome = f"test accuracy {result.test.accuracy:.4f}"
    return f"{name}: {outcome}, {result.iterations} iterations in {result.fit_seconds:.1f} s"


def _summary(result: TrainingResult) -> dict[str, float]:
    summary = {"diverged": float(result.history.diverged)}
    if result.test is not None and result.train is not None:
        summary.update(
            test_accuracy=result.test.accuracy,
            test_loss=result.test.loss,
            final_train_accuracy=result.train.accuracy,
            final_train_loss=result.train.loss,
        )
    return summary


def _results(result: TrainingResult) -> dict[str, object]:
    """The reproducible results: equal params and seed give an equal file, byte for byte."""
    document: dict[str, object] = {
        "diverged": int(result.history.diverged),
        "iterations": result.iterations,
        "parameters": result.parameters,
    }
    if result.test is not None and result.train is not None:
        document["test"] = {"accuracy": result.test.accuracy, "loss": result.test.loss}
        document["train"] = {"accuracy": result.train.accuracy, "loss": result.train.loss}
    return document


def _timing(result: TrainingResult, batch_size: int) -> dict[str, float]:
    return {
        "train_seconds": result.train_seconds,
        "eval_seconds": result.history.eval_seconds,
        "images_per_second": result.iterations * batch_size / result.train_seconds,
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _write_outputs(
    name: str,
    group: str,
    model: keras.Model,
    result: TrainingResult,
    timing: dict[str, float],
) -> None:
    with atomic.atomic_path(paths.model_file(name, group)) as temporary:
        save_model(model, temporary)
    atomic.write_csv(paths.train_series(name, group), result.history.train_table())
    atomic.write_csv(paths.test_series(name, group), result.history.test_table())
    atomic.write_json(paths.train_metrics(name, group), _results(result))
    atomic.write_json(
        paths.timing_metrics(name, group), {key: round(value, 3) for key, value in timing.items()}
    )


def _data_digest() -> str:
    """Short digest of the data's provenance record, naming the exact arrays trained on."""
    provenance = paths.MNIST_PROVENANCE
    if not provenance.exists():
        return "unknown"
    return hashlib.sha256(provenance.read_bytes()).hexdigest()[:16]

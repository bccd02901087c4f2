"""Where training time goes: the pipeline's fit against a plain `model.fit`, per backend.

For each Keras backend installed and each model, one worker process trains the same model on
the same images, taking turns, for `--repeats` rounds:

- plain: `model.fit` with Keras's own loss and accuracy, no callbacks, and Keras's own
  `BatchNormalization` layer where the model has one;
- bare: the pipeline's model and metrics, fitted with no callbacks;
- recorded: the same with per-iteration recording and batched MLflow logging to a temporary
  SQLite store, test evaluation switched off, until every metric is stored;
- pipeline: the recorded fit with the test set evaluated every `eval_every` iterations.

Each fit makes as many passes over the images as it takes to last `--min-fit-seconds` on
the bare model (one pass for the CNN; many for the small models, whose single pass lasts a
fraction of a second, too short to tell a few percent apart from the machine's noise).

Shares are medians over rounds of one fit against the other fit of the same round. Recording
is shown three ways: its added wall time (recorded against bare, noisy on a shared machine),
the time spent inside the recorder's own code (direct), and the time MLflow takes to store
one fit's series when it is made to wait for it (stored: what the background writer does
beside the training). The CNN's achieved GFLOP/s is set against a float32 matrix product
timed in the same run; each worker's peak memory is its resident maximum.

    python bench/training.py [--repeats 3] [--train-images 20000] [--min-fit-seconds 2]
                             [--backends tensorflow torch] [--models softmax cnn]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nnlab.atomic import write_json

RESULTS = Path("bench/results/training.json")
MODELS = ("softmax", "mlp", "cnn", "cnn-batchnorm")
BACKENDS = ("tensorflow", "torch", "jax")


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Float32 matrix-product rate of this machine, median of `repeats`."""
    rng = np.random.default_rng(0)
    left = rng.standard_normal((size, size), dtype=np.float32)
    right = rng.standard_normal((size, size), dtype=np.float32)
    left @ right
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        left @ right
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def cnn_training_flops(model) -> float:
    """Floating-point operations to train on one image: forward plus twice that backward."""
    forward = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            _, height, width, filters = layer.output.shape
            kernel = np.prod(layer.kernel.shape[:-1])
            forward += 2 * height * width * filters * kernel
        elif kind == "Dense":
            forward += 2 * np.prod(layer.kernel.shape)
    return 3.0 * float(forward)


def seconds(action, *arguments) -> float:
    start = time.perf_counter()
    action(*arguments)
    return time.perf_counter() - start


def worker(
    backend: str, model_name: str, repeats: int, train_images: int, min_fit_seconds: float
) -> dict:
    """Time one model on one backend; runs in its own process (Keras fixes its backend)."""
    from nnlab import backend as keras_backend

    keras_backend.use(backend, seed=1)
    import keras

    from nnlab import paths, tracking
    from nnlab.layers import FusedBatchNormalization
    from nnlab.mnist import load_mnist
    from nnlab.models import build_model, variant_of
    from nnlab.params import load_params
    from nnlab.training import EvaluationSet, StepRecorder, compile_model

    class TimedRecorder(StepRecorder):
        """The pipeline's recorder, adding up the time spent in its own code."""

        seconds = 0.0

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            start, evaluating = time.perf_counter(), self.history.eval_seconds
            super().on_train_batch_end(batch, logs)
            spent = time.perf_counter() - start
            self.seconds += spent - (self.history.eval_seconds - evaluating)

        def flush(self) -> None:
            start = time.perf_counter()
            super().flush()
            self.seconds += time.perf_counter() - start

    def keras_layer(layer):
        """Keras's own layer in place of the fused batch normalization, others copied."""
        if isinstance(layer, FusedBatchNormalization):
            return keras.layers.BatchNormalization.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    params = load_params(paths.PARAMS)
    settings = params.train
    data = load_mnist(paths.MNIST, train_limit=train_images)
    images, labels = data.x_train[..., None], data.y_train
    test_set = EvaluationSet(data.x_test[..., None], data.y_test, settings.eval_batch_size)
    arch, _, variant_name = model_name.partition("-")
    variant = variant_of(variant_name or "plain", params.model)

    ours = build_model(arch, variant, params.arch)
    compile_model(ours, settings.learning_rate, settings.jit_compile)
    plain = keras.models.clone_model(ours, clone_function=keras_layer)
    plain.compile(
        optimizer=keras.optimizers.Adam(settings.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=settings.jit_compile,
    )

    epochs = 1

    def fit(model, callbacks) -> None:
        model.fit(
            images,
            labels,
            batch_size=settings.batch_size,
            epochs=epochs,
            shuffle=True,
            callbacks=callbacks,
            verbose=0,
        )

    never = 10**9

    def store_again(run, history) -> None:
        """Store one fit's series again through the recorder; wait until MLflow has them."""
        again = StepRecorder(test_set, never, run)
        again.history = history
        again.flush()
        run.flush()

    fit(plain, [])
    fit(ours, [StepRecorder(test_set, never)])
    epochs = max(1, math.ceil(min_fit_seconds / seconds(fit, ours, [])))

    rounds: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as store:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}/mlflow.db"
        with tracking.start_run("bench", f"bench-{backend}-{model_name}") as run:
            for _ in range(repeats):
                measured = {"plain": seconds(fit, plain, []), "bare": seconds(fit, ours, [])}
                recorder = TimedRecorder(test_set, never, run)
                start = time.perf_counter()
                fit(ours, [recorder])
                run.flush()
                measured["recorded"] = time.perf_counter() - start
                measured["recording"] = recorder.seconds
                measured["stored"] = seconds(store_again, run, recorder.history)
                evaluating = StepRecorder(test_set, settings.eval_every, run)
                measured["pipeline"] = seconds(fit, ours, [evaluating])
                rounds.append(measured)

    result = {name: statistics.median(row[name] for row in rounds) for name in rounds[0]}
    result["shares"] = {
        "recording": statistics.median(row["recorded"] / row["bare"] - 1 for row in rounds),
        "direct": statistics.median(row["recording"] / row["recorded"] for row in rounds),
        "stored": statistics.median(row["stored"] / row["recorded"] for row in rounds),
        "evaluation": statistics.median(row["pipeline"] / row["recorded"] - 1 for row in rounds),
    }
    result["images"] = len(images) * epochs
    result["epochs"] = epochs
    if arch == "cnn":
        result["flops_per_image"] = cnn_training_flops(ours)
    return result


def run_worker(
    backend: str, model_name: str, repeats: int, train_images: int, min_fit_seconds: float
) -> dict:
    """Start a worker process; return its timings and its peak resident memory."""
    command = [
        sys.executable,
        __file__,
        "--worker",
        backend,
        model_name,
        "--repeats",
        str(repeats),
        "--train-images",
        str(train_images),
        "--min-fit-seconds",
        str(min_fit_seconds),
    ]
    with tempfile.TemporaryFile(mode="w+") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        lines = output.read().strip().splitlines()
    if process.returncode != 0 or not lines:
        return {"error": f"worker exited with {process.returncode}"}
    result = json.loads(lines[-1])
    result["peak_memory_mb"] = usage.ru_maxrss / 1024
    return result


def table(results: dict, gflops: float) -> str:
    header = (
        f"{'backend':<11}{'model':<15}{'plain img/s':>12}{'pipeline img/s':>15}"
        f"{'ratio':>7}{'recording':>11}{'direct':>8}{'stored':>8}{'evaluation':>12}"
        f"{'peak MB':>9}{'GFLOP/s':>9}"
    )
    lines = [header]
    for backend, models in results.items():
        for name, result in models.items():
            if "error" in result:
                lines.append(f"{backend:<11}{name:<15}{result['error']}")
                continue
            images, shares = result["images"], result["shares"]
            achieved = ""
            if "flops_per_image" in result:
                rate = result["flops_per_image"] * images / result["bare"] / 1e9
                achieved = f"{rate:.1f}"
            lines.append(
                f"{backend:<11}{name:<15}{images / result['plain']:>12.0f}"
                f"{images / result['pipeline']:>15.0f}"
                f"{result['plain'] / result['pipeline']:>7.2f}"
                f"{shares['recording']:>11.1%}{shares['direct']:>8.1%}{shares['stored']:>8.1%}"
                f"{shares['evaluation']:>12.1%}"
                f"{result['peak_memory_mb']:>9.0f}{achieved:>9}"
            )
    lines.append(f"float32 matrix product (numpy, 2048 x 2048): {gflops:.1f} GFLOP/s")
    lines.append(
        "plain: model.fit, Keras's own layers; ratio: plain time / pipeline time; "
        "recording, evaluation: wall time they add to the fit without them (noisy, may be "
        "negative); direct: time in the recorder's code; stored: time MLflow takes to store "
        "the fit's series; all as shares of the fit's time"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds per measurement")
    parser.add_argument("--train-images", type=int, default=20_000, help="images per epoch")
    parser.add_argument(
        "--min-fit-seconds", type=float, default=2.0, help="least duration of one timed fit"
    )
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--worker", nargs=2, metavar=("BACKEND", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        backend, model_name = args.worker
        timings = worker(
            backend, model_name, args.repeats, args.train_images, args.min_fit_seconds
        )
        print(json.dumps(timings))
        return

    installed = [name for name in args.backends if importlib.util.find_spec(name) is not None]
    gflops = matmul_gflops()
    results = {
        backend: {
            name: run_worker(backend, name, args.repeats, args.train_images, args.min_fit_seconds)
            for name in args.models
        }
        for backend in installed
    }
    print(table(results, gflops))
    write_json(RESULTS, {"matmul_gflops": gflops, "results": results})
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()

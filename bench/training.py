"""Where training time goes: the pipeline's fit against a plain `model.fit`, per backend.

For each Keras backend installed and each model (plain variant), one worker process trains
the same model on the same images, taking turns, for `--repeats` rounds:

- plain: `model.fit` with Keras's own loss and accuracy, no callbacks;
- recorded: the pipeline's fit with per-iteration recording and batched MLflow logging to a
  temporary SQLite store, test evaluation switched off;
- pipeline: the same with the test set evaluated every `eval_every` iterations.

It reports medians: images per second, the pipeline/plain ratio, the share of training time
spent on recording and on evaluation, each worker's peak memory, and for the CNN the
achieved GFLOP/s against a float32 matrix product timed in the same run.

    python bench/training.py [--repeats 3] [--train-images 20000] [--backends tensorflow torch]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
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
MODELS = ("softmax", "mlp", "cnn")
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


def seconds(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def worker(backend: str, arch: str, repeats: int, train_images: int) -> dict:
    """Time one model on one backend; runs in its own process (Keras fixes its backend)."""
    from nnlab import backend as keras_backend

    keras_backend.use(backend, seed=1)
    import keras

    from nnlab import paths, tracking
    from nnlab.mnist import load_mnist
    from nnlab.models import build_model, variant_of
    from nnlab.params import load_params
    from nnlab.training import EvaluationSet, StepRecorder, compile_model

    params = load_params(paths.PARAMS)
    settings = params.train
    data = load_mnist(paths.MNIST, train_limit=train_images)
    images, labels = data.x_train[..., None], data.y_train
    test_set = EvaluationSet(data.x_test[..., None], data.y_test, settings.eval_batch_size)
    variant = variant_of("plain", params.model)

    plain = build_model(arch, variant, params.arch)
    plain.compile(
        optimizer=keras.optimizers.Adam(settings.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=settings.jit_compile,
    )
    ours = build_model(arch, variant, params.arch)
    compile_model(ours, settings.learning_rate, settings.jit_compile)

    def fit(model, callbacks) -> None:
        model.fit(
            images,
            labels,
            batch_size=settings.batch_size,
            epochs=1,
            shuffle=True,
            callbacks=callbacks,
            verbose=0,
        )

    def recorder(run, eval_every: int) -> StepRecorder:
        return StepRecorder(test_set, eval_every, run)

    never = 10**9
    fit(plain, [])
    fit(ours, [recorder(None, never)])

    times: dict[str, list[float]] = {"plain": [], "recorded": [], "pipeline": []}
    with tempfile.TemporaryDirectory() as store:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}/mlflow.db"
        with tracking.start_run("bench", f"bench-{backend}-{arch}") as run:
            for _ in range(repeats):
                times["plain"].append(seconds(lambda: fit(plain, [])))
                times["recorded"].append(seconds(lambda: fit(ours, [recorder(run, never)])))
                times["pipeline"].append(
                    seconds(lambda: fit(ours, [recorder(run, settings.eval_every)]))
                )

    result = {name: statistics.median(values) for name, values in times.items()}
    result["images"] = len(images)
    if arch == "cnn":
        result["flops_per_image"] = cnn_training_flops(ours)
    return result


def run_worker(backend: str, arch: str, repeats: int, train_images: int) -> dict:
    """Start a worker process; return its timings and its peak resident memory."""
    command = [
        sys.executable,
        __file__,
        "--worker",
        backend,
        arch,
        "--repeats",
        str(repeats),
        "--train-images",
        str(train_images),
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
        f"{'backend':<11}{'model':<9}{'plain img/s':>12}{'pipeline img/s':>15}"
        f"{'ratio':>7}{'recording':>11}{'evaluation':>12}{'peak MB':>9}{'GFLOP/s':>9}"
    )
    lines = [header]
    for backend, models in results.items():
        for arch, result in models.items():
            if "error" in result:
                lines.append(f"{backend:<11}{arch:<9}{result['error']}")
                continue
            images = result["images"]
            recording = result["recorded"] / result["plain"] - 1
            evaluation = result["pipeline"] / result["recorded"] - 1
            achieved = ""
            if "flops_per_image" in result:
                rate = result["flops_per_image"] * images / result["recorded"] / 1e9
                achieved = f"{rate:.1f}"
            lines.append(
                f"{backend:<11}{arch:<9}{images / result['plain']:>12.0f}"
                f"{images / result['pipeline']:>15.0f}"
                f"{result['plain'] / result['pipeline']:>7.2f}"
                f"{recording:>11.1%}{evaluation:>12.1%}"
                f"{result['peak_memory_mb']:>9.0f}{achieved:>9}"
            )
    lines.append(f"float32 matrix product (numpy, 2048 x 2048): {gflops:.1f} GFLOP/s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds per measurement")
    parser.add_argument("--train-images", type=int, default=20_000, help="images per epoch")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--worker", nargs=2, metavar=("BACKEND", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        backend, arch = args.worker
        print(json.dumps(worker(backend, arch, args.repeats, args.train_images)))
        return

    installed = [name for name in args.backends if importlib.util.find_spec(name) is not None]
    gflops = matmul_gflops()
    results = {
        backend: {
            arch: run_worker(backend, arch, args.repeats, args.train_images)
            for arch in args.models
        }
        for backend in installed
    }
    print(table(results, gflops))
    write_json(RESULTS, {"matmul_gflops": gflops, "results": results})
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()

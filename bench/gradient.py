"""Time hand-written gradients against torch autograd (forward and backward).

Both compute the batch loss and dL/dA, dL/dB, dL/dC of the graph in params.yaml
for the same standard-normal inputs (N x K) in float64. The two are timed in
turns within one loop, their order swapped every repeat, so drifts in machine
load hit both alike; the table gives the median of each.

    python bench/gradient.py [--samples 10000] [--dim 20] [--repeats 30]

On a busy machine the thread pools of numpy and torch fight the other load and
the medians scatter; one thread each gives steadier numbers:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python bench/gradient.py
"""

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from nnlab import gradcheck, graph, paths
from nnlab.atomic import write_json
from nnlab.params import load_params

HAND_WRITTEN = "hand-written (numpy)"
AUTOGRAD = "torch autograd"
THREAD_SETTINGS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def seconds(evaluate: Callable[[], object]) -> float:
    """Wall time of one call."""
    start = time.perf_counter()
    evaluate()
    return time.perf_counter() - start


def interleaved_times(
    contenders: dict[str, Callable[[], object]], repeats: int, warmup: int
) -> dict[str, list[float]]:
    """Seconds per call of each contender, taking turns, order swapped each round."""
    for evaluate in contenders.values():
        for _ in range(warmup):
            evaluate()

    times: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else reversed(names):
            times[name].append(seconds(contenders[name]))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000, help="inputs N")
    parser.add_argument("--dim", type=int, default=20, help="size K")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls")
    args = parser.parse_args()

    params = load_params(paths.PARAMS).graph
    weights, x = graph.random_problem(args.dim, args.samples, seed=0)
    contenders = {
        HAND_WRITTEN: lambda: graph.loss_and_gradients(params, weights, x),
        AUTOGRAD: lambda: gradcheck.torch_loss_and_gradients(params, weights, x),
    }
    times = interleaved_times(contenders, args.repeats, args.warmup)
    medians = {name: statistics.median(each) for name, each in times.items()}
    fastest = {name: min(each) for name, each in times.items()}
    ratio = medians[AUTOGRAD] / medians[HAND_WRITTEN]

    print(f"N = {args.samples}, K = {args.dim}, {args.repeats} repeats, {params}")
    print(f"| {'method':<22} | median ms | fastest ms |")
    print(f"| {'-' * 22} | --------: | ---------: |")
    for name in times:
        median_ms, fastest_ms = 1e3 * medians[name], 1e3 * fastest[name]
        print(f"| {name:<22} | {median_ms:9.3f} | {fastest_ms:10.3f} |")
    print(f"torch autograd / hand-written, medians: {ratio:.2f}")

    write_json(
        paths.GRADIENT_BENCHMARK,
        {
            "samples": args.samples,
            "dim": args.dim,
            "repeats": args.repeats,
            "graph": params.model_dump(),
            "median_seconds": medians,
            "fastest_seconds": fastest,
            "autograd_to_hand_written_ratio": ratio,
            "threads": {
                "torch": torch.get_num_threads(),
                **{name: os.environ.get(name, "") for name in THREAD_SETTINGS},
            },
            "versions": {
                "python": platform.python_version(),
                "numpy": np.__version__,
                "torch": torch.__version__,
            },
        },
    )
    print(f"written to {paths.GRADIENT_BENCHMARK}")


if __name__ == "__main__":
    main()

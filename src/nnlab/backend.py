"""Choose the Keras backend and make its training reproducible.

Keras reads its backend once, when it is first imported, so `use()` must run before
anything imports keras (the modules `models`, `training` and `classifier` do).
"""

from __future__ import annotations

import os
import sys


def use(backend: str, seed: int) -> None:
    """Select `backend` (tensorflow, torch, jax), seed every generator, use deterministic ops."""
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != backend:
            raise RuntimeError(
                f"keras was already imported with backend {keras.backend.backend()!r}; "
                f"cannot switch to {backend!r} in the same process"
            )
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if backend == "tensorflow":
        import tensorflow as tf

        # Op determinism alone is not enough on CPU: with independent ops run concurrently,
        # the batch-normalized CNN's weights differed in the last bits from run to run.
        # One op at a time (each op still uses every core) made them equal, with no
        # measurable slowdown here.
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.config.experimental.enable_op_determinism()

    import keras

    keras.utils.set_random_seed(seed)
    if backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True)

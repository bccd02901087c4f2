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

    import keras

    keras.utils.set_random_seed(seed)
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True)

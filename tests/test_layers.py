"""The fused batch normalization computes what Keras's batch normalization computes.

The comparison on TensorFlow runs in a child process: this test process uses another Keras
backend, and Keras picks its backend once per process.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import layers

from nnlab.layers import FusedBatchNormalization

# Runs on TensorFlow: both layers get equal weights and the same batch; prints, per shape,
# the largest relative difference of each result and the graph's operation types.
COMPARE_ON_TENSORFLOW = """
import json, sys
import numpy as np, keras, tensorflow as tf
from nnlab.layers import FusedBatchNormalization

rng = np.random.default_rng(0)
report = {}
for shape in [(50, 9, 9, 6), (40, 7), (1, 7), (3, 5, 4)]:
    x = tf.constant(rng.normal(2.0, 3.0, shape).astype("float32"))
    keras_layer = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3)
    fused_layer = FusedBatchNormalization(momentum=0.9, epsilon=1e-3)
    weights = [rng.normal(size=(shape[-1],)).astype("float32") for _ in range(4)]
    weights[3] = np.abs(weights[3]) + 0.5
    results = []
    for layer in (keras_layer, fused_layer):
        layer.build(shape)
        layer.set_weights(weights)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.sin(x))
        grads = tape.gradient(loss, [x, layer.gamma.value, layer.beta.value])
        inference = layer(x, training=False)
        results.append(
            [y, *grads, layer.moving_mean.value, layer.moving_variance.value, inference]
        )
    names = ["output", "dx", "dgamma", "dbeta", "moving_mean", "moving_variance", "inference"]
    report[str(shape)] = {
        name: float(np.max(np.abs(a - b)) / (np.max(np.abs(a)) + 1e-12))
        for name, a, b in zip(names, *[[np.asarray(t) for t in r] for r in results])
    }
graph = tf.function(lambda t: fused_layer(t, training=True)).get_concrete_function(x).graph
report["ops"] = sorted({op.type for op in graph.get_operations()})
json.dump(report, sys.stdout)
"""


@pytest.fixture(scope="module")
def tensorflow_report() -> dict:
    environment = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", COMPARE_ON_TENSORFLOW],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(result.stdout)


def test_tensorflow_runs_the_fused_kernel(tensorflow_report):
    assert "FusedBatchNormV3" in tensorflow_report["ops"]


@pytest.mark.parametrize("shape", ["(50, 9, 9, 6)", "(40, 7)", "(1, 7)", "(3, 5, 4)"])
def test_fused_equals_keras_in_outputs_gradients_and_moving_statistics(tensorflow_report, shape):
    differences = tensorflow_report[shape]
    assert set(differences) == {
        "output",
        "dx",
        "dgamma",
        "dbeta",
        "moving_mean",
        "moving_variance",
        "inference",
    }
    worst = max(differences, key=differences.get)
    assert differences[worst] < 1e-5, f"{worst} differs by {differences[worst]:.2e}"


def test_other_backends_compute_exactly_what_keras_computes():
    x = np.random.default_rng(1).normal(size=(16, 5)).astype("float32")
    keras_layer = layers.BatchNormalization(momentum=0.8)
    fused_layer = FusedBatchNormalization(momentum=0.8)
    for layer in (keras_layer, fused_layer):
        layer.build(x.shape)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(keras_layer(x, training=True)),
        keras.ops.convert_to_numpy(fused_layer(x, training=True)),
    )
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(keras_layer.moving_variance),
        keras.ops.convert_to_numpy(fused_layer.moving_variance),
    )


def test_saved_model_loads_back_with_its_settings(tmp_path):
    model = keras.Sequential(
        [keras.Input((4,)), FusedBatchNormalization(momentum=0.7, epsilon=0.01)]
    )
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    layer = loaded.layers[0]
    assert type(layer) is FusedBatchNormalization
    assert (layer.momentum, layer.epsilon) == (0.7, 0.01)

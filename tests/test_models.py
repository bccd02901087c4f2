"""The three classifiers are built layer by layer as the study describes them."""

import json
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
from keras import layers

from nnlab.models import Variant, build_model, load_model, save_model, variant_of
from nnlab.params import load_params

PARAMS = load_params()


def layer_kinds(arch: str, variant: str) -> list[str]:
    model = build_model(arch, variant_of(variant, PARAMS.model), PARAMS.arch)
    return [type(layer).__name__ for layer in model.layers]


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("plain", ["Rescaling", "Flatten", "Dense"]),
        ("batchnorm", ["Rescaling", "Flatten", "FusedBatchNormalization", "Dense"]),
        ("dropout", ["Rescaling", "Flatten", "Dropout", "Dense"]),
    ],
)
def test_softmax_layers_in_order(variant, expected):
    assert layer_kinds("softmax", variant) == expected


@pytest.mark.parametrize(
    ("variant", "extra"),
    [("plain", []), ("batchnorm", ["FusedBatchNormalization"]), ("dropout", ["Dropout"])],
)
def test_mlp_adds_the_variant_layer_after_each_hidden_layer(variant, extra):
    expected = ["Rescaling", "Flatten", "Dense", *extra, "Dense", *extra, "Dense"]
    assert layer_kinds("mlp", variant) == expected


def test_cnn_batchnorm_follows_each_convolution():
    assert layer_kinds("cnn", "batchnorm") == [
        "Rescaling",
        "Conv2D",
        "FusedBatchNormalization",
        "MaxPooling2D",
        "Conv2D",
        "FusedBatchNormalization",
        "MaxPooling2D",
        "Flatten",
        "Dense",
        "Dense",
    ]


def test_cnn_dropout_sits_only_after_the_dense_layer():
    kinds = layer_kinds("cnn", "dropout")
    assert kinds.count("Dropout") == 1
    assert kinds[kinds.index("Dropout") - 1 : kinds.index("Dropout") + 2] == [
        "Dense",
        "Dropout",
        "Dense",
    ]


@pytest.mark.parametrize(
    ("arch", "variant", "parameters"),
    [
        ("softmax", "plain", 784 * 10 + 10),
        ("softmax", "batchnorm", 784 * 10 + 10 + 4 * 784),
        ("mlp", "plain", (784 * 128 + 128) + (128 * 64 + 64) + (64 * 10 + 10)),
        ("mlp", "batchnorm", 109_386 + 4 * 128 + 4 * 64),
        ("cnn", "plain", 32 * 10 + 64 * (9 * 32 + 1) + (5 * 5 * 64 * 128 + 128) + 1290),
        ("cnn", "batchnorm", 225_034 + 4 * 32 + 4 * 64),
    ],
)
def test_parameter_counts(arch, variant, parameters):
    model = build_model(arch, variant_of(variant, PARAMS.model), PARAMS.arch)
    assert model.count_params() == parameters


def test_dropout_layers_use_the_configured_rate():
    model = build_model("mlp", Variant(dropout_rate=0.8), PARAMS.arch)
    rates = [layer.rate for layer in model.layers if isinstance(layer, layers.Dropout)]
    assert rates == [0.8, 0.8]


def test_model_outputs_class_probabilities():
    model = build_model("softmax", Variant(), PARAMS.arch)
    assert model.output_shape == (None, 10)
    assert model.layers[-1].activation.__name__ == "softmax"


def test_unknown_architecture_is_refused_with_the_allowed_names():
    with pytest.raises(ValueError, match="allowed: softmax, mlp, cnn"):
        build_model("resnet", Variant(), PARAMS.arch)


def test_unknown_variant_is_refused_with_the_allowed_names():
    with pytest.raises(ValueError, match="allowed: plain, batchnorm, dropout"):
        variant_of("weightnorm", PARAMS.model)


# Builds the batch-normalized MLP with fixed seeds and saves it where the first argument says.
BUILD_AND_SAVE = """
import sys
from pathlib import Path
from nnlab import backend
backend.use("tensorflow", 1)
from nnlab.models import build_model, save_model, variant_of
from nnlab.params import load_params
params = load_params()
model = build_model("mlp", variant_of("batchnorm", params.model), params.arch)
save_model(model, Path(sys.argv[1]))
"""


def test_the_same_model_saved_by_two_processes_gives_the_same_bytes(tmp_path):
    saved = [tmp_path / "first.keras", tmp_path / "second.keras"]
    for path in saved:  # each process takes seconds: Keras's time stamps would differ
        subprocess.run([sys.executable, "-c", BUILD_AND_SAVE, str(path)], check=True)

    assert saved[0].read_bytes() == saved[1].read_bytes()
    with zipfile.ZipFile(saved[1]) as archive:
        metadata = json.loads(archive.read("metadata.json"))
        config = archive.read("config.json").decode()
    assert metadata["keras_version"] == keras.__version__
    assert '"shared_object_id": 1' in config


def test_a_saved_model_loads_back_with_the_same_predictions(tmp_path):
    model = build_model("cnn", variant_of("batchnorm", PARAMS.model), PARAMS.arch)
    save_model(model, tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")

    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1)).astype("float32")
    np.testing.assert_array_equal(
        loaded.predict(images, verbose=0), model.predict(images, verbose=0)
    )

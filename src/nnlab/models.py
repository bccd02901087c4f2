"""Keras builders for the study's three MNIST classifiers and their variants.

| model   | layers (variant layers in brackets)                                        |
|---------|----------------------------------------------------------------------------|
| softmax | flatten, [bn], [dropout], dense 10 softmax                                 |
| mlp     | dense 128 relu, [bn], [dropout], dense 64 relu, [bn], [dropout], dense 10  |
| cnn     | conv relu, [bn], pool, conv relu, [bn], pool, flatten, dense 128 relu,     |
|         | [dropout], dense 10 softmax                                                |

Every model takes raw pixels (28 x 28 x 1, values 0 to 255) and rescales them itself, so a
saved model needs no separate preprocessing.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
from keras import layers

from nnlab.layers import FusedBatchNormalization
from nnlab.params import ArchParams, BatchnormParams, ModelParams
from nnlab.training import BatchMean

IMAGE_SHAPE = (28, 28, 1)
CLASSES = 10
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold


@dataclass(frozen=True)
class Variant:
    """What a variant adds to a model: batch normalization, dropout, or neither."""

    batchnorm: BatchnormParams | None = None
    dropout_rate: float | None = None


def variant_of(name: str, model_params: ModelParams) -> Variant:
    """The layers that the variant `name` (plain, batchnorm, dropout) adds."""
    if name == "plain":
        return Variant()
    if name == "batchnorm":
        return Variant(batchnorm=model_params.batchnorm)
    if name == "dropout":
        return Variant(dropout_rate=model_params.dropout)
    raise ValueError(f"unknown variant {name!r}; allowed: plain, batchnorm, dropout")


def build_model(arch: str, variant: Variant, arch_params: ArchParams) -> keras.Sequential:
    """The Keras model of architecture `arch` (softmax, mlp, cnn) with `variant`'s layers."""
    if arch == "softmax":
        body = _softmax_body(variant)
    elif arch == "mlp":
        body = _mlp_body(variant, arch_params.mlp.hidden)
    elif arch == "cnn":
        cnn = arch_params.cnn
        body = _cnn_body(variant, cnn.filters, cnn.kernel_size, cnn.dense)
    else:
        raise ValueError(f"unknown architecture {arch!r}; allowed: softmax, mlp, cnn")

    return keras.Sequential(
        [
            keras.Input(shape=IMAGE_SHAPE),
            layers.Rescaling(1 / 255),
            *body,
            layers.Dense(CLASSES, activation="softmax"),
        ],
        name=arch,
    )


def save_model(model: keras.Model, path: Path) -> None:
    """Save `model` as a `.keras` archive whose bytes depend on the model alone.

    Keras stamps the archive with the moment of saving (`date_saved` in `metadata.json` and
    the weights entry's date) and marks objects shared between layers with their memory
    addresses (`shared_object_id` in `config.json`), so an identical model saved by another
    process would get a new hash and DVC would see a changed output after every re-run. The
    stamps are set to the zip format's first date, 1980-01-01, and the shared objects are
    numbered in order of appearance; everything else Keras wrote is kept as it was.
    """
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for info, content in entries:
            if info.filename == "metadata.json":
                metadata = json.loads(content)
                metadata["date_saved"] = "1980-01-01@00:00:00"
                content = json.dumps(metadata).encode()
            elif info.filename == "config.json":
                content = json.dumps(_number_shared_objects(json.loads(content))).encode()
            fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_EPOCH)
            fixed.compress_type = info.compress_type
            fixed.external_attr = info.external_attr
            archive.writestr(fixed, content)


def _number_shared_objects(config: Any, numbers: dict[int, int] | None = None) -> Any:
    """`config` with each distinct `shared_object_id` replaced by 1, 2, ... as first met."""
    numbers = {} if numbers is None else numbers
    if isinstance(config, list):
        return [_number_shared_objects(item, numbers) for item in config]
    if not isinstance(config, dict):
        return config
    numbered = {key: _number_shared_objects(value, numbers) for key, value in config.items()}
    if "shared_object_id" in numbered:
        numbered["shared_object_id"] = numbers.setdefault(
            numbered["shared_object_id"], len(numbers) + 1
        )
    return numbered


def load_model(path: Path) -> keras.Model:
    """A model saved by a training stage, compiled as it was trained."""
    custom_objects = {
        "FusedBatchNormalization": FusedBatchNormalization,
        "BatchMean": BatchMean,
    }
    return keras.saving.load_model(path, custom_objects=custom_objects)


def _softmax_body(variant: Variant) -> list[layers.Layer]:
    return [layers.Flatten(), *_regularizers(variant)]


def _mlp_body(variant: Variant, hidden: tuple[int, ...]) -> list[layers.Layer]:
    body: list[layers.Layer] = [layers.Flatten()]
    for units in hidden:
        body.append(layers.Dense(units, activation="relu"))
        body.extend(_regularizers(variant))
    return body


def _cnn_body(
    variant: Variant, filters: tuple[int, int], kernel_size: int, dense: int
) -> list[layers.Layer]:
    body: list[layers.Layer] = []
    for count in filters:
        body.append(layers.Conv2D(count, kernel_size, activation="relu"))
        body.extend(_batchnorm(variant))
        body.append(layers.MaxPooling2D(2))
    body.append(layers.Flatten())
    body.append(layers.Dense(dense, activation="relu"))
    body.extend(_dropout(variant))
    return body


def _regularizers(variant: Variant) -> list[layers.Layer]:
    return [*_batchnorm(variant), *_dropout(variant)]


def _batchnorm(variant: Variant) -> list[layers.Layer]:
    if variant.batchnorm is None:
        return []
    settings = variant.batchnorm
    return [FusedBatchNormalization(momentum=settings.momentum, epsilon=settings.epsilon)]


def _dropout(variant: Variant) -> list[layers.Layer]:
    if variant.dropout_rate is None:
        return []
    return [layers.Dropout(variant.dropout_rate)]

"""Load params.yaml into typed, frozen objects, checked once before any work starts.

Every section of params.yaml has a model here. Unknown keys, missing keys, wrong types
(including a number written as a quoted string) and out-of-range values are refused with
a `ParamsError` that names the key, the value and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

ARCHS = ("softmax", "mlp", "cnn")
VARIANTS = ("plain", "batchnorm", "dropout")

Arch = Literal["softmax", "mlp", "cnn"]
Variant = Literal["plain", "batchnorm", "dropout"]
Backend = Literal["tensorflow", "torch", "jax"]

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
DropoutRate = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]


class ParamsError(ValueError):
    """params.yaml holds a value the study cannot run with."""


class Section(BaseModel):
    """A strict, frozen section: no extra keys, no type coercion."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class DownloadParams(Section):
    mirrors: tuple[str, ...]
    timeout_s: PositiveFloat
    fallback_package: str


class DataParams(Section):
    train_limit: Annotated[int, Field(ge=0)]
    test_limit: Annotated[int, Field(ge=0)]


class BackendParams(Section):
    softmax: Backend
    mlp: Backend
    cnn: Backend


class TrainParams(Section):
    epochs: PositiveInt
    batch_size: Annotated[int, Field(gt=0, le=60_000)]
    learning_rate: PositiveFloat
    eval_every: PositiveInt
    eval_batch_size: PositiveInt
    allow_divergence: bool
    jit_compile: bool
    backend: BackendParams


class SoftmaxArch(Section):
    pass


class MlpArch(Section):
    hidden: tuple[PositiveInt, ...] = Field(min_length=1)


class CnnArch(Section):
    filters: tuple[PositiveInt, PositiveInt]
    kernel_size: PositiveInt
    dense: PositiveInt


class ArchParams(Section):
    softmax: SoftmaxArch
    mlp: MlpArch
    cnn: CnnArch


class PlainParams(Section):
    pass


class BatchnormParams(Section):
    momentum: Annotated[float, Field(gt=0, lt=1)]
    epsilon: PositiveFloat


class ModelParams(Section):
    plain: PlainParams
    batchnorm: BatchnormParams
    dropout: DropoutRate


class SweepParams(Section):
    dropout_rates: tuple[DropoutRate, ...] = Field(min_length=1)


class GraphParams(Section):
    combine: Literal["add", "multiply"]
    loss: Literal["mean_square", "sum_square"]
    activation: Literal["sigmoid", "tanh", "relu"]


class GradcheckParams(Section):
    dims: tuple[PositiveInt, ...] = Field(min_length=1)
    seeds: tuple[int, ...] = Field(min_length=1)
    samples: PositiveInt
    fd_step: PositiveFloat
    tolerance_torch: PositiveFloat
    tolerance_fd: PositiveFloat
    table_dim: PositiveInt
    table_seed: int


class DescentParams(Section):
    dims: tuple[PositiveInt, ...] = Field(min_length=1)
    learning_rates: tuple[PositiveFloat, ...] = Field(min_length=1)
    samples: PositiveInt
    iterations: PositiveInt
    update: Literal["per_sample", "full_batch"]


class Params(Section):
    seed: int
    download: DownloadParams
    data: DataParams
    train: TrainParams
    arch: ArchParams
    model: ModelParams
    sweep: SweepParams
    graph: GraphParams
    gradcheck: GradcheckParams
    descent: DescentParams

    @model_validator(mode="after")
    def _batch_fits_training_set(self) -> Params:
        train_size = self.data.train_limit or 60_000
        if self.train.batch_size > train_size:
            raise ValueError(
                f"train.batch_size: {self.train.batch_size} is larger than the training "
                f"set ({train_size} images); allowed: 1 to {train_size}"
            )
        return self


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and check params.yaml; raise ParamsError naming every bad key."""
    path = Path(path)
    try:
        with path.open() as stream:
            raw = YAML(typ="safe").load(stream)
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML: {error}") from None
    return parse_params(raw, source=str(path))


def parse_params(raw: Any, source: str = "params") -> Params:
    """Check a mapping as read from params.yaml and return it as `Params`."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(_lists_to_tuples(raw))
    except ValidationError as error:
        problems = "\n".join(f"  {_describe(item)}" for item in error.errors())
        raise ParamsError(f"{source}: {error.error_count()} bad setting(s):\n{problems}") from None


def flatten(params: BaseModel | dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys and leaf values, as MLflow and `dvc params` show them."""
    items = params.model_dump() if isinstance(params, BaseModel) else params
    flat: dict[str, Any] = {}
    for key, value in items.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, prefix=f"{dotted}."))
        elif isinstance(value, dict):
            flat[dotted] = "{}"
        else:
            flat[dotted] = list(value) if isinstance(value, tuple) else value
    return flat


def _lists_to_tuples(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _lists_to_tuples(item) for key, item in value.items()}
    if isinstance(value, list):
        return tuple(_lists_to_tuples(item) for item in value)
    return value


def _describe(item: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in item["loc"]) or "(top level)"
    message = item["msg"].removeprefix("Value error, ")
    if item["type"] == "missing":
        return f"{key}: missing (required)"
    if item["type"] == "extra_forbidden":
        return f"{key}: unknown key ({item['input']!r}); check its spelling"
    if message.startswith(f"{key}:"):
        return message
    return f"{key}: {message} (got {item['input']!r})"

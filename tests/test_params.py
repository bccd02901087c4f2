"""params.yaml is checked once, with errors that name the key, the value and what is allowed."""

import copy
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from nnlab.params import ParamsError, flatten, load_params, parse_params

with open("params.yaml") as stream:
    DEFAULTS = YAML(typ="safe").load(stream)


def with_setting(dotted_key: str, value) -> dict:
    raw = copy.deepcopy(DEFAULTS)
    *parents, leaf = dotted_key.split(".")
    section = raw
    for parent in parents:
        section = section[parent]
    section[leaf] = value
    return raw


def error_for(raw: dict) -> str:
    with pytest.raises(ParamsError) as caught:
        parse_params(raw)
    return str(caught.value)


def test_committed_params_are_valid():
    params = load_params()
    assert params.train.epochs == 8
    assert params.model.dropout == 0.5


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("model.dropout", 1.0, "model.dropout: Input should be less than 1 (got 1.0)"),
        ("model.dropout", -0.1, "model.dropout: Input should be greater than or equal to 0"),
        ("train.epochs", 0, "train.epochs: Input should be greater than 0 (got 0)"),
        ("train.epochs", -3, "train.epochs: Input should be greater than 0 (got -3)"),
        ("train.batch_size", 0, "train.batch_size: Input should be greater than 0 (got 0)"),
        ("train.eval_every", 0, "train.eval_every: Input should be greater than 0 (got 0)"),
        ("train.learning_rate", 0.0, "train.learning_rate: Input should be greater than 0"),
        ("train.learning_rate", "fast", "train.learning_rate: Input should be a valid number"),
        ("train.learning_rate", "0.001", "train.learning_rate: Input should be a valid number"),
        ("train.epochs", "8", "train.epochs: Input should be a valid integer (got '8')"),
        ("train.backend.cnn", "theano", "train.backend.cnn: Input should be 'tensorflow'"),
        ("graph.combine", "concat", "graph.combine: Input should be 'add' or 'multiply'"),
        ("descent.dims", [8, 0], "descent.dims.1: Input should be greater than 0 (got 0)"),
        ("gradcheck.dims", [0], "gradcheck.dims.0: Input should be greater than 0 (got 0)"),
    ],
)
def test_bad_value_is_named_with_what_is_allowed(key, value, expected):
    assert expected in error_for(with_setting(key, value))


def test_batch_larger_than_training_set_is_refused():
    raw = with_setting("data.train_limit", 1000)
    raw["train"]["batch_size"] = 2000
    message = error_for(raw)
    assert "train.batch_size: 2000 is larger than the training set (1000 images)" in message


def test_misspelt_key_is_refused_by_name():
    message = error_for(with_setting("model.dropuot", 0.8))
    assert "model.dropuot: unknown key (0.8); check its spelling" in message


def test_missing_key_is_named():
    raw = copy.deepcopy(DEFAULTS)
    del raw["train"]["epochs"]
    assert "train.epochs: missing (required)" in error_for(raw)


def test_every_bad_key_is_listed_at_once():
    raw = with_setting("train.epochs", 0)
    raw["model"]["dropout"] = 2.0
    message = error_for(raw)
    assert "2 bad setting(s)" in message
    assert "train.epochs" in message
    assert "model.dropout" in message


def test_integer_is_accepted_where_a_float_is_expected():
    assert parse_params(with_setting("train.learning_rate", 1)).train.learning_rate == 1.0


def test_scientific_notation_reads_as_a_float(tmp_path):
    text = Path("params.yaml").read_text().replace("learning_rate: 0.001", "learning_rate: 1e-3")
    path = tmp_path / "params.yaml"
    path.write_text(text)
    assert load_params(path).train.learning_rate == 0.001


def test_lists_become_tuples_so_params_cannot_change():
    params = parse_params(with_setting("arch.mlp.hidden", [256, 128]))
    assert params.arch.mlp.hidden == (256, 128)


def test_unreadable_yaml_names_the_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(path)


def test_flatten_gives_dotted_keys():
    flat = flatten(load_params())
    assert flat["train.epochs"] == 8
    assert flat["arch.mlp.hidden"] == [128, 64]
    assert flat["model.plain"] == "{}"

"""The training benchmark runs end to end on a small workspace and reports every column."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ruamel.yaml import YAML

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    (tmp_path / "data").mkdir()
    np.savez(
        tmp_path / "data" / "mnist.npz",
        x_train=rng.integers(0, 256, (400, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, 400, dtype=np.uint8),
        x_test=rng.integers(0, 256, (100, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, 100, dtype=np.uint8),
    )
    yaml = YAML()
    params = yaml.load(PROJECT / "params.yaml")
    params["train"]["batch_size"] = 50
    params["train"]["eval_every"] = 2
    params["train"]["eval_batch_size"] = 50
    yaml.dump(params, tmp_path / "params.yaml")
    return tmp_path


@pytest.mark.slow
def test_training_benchmark_compares_plain_and_pipeline_fits(workspace):
    command = [
        sys.executable,
        str(PROJECT / "bench" / "training.py"),
        *("--repeats", "1", "--train-images", "400", "--min-fit-seconds", "0.3"),
        *("--backends", "tensorflow", "--models", "softmax", "cnn-batchnorm"),
    ]
    result = subprocess.run(
        command, cwd=workspace, capture_output=True, text=True, timeout=600, check=True
    )

    rows = [line.split() for line in result.stdout.splitlines()]
    assert [row[:2] for row in rows if row[:1] == ["tensorflow"]] == [
        ["tensorflow", "softmax"],
        ["tensorflow", "cnn-batchnorm"],
    ]
    report = json.loads((workspace / "bench" / "results" / "training.json").read_text())
    for name in ("softmax", "cnn-batchnorm"):
        measured = report["results"]["tensorflow"][name]
        assert measured["images"] == 400 * measured["epochs"]
        for column in ("plain", "bare", "recorded", "pipeline", "recording", "stored"):
            assert measured[column] > 0, column
        assert measured["peak_memory_mb"] > 0
        assert measured["recording"] < measured["recorded"]
        assert set(measured["shares"]) == {"recording", "direct", "stored", "evaluation"}
        assert 0 < measured["shares"]["direct"] < 1
    assert report["results"]["tensorflow"]["softmax"]["epochs"] > 1
    assert report["results"]["tensorflow"]["cnn-batchnorm"]["flops_per_image"] > 0

"""`nnlab check` gates results on thresholds and refuses results older than the code."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nnlab import check

THRESHOLDS = {
    "metrics/train/cnn-plain.json": {"test.accuracy": {"min": 0.985}},
    "metrics/gradcheck.json": {"torch.max_rel_error": {"max": 1e-10}},
    "metrics/descent.json": {"*.*.final_loss": {"below": "initial_loss", "unless": "diverged"}},
}


def write(root: Path, relative: str, document: dict) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))


@pytest.fixture
def results(tmp_path: Path) -> Path:
    write(tmp_path, "metrics/train/cnn-plain.json", {"test": {"accuracy": 0.99}})
    write(tmp_path, "metrics/gradcheck.json", {"torch": {"max_rel_error": 1e-16}})
    write(
        tmp_path,
        "metrics/descent.json",
        {
            "k8": {
                "lr_0.01": {"initial_loss": 60.0, "final_loss": 0.1, "diverged": 0},
                "lr_10": {"initial_loss": 60.0, "final_loss": 1e30, "diverged": 1},
            }
        },
    )
    return tmp_path


def failures(results: Path) -> list[check.Verdict]:
    return [v for v in check.check_thresholds(THRESHOLDS, results) if not v.passed]


def test_results_within_thresholds_pass(results):
    assert failures(results) == []


def test_accuracy_below_its_minimum_fails_naming_the_metric(results):
    write(results, "metrics/train/cnn-plain.json", {"test": {"accuracy": 0.98}})
    (failure,) = failures(results)
    assert failure.metric == "metrics/train/cnn-plain.json:test.accuracy"
    assert failure.value == "0.98"


def test_gradient_error_above_its_maximum_fails(results):
    write(results, "metrics/gradcheck.json", {"torch": {"max_rel_error": 1e-6}})
    assert [f.metric for f in failures(results)] == ["metrics/gradcheck.json:torch.max_rel_error"]


def test_descent_that_did_not_lower_the_loss_fails(results):
    write(
        results,
        "metrics/descent.json",
        {"k8": {"lr_0.01": {"initial_loss": 60.0, "final_loss": 61.0, "diverged": 0}}},
    )
    assert [f.metric for f in failures(results)] == ["metrics/descent.json:k8.lr_0.01.final_loss"]


def test_diverged_descent_case_is_skipped_not_failed(results):
    verdicts = check.check_thresholds(THRESHOLDS, results)
    skipped = [v for v in verdicts if v.metric.endswith("lr_10.final_loss")]
    assert skipped[0].passed
    assert skipped[0].note == "skipped: diverged"


def test_missing_metrics_file_is_a_named_failure(results):
    (results / "metrics/gradcheck.json").unlink()
    (failure,) = failures(results)
    assert (failure.metric, failure.note) == ("metrics/gradcheck.json", "metrics file missing")


def test_missing_key_is_a_named_failure(results):
    write(results, "metrics/train/cnn-plain.json", {"test": {"loss": 0.03}})
    (failure,) = failures(results)
    assert failure.note == "key missing"
    assert failure.metric == "metrics/train/cnn-plain.json:test.accuracy"


def test_malformed_rule_is_refused(tmp_path):
    path = tmp_path / "thresholds.yaml"
    path.write_text("metrics/a.json:\n  accuracy: {atleast: 0.9}\n")
    with pytest.raises(check.ThresholdsError, match="allowed keys: min, max, below, unless"):
        check.load_thresholds(path)


def test_table_shows_value_threshold_and_verdict(results):
    write(results, "metrics/train/cnn-plain.json", {"test": {"accuracy": 0.98}})
    table = check.render(check.check_thresholds(THRESHOLDS, results))
    assert "metrics/train/cnn-plain.json:test.accuracy  0.98" in table
    assert ">= 0.985" in table
    assert "FAIL" in table


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def dvc(repo: Path, *args: str) -> None:
    environment = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    dvc_command = [str(Path(sys.executable).parent / "dvc"), *args]
    subprocess.run(dvc_command, cwd=repo, check=True, capture_output=True, env=environment)


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    """A committed one-stage DVC pipeline with a cached output and a committed metric."""
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "test@example.com")
    git(tmp_path, "config", "user.name", "test")
    dvc(tmp_path, "init", "-q")
    (tmp_path / "params.yaml").write_text("scale: 2\n")
    (tmp_path / "make.py").write_text(
        "import json, pathlib, yaml\n"
        "scale = yaml.safe_load(open('params.yaml'))['scale']\n"
        "pathlib.Path('model.bin').write_bytes(bytes([scale]))\n"
        "json.dump({'score': scale}, open('score.json', 'w'))\n"
    )
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n"
        "  make:\n"
        f"    cmd: {sys.executable} make.py\n"
        "    deps: [make.py]\n"
        "    params: [scale]\n"
        "    outs: [model.bin]\n"
        "    metrics:\n"
        "      - score.json:\n"
        "          cache: false\n"
    )
    dvc(tmp_path, "repro")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "results")
    return tmp_path


def test_up_to_date_results_are_not_stale(pipeline):
    assert check.find_stale(pipeline) == []


def test_missing_cached_output_on_a_fresh_clone_is_not_stale(pipeline):
    (pipeline / "model.bin").unlink()
    assert check.find_stale(pipeline) == []


def test_changed_param_without_rerun_is_stale(pipeline):
    (pipeline / "params.yaml").write_text("scale: 3\n")
    assert check.find_stale(pipeline) == ["make: param scale modified"]


def test_changed_code_without_rerun_is_stale(pipeline):
    with (pipeline / "make.py").open("a") as script:
        script.write("# a change\n")
    assert check.find_stale(pipeline) == ["make: make.py modified"]


def test_edited_committed_metric_is_stale(pipeline):
    (pipeline / "score.json").write_text('{"score": 9}')
    assert check.find_stale(pipeline) == ["make: output score.json modified"]

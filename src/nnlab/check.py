"""Check committed results: metric thresholds, and results that no longer match the code.

`nnlab check` prints a table of metric, value, threshold and verdict and exits non-zero
naming every failure. A missing metrics file or key is a failure, not a crash. Results are
stale when `dvc status` finds a stage whose code, params or committed outputs differ from
dvc.lock; outputs that live only in the DVC cache being absent (a fresh clone) is not stale.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

THRESHOLDS = Path("thresholds.yaml")
RULES = ("min", "max", "below", "unless")


class ThresholdsError(ValueError):
    """thresholds.yaml itself is malformed."""


@dataclass(frozen=True)
class Verdict:
    metric: str
    value: str
    threshold: str
    passed: bool
    note: str = ""


def load_thresholds(path: Path = THRESHOLDS) -> dict[str, dict[str, dict[str, Any]]]:
    """The thresholds file as {metrics file: {dotted key pattern: rule}}, checked."""
    with path.open() as stream:
        document = YAML(typ="safe").load(stream) or {}
    for file, keys in document.items():
        for key, rule in (keys or {}).items():
            unknown = set(rule) - set(RULES) if isinstance(rule, dict) else {"(not a map)"}
            if unknown or not {"min", "max", "below"} & set(rule):
                raise ThresholdsError(
                    f"{path}: {file} {key}: rule {rule!r} is not understood; "
                    f"allowed keys: {', '.join(RULES)} (one of min, max, below required)"
                )
    return document


def check_thresholds(
    thresholds: dict[str, dict[str, dict[str, Any]]], root: Path = Path()
) -> list[Verdict]:
    """One verdict per metric that a rule covers, plus one per missing file or key."""
    verdicts = []
    for file, keys in thresholds.items():
        path = root / file
        try:
            metrics = json.loads(path.read_text())
        except FileNotFoundError:
            verdicts.append(Verdict(file, "-", "-", False, "metrics file missing"))
            continue
        except json.JSONDecodeError as error:
            verdicts.append(Verdict(file, "-", "-", False, f"not valid JSON: {error}"))
            continue
        flat = _flatten(metrics)
        for pattern, rule in keys.items():
            verdicts.extend(_apply(file, pattern, rule, flat))
    return verdicts


def find_stale(root: Path = Path()) -> list[str]:
    """Stages whose committed lock does not match the code, params or committed outputs."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        status = repo.status()
    problems = []
    for address, changes in status.items():
        stage = address.rpartition(":")[2]
        for change in changes:
            problems.extend(f"{stage}: {detail}" for detail in _stale_details(change))
    return problems


def _stale_details(change: Any) -> list[str]:
    if isinstance(change, str):
        return [change]
    details = []
    for kind, items in change.items():
        if kind == "changed deps":
            for dep, state in items.items():
                if isinstance(state, dict):
                    details += [f"param {key} {how}" for key, how in state.items()]
                elif state != "deleted":
                    details.append(f"{dep} {state}")
        elif kind == "changed outs":
            details += [
                f"output {out} {state}"
                for out, state in items.items()
                if state not in ("deleted", "not in cache")
            ]
        else:
            details.append(f"{kind}: {items}")
    return details


def render(verdicts: list[Verdict]) -> str:
    """A plain table: metric, value, threshold, verdict."""
    rows = [("metric", "value", "threshold", "verdict")]
    for verdict in verdicts:
        outcome = "ok" if verdict.passed else "FAIL"
        if verdict.note:
            outcome += f" ({verdict.note})"
        rows.append((verdict.metric, verdict.value, verdict.threshold, outcome))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    )


def main(argv: list[str] | None = None) -> int:
    """Check thresholds and staleness; return the exit status."""
    parser = argparse.ArgumentParser(prog="nnlab check", description=__doc__.splitlines()[0])
    parser.add_argument("--thresholds", type=Path, default=THRESHOLDS)
    parser.add_argument(
        "--no-stale", action="store_true", help="skip the comparison with dvc.lock"
    )
    args = parser.parse_args(argv)

    try:
        verdicts = check_thresholds(load_thresholds(args.thresholds))
    except (OSError, ThresholdsError) as error:
        print(f"cannot check: {error}")
        return 2
    print(render(verdicts))
    failures = [
        f"{verdict.metric}: {verdict.note or f'{verdict.value} outside {verdict.threshold}'}"
        for verdict in verdicts
        if not verdict.passed
    ]
    if not args.no_stale:
        failures += [f"stale: {problem}" for problem in find_stale()]

    if failures:
        print(f"\n{len(failures)} failure(s):")
        print("\n".join(f"  {failure}" for failure in failures))
        if any(failure.startswith("stale") for failure in failures):
            print("Re-run `dvc repro` and commit dvc.lock with the results it writes.")
        return 1
    print(f"\nall {len(verdicts)} checks passed; results match the code and params")
    return 0


def _apply(file: str, pattern: str, rule: dict[str, Any], flat: dict[str, Any]) -> list[Verdict]:
    matches = [key for key in flat if fnmatch.fnmatchcase(key, pattern)]
    if not matches:
        return [Verdict(f"{file}:{pattern}", "-", _describe(rule), False, "key missing")]
    return [_judge(f"{file}:{key}", key, rule, flat) for key in matches]


def _judge(metric: str, key: str, rule: dict[str, Any], flat: dict[str, Any]) -> Verdict:
    value = flat[key]
    parent = key.rpartition(".")[0]
    sibling = f"{parent}.{{}}" if parent else "{}"
    if "unless" in rule and flat.get(sibling.format(rule["unless"])):
        return Verdict(metric, _show(value), _describe(rule), True, f"skipped: {rule['unless']}")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return Verdict(metric, repr(value), _describe(rule), False, "not a number")

    passed = True
    if "min" in rule:
        passed &= value >= rule["min"]
    if "max" in rule:
        passed &= value <= rule["max"]
    if "below" in rule:
        other = flat.get(sibling.format(rule["below"]))
        if other is None:
            return Verdict(metric, _show(value), _describe(rule), False, "reference key missing")
        passed &= value < other
        return Verdict(metric, _show(value), f"< {_show(other)}", passed)
    return Verdict(metric, _show(value), _describe(rule), passed)


def _describe(rule: dict[str, Any]) -> str:
    parts = []
    if "min" in rule:
        parts.append(f">= {rule['min']:g}")
    if "max" in rule:
        parts.append(f"<= {rule['max']:g}")
    if "below" in rule:
        parts.append(f"< {rule['below']}")
    return ", ".join(parts)


def _show(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _flatten(document: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(document, dict):
        return {prefix: document}
    flat: dict[str, Any] = {}
    for key, value in document.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


if __name__ == "__main__":
    raise SystemExit(main())

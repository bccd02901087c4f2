"""Stage train@{arch}-{variant}: fit one MNIST classifier with the shared settings."""

import argparse
import logging

from nnlab import backend, paths
from nnlab.params import ARCHS, VARIANTS, ParamsError, load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("arch", choices=ARCHS)
    parser.add_argument("variant", choices=VARIANTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        params = load_params(paths.PARAMS)
    except ParamsError as error:
        raise SystemExit(str(error)) from None

    backend.use(getattr(params.train.backend, args.arch), params.seed)
    from nnlab.classifier import summary_line, train_classifier
    from nnlab.models import variant_of

    name = paths.run_name(args.arch, args.variant)
    variant = variant_of(args.variant, params.model)
    result = train_classifier(name, args.arch, variant, params, stage=f"train@{name}")
    print(summary_line(name, result))


if __name__ == "__main__":
    main()

"""Stage sweep@{rate}: the softmax model trained with one dropout rate of the sweep."""

import argparse
import logging

from nnlab import backend, paths
from nnlab.params import ParamsError, load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dropout_rate", type=float, help="0 trains without a dropout layer")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        params = load_params(paths.PARAMS)
    except ParamsError as error:
        raise SystemExit(str(error)) from None
    if not 0 <= args.dropout_rate < 1:
        raise SystemExit(f"dropout rate {args.dropout_rate} is outside the allowed [0, 1)")

    backend.use(params.train.backend.softmax, params.seed)
    from nnlab.classifier import summary_line, train_classifier
    from nnlab.models import Variant

    name = paths.sweep_name(args.dropout_rate)
    variant = Variant(dropout_rate=args.dropout_rate or None)
    result = train_classifier(
        name, "softmax", variant, params, stage=f"sweep@{args.dropout_rate}", group="sweep"
    )
    print(summary_line(name, result))


if __name__ == "__main__":
    main()

"""Stage figures: draw the study's figures from the recorded series into plots/figures."""

import logging

from nnlab import figures, paths, tracking
from nnlab.params import ParamsError, load_params


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        params = load_params(paths.PARAMS)
    except ParamsError as error:
        raise SystemExit(str(error)) from None

    read = {
        "descent.dims": list(params.descent.dims),
        "sweep.dropout_rates": list(params.sweep.dropout_rates),
        "data.test_limit": params.data.test_limit,
        "train.batch_size": params.train.batch_size,
        "model.dropout": params.model.dropout,
        "model.batchnorm.momentum": params.model.batchnorm.momentum,
        "descent.samples": params.descent.samples,
        "graph.loss": params.graph.loss,
    }
    settings = figures.FigureSettings.from_params(params)
    try:
        series = figures.load_study(
            params.descent.dims, params.sweep.dropout_rates, params.model.dropout
        )
    except FileNotFoundError as error:
        missing = f"figures: missing input {error.filename}"
        raise SystemExit(f"{missing}; run `dvc repro`") from None
    except ValueError as error:
        raise SystemExit(f"figures: {error}") from None

    with tracking.start_run(stage="figures", run_name="figures", params=read) as run:
        written = figures.write_figures(figures.draw_study(series, settings))
        for path in written:
            run.log_artifact(path, "figures")

    print(f"figures: wrote {len(written)} figures to {paths.FIGURES}")


if __name__ == "__main__":
    main()

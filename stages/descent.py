"""Stage descent: gradient descent on the graph, per size K and learning rate."""

import logging

from nnlab import descent, paths, tracking
from nnlab.atomic import write_csv, write_json
from nnlab.params import Params, ParamsError, flatten, load_params


def tracked_case(params: Params, dim: int, learning_rate: float) -> descent.DescentRun:
    """Descend for one (K, learning rate) case inside its own MLflow run."""
    settings = params.descent
    case = settings.model_dump(exclude={"dims", "learning_rates"})
    case.update(dim=dim, learning_rate=learning_rate)
    read = {"seed": params.seed, "graph": params.graph.model_dump()}
    logged = flatten({**read, "descent": case})

    name = descent.run_name(dim, learning_rate)
    with tracking.start_run(stage="descent", run_name=name, params=logged) as tracked:
        run = descent.run_case(params.graph, settings, dim, learning_rate, params.seed)
        tracked.log_series("mean_loss", range(len(run.losses)), run.losses)
        tracked.log_metrics(run.summary())

    print(
        f"{name}: mean loss {run.initial_loss:.4g} -> {run.final_loss:.4g} "
        f"in {run.iterations} pass(es){', diverged' if run.diverged else ''}"
    )
    return run


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        params = load_params(paths.PARAMS)
    except ParamsError as error:
        raise SystemExit(str(error)) from None

    settings = params.descent
    runs = [
        tracked_case(params, dim, learning_rate)
        for dim in settings.dims
        for learning_rate in settings.learning_rates
    ]
    for dim in settings.dims:
        runs_of_dim = [run for run in runs if run.dim == dim]
        write_csv(paths.descent_series(dim), descent.series_table(runs_of_dim))
    write_json(paths.DESCENT_METRICS, descent.metrics_document(runs))


if __name__ == "__main__":
    main()

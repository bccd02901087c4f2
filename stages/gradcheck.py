"""Stage gradcheck: hand-written gradients against torch and finite differences."""

import logging

from nnlab import gradcheck, paths, tracking
from nnlab.atomic import write_json, write_text
from nnlab.params import ParamsError, flatten, load_params


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        params = load_params(paths.PARAMS)
    except ParamsError as error:
        raise SystemExit(str(error)) from None

    settings = params.gradcheck
    logged = flatten({"graph": params.graph.model_dump(), "gradcheck": settings.model_dump()})
    with tracking.start_run(stage="gradcheck", run_name="gradcheck", params=logged) as run:
        results = gradcheck.check_all(settings)
        summary = gradcheck.summarize(results)
        table = gradcheck.gradient_table(params.graph, settings)

        write_json(paths.GRADCHECK_METRICS, summary)
        write_json(paths.GRADIENT_TABLE_VALUES, table.document())
        write_text(paths.GRADIENT_TABLE, table.markdown())
        run.log_metrics(flatten(summary))
        run.log_artifact(paths.GRADIENT_TABLE)

        torch_error = summary[gradcheck.TORCH]["max_rel_error"]
        fd_error = summary[gradcheck.FINITE_DIFFERENCES]["max_rel_error"]
        print(
            f"gradcheck: {summary['cases']} cases, largest relative error "
            f"{torch_error:.2e} against torch autograd, "
            f"{fd_error:.2e} against finite differences"
        )
        failure = gradcheck.worst_failure(results, settings)
        if failure:
            raise SystemExit(failure)


if __name__ == "__main__":
    main()

"""Stage report: write report/README.md from the study's metrics, tables and figures."""

from nnlab import paths, report
from nnlab.atomic import write_text
from nnlab.figures import FigureSettings
from nnlab.params import ParamsError, load_params


def main() -> None:
    try:
        params = load_params(paths.PARAMS)
    except ParamsError as error:
        raise SystemExit(str(error)) from None

    try:
        results = report.load_results(params.sweep.dropout_rates)
    except FileNotFoundError as error:
        missing = f"report: missing input {error.filename}"
        raise SystemExit(f"{missing}; run `dvc repro`") from None
    except ValueError as error:
        raise SystemExit(f"report: {error}") from None

    settings = FigureSettings.from_params(params)
    write_text(paths.REPORT_README, report.render_report(results, settings))
    trainings = len(results.training) + len(results.sweep)
    print(f"report: wrote {paths.REPORT_README} ({trainings} trainings)")


if __name__ == "__main__":
    main()

"""The ``cx360`` command: generate sample data and run the pipeline through Dagster."""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from cx_pipeline.settings import PROJECT_ROOT, Paths, SettingError, Settings, prepare_dagster_home


def _generate(args: argparse.Namespace) -> int:
    from cx_pipeline.generator import GeneratorConfig, generate

    paths = Paths.from_env()
    config = GeneratorConfig(
        customers=args.customers,
        seed=args.seed,
        landing_dir=Path(args.landing) if args.landing else paths.landing,
        truth_dir=Path(args.truth) if args.truth else paths.truth,
        start_date=date.fromisoformat(args.start_date),
        end_date=date.fromisoformat(args.end_date),
        file_period=args.file_period,
        malformed_share=args.malformed_share,
    )
    summary = generate(config, progress=not args.no_progress)
    print(summary.describe())
    return 0


# At these console levels the run stays quiet: dbt's node-by-node lines (which dagster-dbt echoes to stdout,
# several hundred per build) go to a file instead of the terminal.
QUIET_LOG_LEVELS = frozenset({"WARNING", "ERROR", "CRITICAL"})


def run_output_log(paths: Paths) -> Path:
    """Where a quiet run writes what it would otherwise print: ``logs/last_run.log`` beside the warehouse."""
    return paths.warehouse.parent / "logs" / "last_run.log"


@contextlib.contextmanager
def _stdout_to(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle, contextlib.redirect_stdout(handle):
        yield


def _landing_has_files(landing: Path) -> bool:
    return landing.is_dir() and any(path.is_file() for path in landing.glob("*/*"))


def _run(args: argparse.Namespace) -> int:
    import dagster as dg

    paths = Settings.from_env().paths  # every setting checked before hours of work depend on it
    if not _landing_has_files(paths.landing):
        from cx_pipeline.generator import GeneratorConfig, generate

        print(f"No landing files in {paths.landing}: generating the sample data first.")
        summary = generate(
            GeneratorConfig(landing_dir=paths.landing, truth_dir=paths.truth), progress=not args.no_progress
        )
        print(summary.describe())

    prepare_dagster_home()  # the project's instance by default, so `dagster dev` shows CLI runs too
    from cx_pipeline.defs.dbt_project import prepare_dbt_manifest

    prepare_dbt_manifest()  # parses only when a model, macro or config changed
    from cx_pipeline.definitions import defs

    job = defs().resolve_job_def(args.job)
    with dg.DagsterInstance.get() as instance:
        from cx_pipeline.operations import release_runs_of_dead_processes

        for run_id in release_runs_of_dead_processes(instance):
            print(f"Run {run_id} was killed before it finished: marked failed, its warehouse slot freed.")
        dbt_log = run_output_log(paths)
        with _stdout_to(dbt_log if args.log_level.upper() in QUIET_LOG_LEVELS else None):
            result = job.execute_in_process(
                instance=instance,
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": args.log_level.upper()}}}},
            )
    print(f"Dagster run {result.run_id} {'succeeded' if result.success else 'FAILED'}.")
    if args.log_level.upper() in QUIET_LOG_LEVELS:
        print(f"dbt's node-by-node output: {dbt_log}")
    _print_warehouse_summary(paths)
    return 0 if result.success else 1


def _print_warehouse_summary(paths: Paths) -> None:
    from cx_pipeline.warehouse import connect

    if not paths.warehouse.exists():
        return
    with connect(paths.warehouse, read_only=True) as connection:
        tables = connection.execute(
            "select table_schema, count(*) from information_schema.tables group by 1 order by 1"
        ).fetchall()
        print(f"Warehouse: {paths.warehouse}")
        print("Tables per schema: " + ", ".join(f"{schema}={count}" for schema, count in tables))
        has_profiles = connection.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'marts' and table_name = 'dim_customers'"
        ).fetchone()[0]
        if has_profiles:
            stages = connection.execute(
                "select journey_stage, count(*) from marts.dim_customers group by 1 order by 2 desc"
            ).fetchall()
            print("Customers per journey stage: " + ", ".join(f"{stage}={count}" for stage, count in stages))
            print("A few customer profiles (marts.dim_customers):")
            connection.sql(
                "select customer_id, journey_stage, first_seen_at, order_count, net_revenue, "
                "distinct_channel_count, latest_nps_class "
                "from marts.dim_customers order by net_revenue desc nulls last, customer_id limit 5"
            ).show(max_width=200)
    for label, path in (
        ("BI serving copy", paths.serving / "cx360_bi.duckdb"),
        ("Audience exports", paths.exports),
        ("CX report", paths.reports / "cx_report.html"),
    ):
        if path.exists():
            print(f"{label}: {path}")


def _ui(args: argparse.Namespace) -> int:
    Settings.from_env()  # a bad setting is reported here, not by a materialization in the UI
    prepare_dagster_home()  # the project's instance by default, so `dagster dev` shows CLI runs too
    command = [
        str(Path(sys.executable).parent / "dagster"),
        "dev",
        "-w",
        str(PROJECT_ROOT / "workspace.yaml"),
        "--port",
        str(args.port),
    ]
    return subprocess.call(command, cwd=PROJECT_ROOT)


def build_parser() -> argparse.ArgumentParser:
    from cx_pipeline.generator import GeneratorConfig

    defaults = GeneratorConfig()
    parser = argparse.ArgumentParser(prog="cx360", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="write synthetic landing files and their ground truth")
    gen.add_argument("--customers", type=int, default=defaults.customers, help="number of true persons")
    gen.add_argument("--seed", type=int, default=defaults.seed)
    gen.add_argument("--landing", help="landing folder (default: $CX360_LANDING_DIR or data/landing)")
    gen.add_argument("--truth", help="ground-truth folder (default: $CX360_TRUTH_DIR or data/truth)")
    gen.add_argument("--start-date", default=defaults.start_date.isoformat())
    gen.add_argument("--end-date", default=defaults.end_date.isoformat())
    gen.add_argument("--file-period", choices=("month", "day"), default=defaults.file_period)
    gen.add_argument("--malformed-share", type=float, default=defaults.malformed_share)
    gen.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    gen.set_defaults(handler=_generate)

    run = commands.add_parser(
        "run", help="materialize every asset through Dagster (generates the sample data first if needed)"
    )
    run.add_argument("--job", default="full_pipeline", help="Dagster job to run (default: full_pipeline)")
    run.add_argument("--no-progress", action="store_true")
    run.add_argument(
        "--log-level",
        default="warning",
        choices=("debug", "info", "warning", "error"),
        help="console log level of the Dagster run (the full log is in the Dagster UI)",
    )
    run.set_defaults(handler=_run)

    ui = commands.add_parser("ui", help="start the Dagster UI (dagster dev) on the project's instance")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(handler=_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except SettingError as error:
        print(f"cx360: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

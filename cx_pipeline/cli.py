"""The ``cx360`` command: generate sample data and run the pipeline through Dagster."""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from cx_pipeline.settings import (
    LANDING_SETTLE_SECONDS,
    PROJECT_ROOT,
    Paths,
    SettingError,
    Settings,
    prepare_dagster_home,
)


def _generate(args: argparse.Namespace) -> int:
    from cx_pipeline.generator import GeneratorConfig, generate

    paths = Paths.from_env()
    if args.next_day or args.days is not None:
        return _generate_next_days(args, paths)
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


def _generate_next_days(args: argparse.Namespace, paths: Paths) -> int:
    from cx_pipeline.generator.nextday import DayAmounts, generate_next_days

    try:
        amounts = DayAmounts(
            active_share=args.active_share,
            late_share=args.late_share,
            new_people=args.new_people,
            crm_corrections=args.crm_corrections,
            merges=args.merges,
            consent_changes=args.consent_changes,
            erasures=args.erasures,
        )
        summaries = generate_next_days(
            Path(args.landing) if args.landing else paths.landing,
            Path(args.truth) if args.truth else paths.truth,
            days=1 if args.days is None else args.days,
            amounts=amounts,
        )
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"cx360 generate: {error}", file=sys.stderr)
        return 2
    for summary in summaries:
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


def _warehouse_loaded_files(warehouse: Path) -> int:
    """Landing files the warehouse already holds; a warehouse that cannot be read counts as holding data."""
    if not warehouse.exists():
        return 0
    from cx_pipeline.ingestion.manifest import current_file_count
    from cx_pipeline.warehouse import connect

    with connect(warehouse, read_only=True) as connection:
        return current_file_count(connection)


def _needs_sample(paths: Paths, *, sample_requested: bool) -> bool:
    """Whether the quick start (or ``--sample``) must write the sample data first; refuses a wrong folder.

    Raises LandingDirMissingError / LandingDirEmptyError / SampleWouldReplaceDataError before anything is
    written (see ``should_generate_sample``).
    """
    from cx_pipeline.operations import should_generate_sample

    return should_generate_sample(
        paths.landing,
        is_project_default=paths.landing == Paths.defaults().landing,
        sample_requested=sample_requested,
        warehouse=paths.warehouse,
        count_loaded_files=lambda: _warehouse_loaded_files(paths.warehouse),
    )


def _generate_sample(paths: Paths, *, progress: bool) -> None:
    from cx_pipeline.generator import GeneratorConfig, generate

    print(f"No landing files in {paths.landing}: generating the sample data first.")
    summary = generate(GeneratorConfig(landing_dir=paths.landing, truth_dir=paths.truth), progress=progress)
    print(summary.describe())


def _run(args: argparse.Namespace) -> int:
    from cx_pipeline.operations import (
        ExplainedFileNotFoundError,
        RunInProgressError,
        SampleWouldReplaceDataError,
        hold_run_lock,
    )
    from cx_pipeline.warehouse import WarehouseLockedError

    paths = Settings.from_env().paths  # every setting checked before hours of work depend on it
    try:
        needs_sample = _needs_sample(paths, sample_requested=args.sample)
        with hold_run_lock(paths.warehouse, wait=not args.no_wait):
            # Decided again under the lock: a run that held it may have filled the folder meanwhile.
            if needs_sample and _needs_sample(paths, sample_requested=args.sample):
                _generate_sample(paths, progress=not args.no_progress)
                # This process wrote the files and they are complete: no waiting for them to settle.
                os.environ[LANDING_SETTLE_SECONDS.name] = "0"
            result = _run_job(args, paths)
    except (
        ExplainedFileNotFoundError,
        SampleWouldReplaceDataError,
        WarehouseLockedError,
        RunInProgressError,
        UnknownJobError,
    ) as error:
        print(f"cx360 run: {error}", file=sys.stderr)
        return 2
    print(f"Dagster run {result.run_id} {'succeeded' if result.success else 'FAILED'}.")
    if args.log_level.upper() in QUIET_LOG_LEVELS:
        print(f"dbt's node-by-node output: {run_output_log(paths)}")
    _print_warehouse_summary(paths)
    return 0 if result.success else 1


class UnknownJobError(LookupError):
    """``cx360 run --job`` named a job the definitions do not have."""


def _run_job(args: argparse.Namespace, paths: Paths) -> Any:
    prepare_dagster_home()  # the project's instance by default, so `dagster dev` shows CLI runs too
    from cx_pipeline.defs.dbt.project import prepare_dbt_manifest

    prepare_dbt_manifest()  # parses only when a model, macro or config changed
    from cx_pipeline.definitions import defs

    definitions = defs()
    job_names = sorted(
        job.name for job in definitions.resolve_all_job_defs() if not job.name.startswith("__")
    )
    if args.job not in job_names:
        raise UnknownJobError(f"no job named {args.job!r}; the jobs are: {', '.join(job_names)}")
    with contextlib.ExitStack() as stack:
        return _execute(definitions.resolve_job_def(args.job), args, paths, stack=stack)


def _execute(job: Any, args: argparse.Namespace, paths: Paths, *, stack: contextlib.ExitStack) -> Any:
    """Run ``job`` in this process, printing a line per step (``cx_pipeline.progress``) unless asked not to.

    The run is tagged with this process's id, so a run killed before its first step is recognised as dead
    by the next ``cx360 run`` (``release_runs_of_dead_processes``) instead of staying NOT_STARTED.
    """
    import uuid

    import dagster as dg

    from cx_pipeline.operations import RUN_PID_TAG, release_runs_of_dead_processes
    from cx_pipeline.progress import ProgressPrinter

    quiet = args.log_level.upper() in QUIET_LOG_LEVELS
    instance = stack.enter_context(dg.DagsterInstance.get())
    for run_id in release_runs_of_dead_processes(instance):
        print(f"Run {run_id} was killed before it finished: marked failed, its warehouse slot freed.")
    run_id = str(uuid.uuid4())
    if not args.no_progress:
        print(f"Dagster run {run_id} ({args.job}) started; a line per step below.", flush=True)
        stack.enter_context(ProgressPrinter(instance, run_id, sys.stdout))
    stack.enter_context(_stdout_to(run_output_log(paths) if quiet else None))
    return job.execute_in_process(
        instance=instance,
        run_id=run_id,
        tags={RUN_PID_TAG: str(os.getpid())},
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": args.log_level.upper()}}}},
    )


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
    from cx_pipeline.generator.nextday import DayAmounts

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
    day = gen.add_argument_group(
        "next days",
        "continue the population in --truth: write the day after its end date as new landing files "
        "<source>/day-<date>.<ext> (seed, customers and dates come from the truth's state.json)",
    )
    day.add_argument("--next-day", action="store_true", help="write the next day of an existing population")
    day.add_argument("--days", type=int, help="write this many consecutive next days (implies --next-day)")
    day_defaults = DayAmounts()
    day.add_argument(
        "--active-share",
        type=float,
        default=day_defaults.active_share,
        help=f"share of the persons active each day (default {day_defaults.active_share})",
    )
    day.add_argument(
        "--late-share",
        type=float,
        default=day_defaults.late_share,
        help=f"share of the day's sessions that happened 1-5 days back (default {day_defaults.late_share})",
    )
    for name, what in (
        ("new-people", "new persons"),
        ("crm-corrections", "CRM contacts re-exported with a new phone or name"),
        ("merges", "identify calls that show two known persons are one"),
        ("consent-changes", "consent withdrawals and grants"),
    ):
        day.add_argument(f"--{name}", type=int, help=f"{what} per day (default: scaled to the population)")
    day.add_argument(
        "--erasures",
        type=int,
        default=day_defaults.erasures,
        help=f"erasure requests per day (default {day_defaults.erasures})",
    )
    gen.set_defaults(handler=_generate)

    run = commands.add_parser(
        "run",
        help="materialize every asset through Dagster (the quick start generates the sample data into an "
        "empty data/landing first)",
    )
    run.add_argument("--job", default="full_pipeline", help="Dagster job to run (default: full_pipeline)")
    run.add_argument("--no-progress", action="store_true", help="no progress lines (nor generator bar)")
    run.add_argument(
        "--no-wait",
        action="store_true",
        help="if another cx360 run is using the warehouse, stop at once instead of waiting for it",
    )
    run.add_argument(
        "--sample",
        action="store_true",
        help="write the synthetic sample data into the landing folder first if it holds no files "
        "(without it, only the project's own data/landing is filled so; another empty folder is an error)",
    )
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

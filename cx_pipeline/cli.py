"""The ``cx360`` command: generate sample data and run the pipeline through Dagster."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from cx_pipeline.settings import Paths


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
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())

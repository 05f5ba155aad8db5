"""The ``kaizen report`` and ``kaizen compare`` subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kaizen.report.aggregate import ACCURACY_METRICS
from kaizen.report.compare import Comparison, compare_runs
from kaizen.report.report import write_report


def print_paths(console: Console, *paths: Path) -> None:
    for path in paths:
        console.print(str(path), highlight=False, soft_wrap=True)


def _print_comparison(console: Console, comparison: Comparison) -> None:
    table = Table(title="Comparison (mean ± std over seeds)")
    for column in ("SSL method", "strategy", "steps/task", "seeds"):
        table.add_column(column)
    for label, _ in ACCURACY_METRICS.values():
        table.add_column(label, justify="right")
    for group in comparison.groups:
        table.add_row(
            escape(group.ssl_method),
            escape(group.strategy),  # a variant's label, kaizen[key=value], is no markup
            f"{group.steps_per_task:.0f}",
            group.seed_text,
            *(str(group.accuracy[name]) for name in ACCURACY_METRICS),
        )
    console.print(table)
    for path in comparison.skipped:
        console.print(f"left out (incomplete): {path}", highlight=False, soft_wrap=True)
    print_paths(console, comparison.markdown, comparison.html, comparison.csv)


def _report(args: argparse.Namespace, console: Console) -> int:
    print_paths(console, *write_report(Path(args.run_dir)))
    return 0


def _compare(args: argparse.Namespace, console: Console) -> int:
    run_dirs = [Path(d) for d in args.run_dirs]
    _print_comparison(console, compare_runs(run_dirs, Path(args.out), args.probe))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``report`` and ``compare`` to the ``kaizen`` command's subparsers.

    Each subcommand sets ``handler(args, console) -> int`` as its default.
    """
    report = subparsers.add_parser(
        "report",
        help="write report.md and report.html of a run",
        description="Render a run directory's results.json (and costs.json) as report.md with "
        "PNG figures and as a self-contained report.html, both in the run directory.",
    )
    report.add_argument("run_dir", metavar="DIR", help="a run directory of `kaizen run`")
    report.set_defaults(handler=_report)

    compare = subparsers.add_parser(
        "compare",
        help="compare runs over seeds",
        description="Group runs by (SSL method, strategy), aggregate over seeds (mean ± std) and "
        "write compare.md, compare.html, compare.csv and bar charts; costs are given relative "
        "to a scratch run of the same SSL method when there is one.",
    )
    compare.add_argument("run_dirs", nargs="+", metavar="DIR", help="run directories")
    compare.add_argument("--out", default="compare", help="output directory (default: compare)")
    compare.add_argument(
        "--probe",
        metavar="NAME",
        help="read accuracy from this probe of eval.probes (knn, knn-task, linear, ...) instead "
        "of the classifier: LUMP trains no classifier",
    )
    compare.set_defaults(handler=_compare)

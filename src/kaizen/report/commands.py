"""The ``kaizen report``, ``kaizen compare`` and ``kaizen sweep`` subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kaizen.report.aggregate import ACCURACY_METRICS
from kaizen.report.compare import Comparison, compare_runs
from kaizen.report.report import write_report
from kaizen.report.sweep import sweep

DEFAULT_BASE = "cifar100"
DEFAULT_SSL = "simclr,mocov2plus,byol,vicreg"
DEFAULT_STRATEGIES = "finetune,cassle,kaizen"
DEFAULT_SEEDS = "0,1,2"


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one name, comma-separated")
    return names


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(seed) for seed in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be integers, got '{text}'") from None
    if any(seed < 0 for seed in seeds):
        raise argparse.ArgumentTypeError(f"seeds must be >= 0, got '{text}'")
    return seeds


def _print_paths(console: Console, *paths: Path) -> None:
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
            group.ssl_method,
            group.strategy,
            f"{group.steps_per_task:.0f}",
            group.seed_text,
            *(str(group.accuracy[name]) for name in ACCURACY_METRICS),
        )
    console.print(table)
    for path in comparison.skipped:
        console.print(f"left out (incomplete): {path}", highlight=False, soft_wrap=True)
    _print_paths(console, comparison.markdown, comparison.html, comparison.csv)


def _report(args: argparse.Namespace, console: Console) -> int:
    _print_paths(console, *write_report(Path(args.run_dir)))
    return 0


def _compare(args: argparse.Namespace, console: Console) -> int:
    run_dirs = [Path(d) for d in args.run_dirs]
    _print_comparison(console, compare_runs(run_dirs, Path(args.out), args.probe))
    return 0


def _sweep(args: argparse.Namespace, console: Console) -> int:
    base, overrides = args.config, list(args.overrides)
    if "=" in base:  # no base given: the first word is already an override
        base, overrides = DEFAULT_BASE, [base, *overrides]
    out_root = Path(args.out)
    sweep(base, args.ssl, args.strategies, args.seeds, out_root, overrides, log=console.print)
    compare_dir = out_root / "compare"
    _print_paths(console, *(compare_dir / f"compare.{suffix}" for suffix in ("md", "html", "csv")))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``report``, ``compare`` and ``sweep`` to the ``kaizen`` command's subparsers.

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

    sweep_parser = subparsers.add_parser(
        "sweep",
        help="run SSL methods x strategies x seeds, then compare",
        description="Run every (SSL method, strategy, seed) into ROOT/<ssl>-<strategy>-seed<seed> "
        "one after another, skipping complete runs and resuming interrupted ones, then compare "
        "them into ROOT/compare. key=value overrides may stand anywhere among the options.",
    )
    sweep_parser.add_argument(
        "config",
        nargs="?",
        default=DEFAULT_BASE,
        metavar="PRESET_OR_YAML",
        help=f"a preset, a preset family or a YAML file (default: {DEFAULT_BASE}, the paper's "
        "presets cifar100-<ssl>-<strategy>)",
    )
    sweep_parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="dotted settings for every run"
    )
    sweep_parser.add_argument(
        "--ssl",
        type=_names,
        default=_names(DEFAULT_SSL),
        metavar="NAMES",
        help=f"comma-separated SSL methods (default: {DEFAULT_SSL})",
    )
    sweep_parser.add_argument(
        "--strategies",
        type=_names,
        default=_names(DEFAULT_STRATEGIES),
        metavar="NAMES",
        help=f"comma-separated strategies (default: {DEFAULT_STRATEGIES})",
    )
    sweep_parser.add_argument(
        "--seeds",
        type=_seeds,
        default=_seeds(DEFAULT_SEEDS),
        metavar="SEEDS",
        help=f"comma-separated seeds (default: {DEFAULT_SEEDS})",
    )
    sweep_parser.add_argument(
        "--out", default="runs/sweep", metavar="ROOT", help="sweep directory (default: runs/sweep)"
    )
    sweep_parser.set_defaults(handler=_sweep)

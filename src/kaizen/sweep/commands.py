"""The ``kaizen sweep`` subcommand: a grid of runs, then their comparison."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from kaizen.report.commands import print_paths
from kaizen.sweep.runner import sweep

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


def _sweep(args: argparse.Namespace, console: Console) -> int:
    base, overrides = args.config, list(args.overrides)
    if "=" in base:  # no base given: the first word is already an override
        base, overrides = DEFAULT_BASE, [base, *overrides]
    out_root = Path(args.out)
    sweep(base, args.ssl, args.strategies, args.seeds, out_root, overrides, log=console.print)
    compare_dir = out_root / "compare"
    print_paths(console, *(compare_dir / f"compare.{suffix}" for suffix in ("md", "html", "csv")))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sweep`` to the ``kaizen`` command's subparsers (``handler(args, console) -> int``)."""
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

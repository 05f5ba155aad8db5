"""The ``kaizen`` command: run, presets, demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kaizen.api import resolve_config
from kaizen.engine.trainer import ContinualTrainer
from kaizen.errors import KaizenError
from kaizen.presets import load_preset, preset_names
from kaizen.results import Result

DEMO_STRATEGIES = ("finetune", "kaizen")


def _metrics_table(results: dict[str, Result]) -> Table:
    names = list(results)
    table = Table(title="Continual metrics (classifier, task-agnostic single head)")
    table.add_column("metric")
    for name in names:
        table.add_column(name, justify="right")
    first = next(iter(results.values()))
    for metric in first.metrics:
        table.add_row(metric, *(f"{results[n].metrics[metric].value:.4f}" for n in names))
    return table


def _matrix_table(result: Result) -> Table:
    size = len(result.tasks)
    table = Table(title=f"Accuracy matrix a[i][j] ({result.config.strategy.name})")
    table.add_column("after task")
    for j in range(size):
        table.add_column(f"task {j}", justify="right")
    for record in result.tasks:
        table.add_row(str(record.task), *(f"{value:.3f}" for value in record.accuracies))
    return table


def _run(args: argparse.Namespace, console: Console) -> int:
    config = resolve_config(args.config, args.overrides)
    out_dir = Path(args.out) if args.out else Path("runs") / config.name
    result = ContinualTrainer(config, out_dir, console).run()
    console.print(_matrix_table(result))
    console.print(_metrics_table({config.strategy.name: result}))
    console.print(f"results written to {out_dir / 'results.json'}")
    return 0


def _presets(args: argparse.Namespace, console: Console) -> int:
    table = Table(title="Presets (kaizen run NAME)")
    table.add_column("name")
    table.add_column("data")
    table.add_column("ssl")
    table.add_column("strategy")
    for name in preset_names():
        tree = resolve_config(load_preset(name))
        table.add_row(name, tree.data.name, tree.ssl.method, tree.strategy.name)
    console.print(table)
    return 0


def _demo(args: argparse.Namespace, console: Console) -> int:
    out_root = Path(args.out)
    results = {}
    for strategy in DEMO_STRATEGIES:
        console.rule(f"demo: {strategy}")
        config = resolve_config("demo", [f"strategy.name={strategy}", *args.overrides])
        results[strategy] = ContinualTrainer(config, out_root / strategy, console).run()
    for result in results.values():
        console.print(_matrix_table(result))
    console.print(_metrics_table(results))
    console.print(f"results written to {out_root}/<strategy>/results.json")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kaizen", description="Continual learning of image models (Kaizen and baselines)."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="run a continual sequence",
        description="Run a preset or a YAML config, task after task; writes results.json, "
        "metrics.csv and a checkpoint per task to --out.",
    )
    run.add_argument("config", help="a preset name (see `kaizen presets`) or a YAML file")
    run.add_argument("overrides", nargs="*", help="dotted settings, e.g. train.epochs=10")
    run.add_argument("--out", help="run directory (default: runs/<config name>)")
    run.set_defaults(handler=_run)

    presets = commands.add_parser("presets", help="list the presets")
    presets.set_defaults(handler=_presets)

    demo = commands.add_parser(
        "demo",
        help="the embedded default: finetune vs kaizen on Fashion-MNIST, on CPU",
        description="Fashion-MNIST, 5 class-incremental tasks, a small ConvNet on CPU: runs "
        "finetune and kaizen and prints their metrics side by side.",
    )
    demo.add_argument("overrides", nargs="*", help="dotted settings applied to both runs")
    demo.add_argument("--out", default="runs/demo", help="run directory root")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kaizen`` console script; bad input exits 2 with one line."""
    args = build_parser().parse_args(argv)
    console = Console(stderr=False)
    try:
        return args.handler(args, console)
    except KaizenError as error:
        print(f"kaizen: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The ``kaizen`` command: run, resume, presets, demo; the report, production and bench
commands register themselves."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console, ConsoleRenderable, RenderHook
from rich.markup import escape
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from kaizen.api import resolve_config, resume, run
from kaizen.bench.commands import register as register_bench_command
from kaizen.distributed import is_primary
from kaizen.engine.interrupt import RunInterrupted
from kaizen.errors import KaizenError
from kaizen.eval.results import Result
from kaizen.presets import load_preset, preset_names
from kaizen.production.commands import register as register_production_commands
from kaizen.report.commands import register as register_report_commands
from kaizen.sweep.commands import register as register_sweep_command

DEMO_STRATEGIES = ("finetune", "kaizen-refit")
PIPED_WIDTH = 10_000
"""Columns of the output when it is not a terminal (a pipe, a file): wide enough that no table
is cut or wrapped, so that ``kaizen presets | grep replay`` finds whole names."""
RULE_WIDTH = 80
"""Columns of a heading rule when the output is not a terminal."""


class WholeAnnotations(RenderHook):
    """Widens each table printed to its title and caption, so that neither is wrapped inside a
    table narrower than itself (a run directory's path in a title, say)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        for renderable in renderables:
            if isinstance(renderable, Table):
                texts = [text for text in (renderable.title, renderable.caption) if text]
                widths = [
                    text.cell_len
                    if isinstance(text, Text)
                    else self.console.render_str(text).cell_len
                    for text in texts
                ]
                renderable.min_width = max([renderable.min_width or 0, *widths]) or None
        return renderables


def make_console() -> Console:
    """The console of the ``kaizen`` command: the terminal's width on a terminal; otherwise so
    wide that tables print whole, names and numbers never cut."""
    console = Console()
    if not console.is_terminal:
        console.width = PIPED_WIDTH
    console.push_render_hook(WholeAnnotations(console))
    return console


def _heading(console: Console, text: str) -> None:
    console.print(Rule(text), width=None if console.is_terminal else RULE_WIDTH)


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
    table = Table(title=escape(f"Accuracy matrix a[i][j] ({result.config.strategy.name})"))
    table.add_column("after task")
    for j in range(size):
        table.add_column(f"task {j}", justify="right")
    for record in result.tasks:
        table.add_row(str(record.task), *(f"{value:.3f}" for value in record.accuracies))
    return table


def _summary(result: Result, out_dir: Path, console: Console) -> int:
    if not is_primary():
        return 0
    console.print(_matrix_table(result))
    console.print(_metrics_table({result.config.strategy.name: result}))
    console.print(f"results written to {out_dir / 'results.json'}")
    return 0


def _run(args: argparse.Namespace, console: Console) -> int:
    config = resolve_config(args.config, args.overrides)
    out_dir = Path(args.out) if args.out else Path("runs") / config.name
    return _summary(run(config, out_dir, console=console, force=args.force), out_dir, console)


def _resume(args: argparse.Namespace, console: Console) -> int:
    out_dir = Path(args.dir)
    return _summary(resume(out_dir, console, args.overrides), out_dir, console)


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
        _heading(console, f"demo: {strategy}")
        overrides = [f"strategy.name={strategy}", *args.overrides]
        results[strategy] = run("demo", out_root / strategy, overrides, console, force=True)
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

    run_parser = commands.add_parser(
        "run",
        help="run a continual sequence",
        description="Run a preset or a YAML config, task after task; writes results.json, "
        "metrics.csv and a checkpoint per task to --out.",
    )
    run_parser.add_argument("config", help="a preset name (see `kaizen presets`) or a YAML file")
    run_parser.add_argument("overrides", nargs="*", help="dotted settings, e.g. train.epochs=10")
    run_parser.add_argument("--out", help="run directory (default: runs/<config name>)")
    run_parser.add_argument(
        "--force", action="store_true", help="replace a run already in the run directory"
    )
    run_parser.set_defaults(handler=_run)

    resume_parser = commands.add_parser(
        "resume",
        help="continue a run from its newest valid checkpoint",
        description="Continue the run in DIR from its newest valid checkpoint, with the config "
        "it was started with (runtime settings such as train.accelerator may be changed); a "
        "corrupt checkpoint is reported and the previous one used.",
    )
    resume_parser.add_argument("dir", help="the run directory")
    resume_parser.add_argument(
        "overrides",
        nargs="*",
        help="where and how to go on, e.g. train.accelerator=cpu (train.* runtime keys only)",
    )
    resume_parser.set_defaults(handler=_resume)

    presets = commands.add_parser("presets", help="list the presets")
    presets.set_defaults(handler=_presets)

    demo = commands.add_parser(
        "demo",
        help="the embedded default: finetune vs kaizen on Fashion-MNIST, on CPU",
        description="Fashion-MNIST, 5 class-incremental tasks, a small ConvNet on CPU: runs "
        "finetune and kaizen and prints their metrics side by side.",
    )
    demo.add_argument("overrides", nargs="*", help="dotted settings applied to both runs")
    demo.add_argument(
        "--out", default="runs/demo", help="run directory root (earlier demo runs are replaced)"
    )
    demo.set_defaults(handler=_demo)
    register_report_commands(commands)
    register_sweep_command(commands)
    register_production_commands(commands)
    register_bench_command(commands)
    return parser


def parse_arguments(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> argparse.Namespace:
    """Parse ``argv``, with ``key=value`` overrides allowed before, between and after options.

    argparse stops filling a ``nargs="*"`` positional at the first option, so the overrides that
    follow options would be refused; they join the command's overrides instead. Anything else
    left over is reported by argparse as usual.
    """
    args, extras = parser.parse_known_args(argv)
    overrides = [text for text in extras if "=" in text and not text.startswith("-")]
    if len(overrides) < len(extras) or (overrides and not hasattr(args, "overrides")):
        parser.parse_args(argv)  # exits with argparse's message about the unknown arguments
    if overrides:
        args.overrides = [*args.overrides, *overrides]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kaizen`` console script; bad input exits 2 with one line."""
    args = parse_arguments(build_parser(), argv)
    console = make_console()
    try:
        return args.handler(args, console)
    except RunInterrupted as error:
        print(f"kaizen: {error}", file=sys.stderr)
        return error.exit_code
    except KaizenError as error:
        print(f"kaizen: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The ``kaizen bench`` command: Kaizen's training step against the conventional pipeline.

It measures both pipelines in one process on the same model, losses and data, optionally the
time per task of a long run, prints the numbers and writes them to a JSON file with the machine,
the software versions, the command line and the config.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from kaizen.api import resolve_config
from kaizen.bench import tables
from kaizen.bench.freezing import measure_freezing, summary
from kaizen.bench.layouts import compare_layouts
from kaizen.bench.paper_run import extrapolate, measure_evaluation
from kaizen.bench.profile import profile_kaizen_step
from kaizen.bench.reference import measure_reference_input, measure_reference_step
from kaizen.bench.report import (
    build_report,
    command_line,
    device_name,
    machine_info,
    median_run,
    write_report,
)
from kaizen.bench.scaling import measure_task_scaling
from kaizen.bench.throughput import bench_device, measure_kaizen_input, measure_kaizen_step
from kaizen.config import RunConfig, build_config
from kaizen.engine.hardware import check_hardware
from kaizen.presets import load_preset
from kaizen.version import __version__

BENCH_PRESET = "cifar100-mocov2plus-kaizen"
FREEZING_PRESET = "cifar10-simsiam-lump"
FREEZING_DEPTHS = "3,5,7"
BENCH_DATA = {
    "name": "synthetic",
    "train_per_class": None,
    "test_per_class": None,
    "synthetic": {
        "num_classes": 100,
        "train_per_class": 100,
        "test_per_class": 1,
        "image_size": 32,
        "channels": 3,
    },
}
SMALL_BACKBONE_WIDTH = 0.5
DEFAULT_OUT = "benchmarks/results/bench-{device}-{backbone}.json"
_MIXED_PRECISION = {"cuda": "16-mixed", "cpu": "bf16-mixed"}


def _base_tree(preset: str | None) -> dict[str, Any]:
    """The bench config tree: a preset or YAML file, or the paper's MoCoV2+ Kaizen setting; the
    data are synthetic of the bench shape unless the source already uses synthetic data."""
    if preset is None:
        tree = load_preset(BENCH_PRESET)
        tree["name"] = "bench"
    else:
        tree = resolve_config(preset).model_dump()
    if tree.get("data", {}).get("name") != "synthetic":
        tree["data"] = BENCH_DATA
    return tree


def bench_config(args: argparse.Namespace) -> RunConfig:
    """The config the bench measures, from the command's options."""
    tree = _base_tree(args.preset)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    settings: dict[str, Any] = {"train.accelerator": device, "train.progress": False}
    if args.backbone is not None:
        settings["model.backbone"] = args.backbone
        if args.width is None and args.backbone == "convnet":
            settings["model.width"] = SMALL_BACKBONE_WIDTH
    if args.width is not None:
        settings["model.width"] = args.width
    if args.precision is not None:
        settings["train.precision"] = args.precision
    elif args.preset is None:
        settings["train.precision"] = _MIXED_PRECISION[device]
    if args.batch_size is not None:
        settings["train.batch_size"] = args.batch_size
    if args.replay_batch_size is not None:
        settings["replay.batch_size"] = args.replay_batch_size
    if args.channels_last is not None:
        settings["train.channels_last"] = args.channels_last
    overrides = [f"{key}={json.dumps(value)}" for key, value in settings.items()]
    return build_config(tree, [*overrides, *args.overrides])


def run_bench(args: argparse.Namespace, console: Console) -> int:
    """Handler of ``kaizen bench``: measure, print, write the JSON report."""
    config = bench_config(args)
    check_hardware(config.train)
    settings = {
        "warmup": args.warmup,
        "steps": args.steps,
        "repeats": args.repeats,
        "workers": args.workers,
        "tasks": args.tasks,
        "steps_per_task": args.steps_per_task,
    }
    kaizen_runs: list[dict[str, Any]] = []
    reference_runs: list[dict[str, Any]] = []
    for repeat in range(1, args.repeats + 1):
        console.print(
            f"[{repeat}/{args.repeats}] measuring the kaizen step ({args.warmup} warm-up + "
            f"{args.steps} steps), then the reference step ({args.workers} workers)"
        )
        kaizen_runs.append(measure_kaizen_step(config, warmup=args.warmup, steps=args.steps))
        reference_runs.append(
            measure_reference_step(
                config, warmup=args.warmup, steps=args.steps, num_workers=args.workers
            )
        )
    kaizen_step, reference_step = median_run(kaizen_runs), median_run(reference_runs)
    console.print("measuring both input pipelines alone")
    inputs = {
        "kaizen": measure_kaizen_input(config, warmup=args.warmup, steps=args.steps),
        "reference": measure_reference_input(
            config, warmup=args.warmup, steps=args.steps, num_workers=args.workers
        ),
    }
    profile = None
    if args.profile:
        console.print("profiling the kaizen step")
        profile = profile_kaizen_step(config, warmup=args.warmup, steps=args.steps)
    layouts = None
    if args.layouts:
        console.print(f"comparing the layouts ({args.layouts} times each, alternately)")
        layouts = compare_layouts(
            config, repeats=args.layouts, warmup=args.warmup, steps=args.steps
        )
    paper_run = None
    if args.paper_run:
        console.print("measuring the evaluation forward for the paper-scale extrapolation")
        evaluation = measure_evaluation(config, warmup=args.warmup, steps=args.steps)
        paper_run = {
            "evaluation": evaluation,
            **extrapolate(kaizen_step["seconds_per_step"], evaluation["images_per_second"]),
        }
    task_seconds: list[float] = []
    if args.tasks:
        console.print(f"measuring {args.tasks} tasks of {args.steps_per_task} steps")
        task_seconds = measure_task_scaling(config, args.tasks, args.steps_per_task)
    report = build_report(
        config, settings, kaizen_step, reference_step, task_seconds, inputs, profile, layouts
    )
    report["paper_run"] = paper_run
    console.print(tables.steps_table(report))
    console.print(tables.inputs_table(inputs))
    if profile is not None:
        console.print(tables.profile_table(profile))
    if layouts is not None:
        console.print(tables.layouts_table(layouts))
    if report["task_scaling"] is not None:
        console.print(tables.scaling_table(report["task_scaling"]))
    if paper_run is not None:
        console.print(
            f"paper-scale run (5 tasks x 500 epochs x 10,000 images, with evaluation), "
            f"extrapolated: {paper_run['total_minutes']:.1f} minutes "
            f"(target <= {paper_run['target_minutes']:.0f})"
        )
    out = Path(
        args.out
        or DEFAULT_OUT.format(device=bench_device(config).type, backbone=config.model.backbone)
    )
    write_report(report, out)
    console.print(f"results written to {out}")
    return 0


def run_bench_freezing(args: argparse.Namespace, console: Console) -> int:
    """Handler of ``kaizen bench-freezing``: LUMP with and without freezing, JSON report."""
    config = bench_config(args)
    check_hardware(config.train)
    console.print(f"timing task 1 of plain LUMP, then frozen at depths {args.depths}")
    record = measure_freezing(config, args.depths, args.steps)
    for line in summary(record):
        console.print(line)
    out = Path(args.out or f"benchmarks/results/freezing-{bench_device(config).type}.json")
    header = {
        "machine": machine_info(config.train.num_threads or torch.get_num_threads()),
        "device": device_name(bench_device(config)),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "kaizen": __version__,
        "command": command_line(),
        "steps_per_task": args.steps,
    }
    write_report({**header, **record}, out)
    console.print(f"results written to {out}")
    return 0


def _depths(text: str) -> list[int]:
    try:
        depths = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated depths, got {text!r}") from None
    if min(depths) < 1:
        raise argparse.ArgumentTypeError(f"depths must be at least 1, got {text!r}")
    return depths


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` subcommand to the ``kaizen`` command's subparsers."""
    bench = subparsers.add_parser(
        "bench",
        help="images/s of the Kaizen training step vs a conventional pipeline",
        description="Measure the Kaizen training step (batched augmentation on the device, "
        "student + teacher forward, backward, update) against a conventional per-sample "
        "DataLoader pipeline with the same model and losses, and optionally the time per task "
        "of a long run; prints a table and writes a JSON report.",
    )
    bench.add_argument(
        "overrides", nargs="*", help="dotted settings applied last, e.g. train.num_threads=2"
    )
    bench.add_argument(
        "--preset",
        help="a preset name or YAML file (default: MoCoV2+ Kaizen with the paper's settings, "
        "ResNet-18 CIFAR stem, synthetic 32x32x3 images, batch 256 + 32 replay)",
    )
    bench.add_argument(
        "--backbone",
        choices=("resnet18", "resnet50", "convnet"),
        help=f"backbone (convnet defaults to width {SMALL_BACKBONE_WIDTH}, for CPUs)",
    )
    bench.add_argument("--width", type=float, help="backbone width multiplier")
    bench.add_argument("--batch-size", type=int, help="current-task images per step")
    bench.add_argument("--replay-batch-size", type=int, help="replay images per step")
    bench.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    bench.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    bench.add_argument(
        "--repeats",
        type=_positive,
        default=1,
        help="measure the two pipelines alternately this many times each and keep each one's "
        "median run (default 1)",
    )
    bench.add_argument(
        "--workers", type=int, default=2, help="data-loader workers of the reference (default 2)"
    )
    _device_and_precision(
        bench, "default: 16-mixed on CUDA, bf16-mixed on a CPU (a preset keeps its own)"
    )
    bench.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        help="train.channels_last for the kaizen step (default: the config's, on)",
    )
    bench.add_argument(
        "--tasks", type=int, default=0, help="tasks of the per-task timing run (0 = skip)"
    )
    bench.add_argument(
        "--steps-per-task", type=int, default=20, help="steps of each timed task (default 20)"
    )
    bench.add_argument(
        "--profile",
        action="store_true",
        help="also profile the kaizen step: time of each part and the largest operators",
    )
    bench.add_argument(
        "--layouts",
        type=int,
        default=0,
        help="also time the kaizen step channels-first and channels-last alternately, this many "
        "times each (default 0 = skip)",
    )
    bench.add_argument(
        "--paper-run",
        action="store_true",
        help="also measure the evaluation forward and extrapolate the paper-scale split "
        "CIFAR-100 run (5 tasks x 500 epochs x 10,000 images) from the Kaizen step",
    )
    bench.add_argument("--out", help=f"JSON report (default {DEFAULT_OUT})")
    bench.set_defaults(handler=run_bench)
    _register_freezing(subparsers)


def _device_and_precision(parser: argparse.ArgumentParser, precision_help: str) -> None:
    """The --device and --precision options of a benchmark command."""
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: auto"
    )
    parser.add_argument(
        "--precision", choices=("32", "bf16-mixed", "16-mixed"), help=precision_help
    )


def _register_freezing(subparsers: argparse._SubParsersAction) -> None:
    freezing = subparsers.add_parser(
        "bench-freezing",
        help="training time, memory and backward FLOPs of LUMP with and without freezing",
        description="Time task 1 of a two-task LUMP run on synthetic 32x32 images, plain and "
        "with progressive layer freezing forced to each of --depths blocks: seconds per "
        "step, the freezing probe, one step's memory peak (CUDA: the allocator's) and "
        "backward FLOPs, each saving beside the paper's; writes a JSON report.",
    )
    freezing.add_argument(
        "overrides", nargs="*", help="dotted settings applied last, e.g. train.num_threads=2"
    )
    freezing.add_argument(
        "--preset",
        default=FREEZING_PRESET,
        help=f"a LUMP preset or YAML file (default {FREEZING_PRESET}: SimSiam, ResNet-18 "
        "CIFAR stem, batch 256)",
    )
    freezing.add_argument("--backbone", choices=("resnet18", "resnet50", "convnet"))
    freezing.add_argument("--width", type=float, help="backbone width multiplier")
    freezing.add_argument("--batch-size", type=int, help="current-task images per step")
    freezing.add_argument(
        "--steps", type=_positive, default=50, help="steps of each task (default 50)"
    )
    freezing.add_argument(
        "--depths",
        type=_depths,
        default=FREEZING_DEPTHS,
        help=f"frozen depths to time, comma-separated (default {FREEZING_DEPTHS}; ResNet-18 "
        "blocks: stem, layer1.0, layer1.1, ..., layer3.1 may be frozen)",
    )
    _device_and_precision(freezing, "default: the preset's")
    freezing.add_argument(
        "--out", help="JSON report (default benchmarks/results/freezing-<device>.json)"
    )
    freezing.set_defaults(handler=run_bench_freezing, replay_batch_size=None, channels_last=None)

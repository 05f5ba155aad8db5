"""The production commands: ``update``, ``promote``, ``history``, ``predict`` and ``export``."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from kaizen.config import UPDATE_KEYS
from kaizen.production.export import CHECK_TOLERANCE, FORMATS, check_export, export_model
from kaizen.production.predict import image_paths, load_model, write_predictions
from kaizen.production.update import update
from kaizen.production.versions import history, promote

REJECTED_EXIT_CODE = 3
"""``kaizen update`` exits with it when the update's model is kept as a candidate."""


def _update(args: argparse.Namespace, console: Console) -> int:
    outcome = update(
        args.run_dir,
        args.data,
        label_fraction=args.label_fraction,
        test=args.test,
        test_fraction=args.test_fraction,
        overrides=args.overrides,
        console=console,
    )
    row = outcome.result.tasks[-1]
    console.print(
        f"update trained as task {row.task}: accuracy per task "
        + " ".join(f"{value:.3f}" for value in row.accuracies),
        highlight=False,
    )
    console.print(f"{outcome.version}: {outcome.reason}", highlight=False, soft_wrap=True)
    return 0 if outcome.promoted else REJECTED_EXIT_CODE


def _promote(args: argparse.Namespace, console: Console) -> int:
    promote(Path(args.run_dir), args.version)
    console.print(f"{args.version} is in service in {args.run_dir}", highlight=False)
    return 0


def _history(args: argparse.Namespace, console: Console) -> int:
    table = Table(title=escape(f"Model versions of {args.run_dir}"))
    for column in ("version", "task", "update", "classes", "seen acc", "old acc", "new acc"):
        table.add_column(column, justify="right")
    table.add_column("status")
    reasons = []
    rows = history(Path(args.run_dir))
    if not rows:
        console.print(
            f"{args.run_dir} has no model versions yet: none is written before the first task "
            "ends, nor with train.save_models=false",
            highlight=False,
            soft_wrap=True,
        )
        return 0
    for row in rows:
        metrics, gate = row["metrics"], row["gate"]
        old = metrics["old_task_accuracy"]
        table.add_row(
            row["version"] + (" *" if row["in_service"] else ""),
            str(row["task"]),
            str(row["update"] or ""),
            str(row["classes"]),
            f"{metrics['seen_accuracy']:.3f}",
            "" if old is None else f"{old:.3f}",
            f"{metrics['new_task_accuracy']:.3f}",
            row["status"],
        )
        if gate:
            reasons.append(f"{row['version']}: {gate['reason']}")
    console.print(table)
    console.print("* in service (models/current)")
    for reason in reasons:
        console.print(reason, highlight=False, soft_wrap=True)
    return 0


def _predict(args: argparse.Namespace, console: Console) -> int:
    model = load_model(args.model)
    paths = image_paths(args.images)
    images, kept, skipped = model.read_images(paths)
    for note in skipped:
        console.print(f"[yellow]warning:[/yellow] {note}", soft_wrap=True, highlight=False)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        predictions = model.predict(images, args.top_k, args.batch_size, progress)
    predictions = [
        type(p)(str(path), p.classes, p.probabilities)
        for p, path in zip(predictions, kept, strict=True)
    ]
    if args.out:
        write_predictions(predictions, Path(args.out))
        console.print(f"{len(predictions)} predictions written to {args.out}", highlight=False)
        return 0
    for p in predictions:
        best = ", ".join(f"{c} {v:.3f}" for c, v in zip(p.classes, p.probabilities, strict=True))
        console.print(f"{p.source}\t{best}", highlight=False, soft_wrap=True)
    return 0


def _export(args: argparse.Namespace, console: Console) -> int:
    model = load_model(args.model)
    path = export_model(model, args.format, Path(args.out) if args.out else None)
    console.print(f"{model.folder} exported as {args.format} to {path}", highlight=False)
    if args.check:
        difference = check_export(model, args.format, path)
        console.print(
            f"checked: the file's logits match PyTorch's within {difference:.1e} "
            f"(at most {CHECK_TOLERANCE:g} allowed)",
            highlight=False,
        )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the production commands to the ``kaizen`` command's subparsers."""
    update_parser = subparsers.add_parser(
        "update",
        help="train one more task on a finished run from newly arrived data",
        description="Train one more task on the finished run in RUN_DIR from DATA: a folder of "
        "<class>/* (labelled) and _unlabelled/* images, a .npz (x, y; y=-1 unlabelled) or a CSV "
        "of path,label (empty label: unlabelled). New class names grow the classifier. The "
        "task's model becomes models/v<k>; it is put in service only if the gate holds "
        f"(gate.max_old_drop, gate.max_flip_rate), else the command exits {REJECTED_EXIT_CODE}.",
    )
    update_parser.add_argument("run_dir", metavar="RUN_DIR", help="a finished run directory")
    update_parser.add_argument("data", metavar="DATA", help="folder, .npz or .csv of new images")
    update_parser.add_argument(
        "overrides",
        nargs="*",
        help=f"the new task's budget and rates ({', '.join(UPDATE_KEYS)}), gate.* and runtime "
        "settings (train.accelerator, ...)",
    )
    update_parser.add_argument(
        "--label-fraction",
        type=float,
        default=1.0,
        help="share of the labelled images that keep their label (default: 1)",
    )
    update_parser.add_argument(
        "--test", metavar="DATA", help="labelled test data (default: held out from DATA)"
    )
    update_parser.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        help="share of each class of DATA held out for testing without --test (default: 0.2)",
    )
    update_parser.set_defaults(handler=_update)

    promote_parser = subparsers.add_parser("promote", help="put a model version in service by hand")
    promote_parser.add_argument("run_dir", metavar="RUN_DIR")
    promote_parser.add_argument("version", metavar="VERSION", help="v<k>, see kaizen history")
    promote_parser.set_defaults(handler=_promote)

    history_parser = subparsers.add_parser(
        "history", help="list a run's model versions with their metrics"
    )
    history_parser.add_argument("run_dir", metavar="RUN_DIR")
    history_parser.set_defaults(handler=_history)

    predict_parser = subparsers.add_parser(
        "predict",
        help="classify images with a saved model",
        description="Classify IMAGES (files, folders, glob patterns) with MODEL: a run "
        "directory (its version in service) or a models/v<k> folder. An unreadable image is "
        "named and skipped.",
    )
    predict_parser.add_argument("model", metavar="MODEL")
    predict_parser.add_argument("images", nargs="+", metavar="IMAGES")
    predict_parser.add_argument("--top-k", type=int, default=1, help="classes per image")
    predict_parser.add_argument("--batch-size", type=int, default=256)
    predict_parser.add_argument("--out", help="write a .csv or .jsonl instead of printing")
    predict_parser.set_defaults(handler=_predict)

    export_parser = subparsers.add_parser(
        "export",
        help="write a saved model as ONNX, TorchScript or safetensors",
        description="Export MODEL (a run directory or a models/v<k> folder) with its "
        "preprocessing inside: uint8 images (N, C, H, W) in, logits out.",
    )
    export_parser.add_argument("model", metavar="MODEL")
    export_parser.add_argument("--format", required=True, help=", ".join(FORMATS))
    export_parser.add_argument("--out", help="output file (default: <version>.<suffix>)")
    export_parser.add_argument(
        "--check",
        action="store_true",
        help="run the file (onnxruntime, or torch.jit) and compare its logits with PyTorch's",
    )
    export_parser.set_defaults(handler=_export)

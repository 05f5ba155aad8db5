"""The benchmark: both step measurements, the reference data pipeline, per-task timing, the report
and the ``bench`` subcommand, on tiny configs."""

from __future__ import annotations

import argparse
import io
import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from rich.console import Console

from kaizen.bench import (
    flatness,
    linear_drift,
    measure_kaizen_input,
    measure_kaizen_step,
    measure_reference_input,
    measure_reference_step,
    measure_task_scaling,
)
from kaizen.bench.commands import bench_config, register
from kaizen.bench.layouts import compare_layouts
from kaizen.bench.paper_run import PaperRun, extrapolate
from kaizen.bench.profile import profile_kaizen_step
from kaizen.bench.reference import TwoViewDataset
from kaizen.bench.report import build_report, median_run, write_report
from kaizen.bench.throughput import bench_data
from kaizen.config import RunConfig, build_config
from kaizen.data.augment import Normalize, ViewAugment, channel_stats

NO_OP_AUGMENT = [
    "augment.crop_scale=[1.0, 1.0]",
    "augment.jitter_prob=0.0",
    "augment.grayscale_prob=0.0",
    "augment.solarize_prob=[0.0, 0.0]",
    "augment.hflip_prob=0.0",
]
STEP_KEYS = {
    "images_per_second",
    "seconds_per_step",
    "images_per_step",
    "steps",
    "peak_memory_mb",
    "memory_measure",
    "worker_peak_memory_mb",
    "autocast_dtype",
    "channels_last",
    "device",
}


@pytest.fixture
def config(tiny) -> RunConfig:
    """MoCoV2+ Kaizen on 16x16 synthetic images, ConvNet width 0.25, batch 16 + 4 replay."""
    return build_config(tiny("kaizen", "mocov2plus"), ["train.num_threads=1"])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kaizen")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def _check_step(record: dict, images_per_step: int) -> None:
    assert set(record) == STEP_KEYS
    assert record["images_per_step"] == images_per_step
    for key in ("images_per_second", "seconds_per_step", "peak_memory_mb"):
        assert math.isfinite(record[key]) and record[key] > 0, key


def test_both_steps_report_positive_finite_numbers(config: RunConfig) -> None:
    kaizen_step = measure_kaizen_step(config, warmup=1, steps=2, channels_last=True)
    reference_step = measure_reference_step(config, warmup=1, steps=2, num_workers=0)
    _check_step(kaizen_step, 16 + 4)
    _check_step(reference_step, 16 + 4)
    assert kaizen_step["channels_last"] and not reference_step["channels_last"]
    assert reference_step["worker_peak_memory_mb"] == 0.0


def test_input_pipelines_alone_report_positive_finite_rates(config: RunConfig) -> None:
    kaizen_input = measure_kaizen_input(config, warmup=1, steps=2)
    reference_input = measure_reference_input(config, warmup=1, steps=2, num_workers=0)
    for record in (kaizen_input, reference_input):
        assert record["seconds_per_step"] > 0
        assert record["images_per_second"] == pytest.approx(20 / record["seconds_per_step"])
    assert reference_input["workers"] == 0


def test_profile_times_every_part_of_the_step(config: RunConfig) -> None:
    profile = profile_kaizen_step(config, warmup=1, steps=2, top=3)
    parts = profile["parts"]
    steps = {"augment", "teacher", "forward_and_losses", "backward", "optimizer_and_ema"}
    assert set(parts) == {f"kaizen.{name}" for name in [*steps, "momentum_forward"]}
    assert all(seconds > 0 for seconds in parts.values())
    assert parts["kaizen.momentum_forward"] < parts["kaizen.forward_and_losses"]
    assert profile["time"] == "host" and len(profile["operators"]) == 3
    own_times = list(profile["operators"].values())
    assert own_times == sorted(own_times, reverse=True)


def test_layout_comparison_alternates_and_compares_medians(config: RunConfig) -> None:
    layouts = compare_layouts(config, repeats=3, warmup=1, steps=1)
    for name in ("channels_first", "channels_last"):
        values = layouts["seconds_per_step"][name]
        assert len(values) == 3 and all(value > 0 for value in values)
        assert layouts["median_seconds_per_step"][name] == sorted(values)[1]
    medians = layouts["median_seconds_per_step"]
    expected = medians["channels_first"] / medians["channels_last"]
    assert layouts["channels_last_speedup"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="repeats"):
        compare_layouts(config, repeats=0, warmup=1, steps=1)


@pytest.mark.parametrize("channels", [1, 3])
def test_reference_views_are_normalised_like_the_kaizen_views(tiny, channels: int) -> None:
    tree = tiny("kaizen", "mocov2plus")
    tree["data"]["synthetic"]["channels"] = channels
    config = build_config(tree, [*NO_OP_AUGMENT, "train.num_threads=1"])
    data = bench_data(config)
    mean, std = channel_stats(data.images)
    dataset = TwoViewDataset(data.images, data.labels, data.current, config.augment, mean, std)
    first, second, label = dataset[0]
    assert first.shape == second.shape == (channels, *data.image_size)
    assert first.dtype == torch.float32 and isinstance(label, int)
    reference = torch.stack([view for item in dataset for view in item[:2]])
    augment = ViewAugment(config.augment, data.image_size, channels, Normalize(mean, std))
    kaizen = augment(data.images[data.current])
    for stat in (torch.mean, torch.std):
        assert torch.allclose(
            stat(reference, dim=(0, 2, 3)), stat(kaizen, dim=(0, 2, 3)), atol=1e-3
        ), stat.__name__


def test_reference_views_are_augmented(config: RunConfig) -> None:
    data = bench_data(config)
    mean, std = channel_stats(data.images)
    dataset = TwoViewDataset(data.images, data.labels, data.current, config.augment, mean, std)
    first, second, _ = dataset[0]
    assert not torch.equal(first, second)


def test_task_scaling_gives_one_time_per_task(config: RunConfig) -> None:
    seconds = measure_task_scaling(config, num_tasks=2, steps_per_task=1)
    assert len(seconds) == 2
    assert all(math.isfinite(value) and value > 0 for value in seconds)


def test_flatness_and_drift_summarise_the_task_times() -> None:
    assert flatness([2.0, 2.2, 2.1]) == pytest.approx(1.1)
    assert linear_drift([3.0, 3.0, 3.0]) == 0.0
    assert linear_drift([1.0, 2.0, 3.0]) == pytest.approx(1.0)
    assert linear_drift([2.0, 1.0, 2.0]) == 0.0


def test_report_names_machine_command_and_config(config: RunConfig, tmp_path: Path) -> None:
    step = {"images_per_second": 30.0, "device": "cpu"}
    report = build_report(config, {"steps_per_task": 5}, step, {"images_per_second": 10.0}, [])
    write_report(report, tmp_path / "nested" / "bench.json")
    saved = json.loads((tmp_path / "nested" / "bench.json").read_text())
    assert {"platform", "cpu", "cores", "torch_threads"} <= set(saved["machine"])
    assert saved["command"] and saved["torch"] == torch.__version__
    assert saved["config"]["ssl"]["method"] == "mocov2plus"
    assert saved["speedup"] == pytest.approx(3.0)
    assert saved["task_scaling"] is None
    assert saved["input_alone"] is None and saved["kaizen_profile"] is None
    assert saved["layouts"] is None


def test_median_run_keeps_the_middle_run_and_lists_all() -> None:
    runs = [
        {"seconds_per_step": value, "tag": index} for index, value in enumerate([3.0, 1.0, 2.0])
    ]
    assert median_run(runs) == {
        "seconds_per_step": 2.0,
        "tag": 2,
        "seconds_per_step_of_runs": [3.0, 1.0, 2.0],
    }
    assert median_run(runs[:2])["tag"] == 1  # the lower middle of two


def test_default_bench_config_is_the_paper_step_on_synthetic_images() -> None:
    config = bench_config(_parser().parse_args(["bench", "--device", "cpu"]))
    assert (config.model.backbone, config.model.stem) == ("resnet18", "cifar")
    assert (config.ssl.method, config.strategy.name) == ("mocov2plus", "kaizen")
    assert (config.train.batch_size, config.replay.batch_size) == (256, 32)
    assert (config.data.name, config.data.synthetic.image_size) == ("synthetic", 32)
    assert config.train.precision == "bf16-mixed"
    assert config.train.channels_last is True
    options = "bench --device cpu --backbone convnet --no-channels-last"
    small = bench_config(_parser().parse_args(options.split()))
    assert (small.model.backbone, small.model.width) == ("convnet", 0.5)
    assert small.train.channels_last is False


def test_bench_command_writes_the_report(tiny, tmp_path: Path) -> None:
    preset = tmp_path / "tiny.yaml"
    tree = tiny("kaizen", "mocov2plus")
    tree["train"]["num_threads"] = 1
    preset.write_text(yaml.safe_dump(tree))
    out = tmp_path / "bench.json"
    options = (
        "--device cpu --steps 1 --warmup 1 --workers 1 --tasks 2 --steps-per-task 1 --profile "
        "--layouts 1 --repeats 2 --paper-run"
    )
    args = _parser().parse_args(
        ["bench", "--preset", str(preset), *options.split(), "--out", str(out)]
    )
    console = Console(file=io.StringIO(), width=120)
    assert args.handler(args, console) == 0
    saved = json.loads(out.read_text())
    assert saved["kaizen_step"]["images_per_second"] > 0
    assert len(saved["reference_step"]["seconds_per_step_of_runs"]) == 2
    assert saved["reference_step"]["worker_peak_memory_mb"] > 0
    assert len(saved["task_scaling"]["seconds_per_task"]) == 2
    assert set(saved["input_alone"]) == {"kaizen", "reference"}
    assert saved["input_alone"]["reference"]["workers"] == 1
    printed = console.file.getvalue()
    assert "kaizen / reference" in printed and "Input pipeline alone" in printed
    assert "kaizen.backward" in saved["kaizen_profile"]["parts"] and "kaizen.backward" in printed
    assert len(saved["layouts"]["seconds_per_step"]["channels_last"]) == 1
    assert "channels-last speed-up" in printed
    paper = saved["paper_run"]
    assert paper["evaluation"]["images_per_second"] > 0
    assert paper["total_minutes"] * 60 == pytest.approx(
        paper["steps"] * saved["kaizen_step"]["seconds_per_step"] + paper["evaluation_seconds"]
    )
    assert "paper-scale run" in printed


def test_the_paper_run_counts_its_steps_and_evaluated_images() -> None:
    run = PaperRun(
        tasks=2, epochs_per_task=3, train_images_per_task=1000, test_images=100, batch_size=256
    )
    assert run.steps == 2 * 3 * 3  # 1000 // 256 = 3 full batches per epoch
    # per task: the test set for the classifier, then the training images seen so far and the
    # test set for the probes: (100 + 1000 + 100) + (100 + 2000 + 100)
    assert run.evaluated_images == 3400
    plan = extrapolate(0.5, 100.0, run)
    assert plan["train_seconds"] == pytest.approx(9.0)
    assert plan["evaluation_seconds"] == pytest.approx(34.0)
    assert plan["total_minutes"] == pytest.approx(43.0 / 60)
    # the paper's run: 5 x 500 epochs of 39 full batches
    assert PaperRun().steps == 5 * 500 * 39


def test_bench_freezing_defaults_to_resnet18_lump_at_batch_256_and_checks_depths() -> None:
    args = _parser().parse_args(["bench-freezing", "--device", "cpu"])
    assert args.depths == [3, 5, 7]
    config = bench_config(args)
    assert (config.strategy.name, config.ssl.method) == ("lump", "simsiam")
    assert (config.model.backbone, config.model.stem, config.train.batch_size) == (
        "resnet18",
        "cifar",
        256,
    )
    assert config.data.name == "synthetic" and config.data.synthetic.image_size == 32
    for bad in ("3,x", "0,3"):
        with pytest.raises(SystemExit):
            _parser().parse_args(["bench-freezing", "--depths", bad])

"""Bad input: a one-line error naming the problem (exit code 2), and the run already in the
directory is left exactly as it was; or, where the input is usable, a logged handling."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

import kaizen
from conftest import tiny_pretrained_tree
from kaizen.cli import main
from kaizen.data.formats.synthetic import make_synthetic

Edit = Callable[[dict, Path], None]


def _npz(
    path: Path,
    *,
    labels_dtype: str = "int64",
    shift: int = 0,
    drop_class: int | None = None,
    drop_test_class: int | None = None,
) -> Path:
    data = make_synthetic(num_classes=6, train_per_class=16, test_per_class=4, image_size=12)
    x, y = data.train.images[:, 0].numpy(), data.train.labels.numpy() + shift
    x_test, y_test = data.test.images[:, 0].numpy(), data.test.labels.numpy() + shift
    if drop_class is not None:
        keep = y != drop_class
        x, y = x[keep], y[keep]
    if drop_test_class is not None:
        keep = y_test != drop_test_class
        x_test, y_test = x_test[keep], y_test[keep]
    np.savez(path, x=x, y=y.astype(labels_dtype), x_test=x_test, y_test=y_test.astype(labels_dtype))
    return path


def _image_folder(root: Path, *, corrupt: bool = False, mixed_sizes: bool = False) -> Path:
    for split in ("train", "val"):
        for label in ("cat", "dog"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for index in range(4):
                side = 12 + (4 if mixed_sizes and index == 0 else 0)
                Image.new("RGB", (side, side), (index * 40, 80, 120)).save(folder / f"{index}.png")
    if corrupt:
        (root / "train" / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    return root


def _use_npz(**kwargs) -> Edit:
    def edit(tree: dict, tmp: Path) -> None:
        tree["data"] = {"name": "npz", "path": str(_npz(tmp / "data.npz", **kwargs))}

    return edit


def _use_folder(**kwargs) -> Edit:
    def edit(tree: dict, tmp: Path) -> None:
        tree["data"] = {
            "name": "image-folder",
            "path": str(_image_folder(tmp / "images", **kwargs)),
        }
        tree["scenario"] = {"num_tasks": 2}

    return edit


def _set(section: str, **values) -> Edit:
    def edit(tree: dict, tmp: Path) -> None:
        tree.setdefault(section, {}).update(values)

    return edit


def _both(first: Edit, second: Edit) -> Edit:
    def edit(tree: dict, tmp: Path) -> None:
        first(tree, tmp)
        second(tree, tmp)

    return edit


def _slca(strategy: str, weights: bool = False, **settings: object) -> Edit:
    """The tiny SLCA-family tree of ``strategy`` with these strategy settings (and a weights
    file named, which the refused config never reads)."""

    def edit(tree: dict, tmp: Path) -> None:
        tree.clear()
        tree.update(tiny_pretrained_tree(strategy))
        tree["strategy"].update(settings)
        if weights:
            tree["model"]["weights"] = str(tmp / "vit.safetensors")

    return edit


def _no_ssl(tree: dict, tmp: Path) -> None:
    tree["ssl"] = {"method": "none"}
    tree["strategy"] = {"name": "finetune"}


CASES: dict[str, tuple[Edit, str]] = {
    "a backbone that never trains": (
        _no_ssl,
        "set strategy.end_to_end=true, choose an SSL method (e.g. ssl.method=simclr), or give "
        "model.weights",
    ),
    "corrupt image": (_use_folder(corrupt=True), "broken.png"),
    "mixed image sizes": (_use_folder(mixed_sizes=True), "data.image_size"),
    "labels of the wrong type": (_use_npz(labels_dtype="float32"), "y"),
    "labels out of range": (_use_npz(shift=-1), "label"),
    "task without samples": (_set("scenario", class_order=[[0, 1], [2, 3], [4, 9]]), "class 9"),
    "more tasks than classes": (_set("scenario", num_tasks=7), "num_tasks=7"),
    "missing data path": (_set("data", name="npz", path="/no/such/file.npz"), "/no/such/file.npz"),
    "value out of range": (_set("train", batch_size=1), "train.batch_size"),
    "unknown key": (_set("train", epoch=3), "train.epoch"),
    "path escaping the run directory": (_set("data", cache_dir="../outside"), "data.cache_dir"),
    "freezing threshold out of [0, 1]": (
        _set("freeze", enabled=True, threshold=1.5),
        "freeze.threshold",
    ),
    "freezing energy share of 1": (_set("freeze", enabled=True, energy=1.0), "freeze.energy"),
    "negative freezing energy step": (
        _set("freeze", enabled=True, energy_step=-0.1),
        "freeze.energy_step",
    ),
    "negative freezing budget": (_set("freeze", enabled=True, budget=-1), "freeze.budget"),
    "freezing budget above the freezable blocks": (
        _set("freeze", enabled=True, budget=4),
        "freeze.budget to at most 3",
    ),
    "unknown freezing measure": (_set("freeze", enabled=True, measure="cka"), "freeze.measure"),
    "unknown freezing selection": (
        _set("freeze", enabled=True, selection="best"),
        "freeze.selection",
    ),
    "freezing without earlier images": (
        _both(_set("strategy", name="joint"), _set("freeze", enabled=True)),
        "freeze.enabled",
    ),
    "training resize smaller than the crop": (
        _set("augment", crop="resize-then-crop", resize_to=12),
        "augment.resize_to=12",
    ),
    "unknown LoRA target": (_slca("slcapp", lora_targets=["qkv", "mlp"]), "strategy.lora_targets"),
    "frozen backbone with LoRA": (
        _slca("slcapp", weights=True, freeze_backbone=True),
        "contradicts slcapp",
    ),
    "frozen backbone without weights": (
        _slca("slca", freeze_backbone=True),
        "strategy.freeze_backbone=true keeps the backbone as it was built",
    ),
    "unknown weight decay scope": (_set("optim", weight_decay_on="norms"), "optim.weight_decay_on"),
    "unknown evaluated class set": (_set("eval", classes="old"), "eval.classes"),
    "weight aligning on per-task heads": (
        _both(_slca("slca"), _set("classifier", weight_align=True)),
        "classifier.weight_align=true rescales the output rows of one classifier",
    ),
    "re-fit without labelled images": (
        _both(_set("scenario", label_fraction=0.0), _set("classifier", refit=True)),
        "classifier.refit re-fits the classifier on labelled images",
    ),
    "re-fit of no epochs": (_set("classifier", refit=True, refit_epochs=0), "refit_epochs"),
    "LUMP buffer larger than the data": (
        _set("strategy", name="lump", buffer_size=100_000),
        "strategy.buffer_size=100000",
    ),
}


@pytest.fixture(scope="module")
def previous_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run, copied into each test's run directory."""
    from conftest import tiny_tree

    run_dir = tmp_path_factory.mktemp("previous") / "run"
    kaizen.run(tiny_tree("finetune"), run_dir)
    return run_dir


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_named_and_the_existing_run_is_kept(
    case: str, tiny, previous_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit, named = CASES[case]
    run_dir = tmp_path / "run"
    shutil.copytree(previous_run, run_dir)
    before = _snapshot(run_dir)
    tree = tiny("kaizen")
    edit(tree, tmp_path)
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump(tree))
    assert main(["run", str(config), "--out", str(run_dir), "--force"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("kaizen: error:") and "\n" not in error
    assert named in error, error
    assert _snapshot(run_dir) == before


def test_unknown_preset_keeps_the_existing_run(previous_run: Path, tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(previous_run, run_dir)
    before = _snapshot(run_dir)
    assert main(["run", "no-such-preset", "--out", str(run_dir), "--force"]) == 2
    assert "unknown preset 'no-such-preset'" in capsys.readouterr().err
    assert _snapshot(run_dir) == before


def test_label_fraction_zero_trains_the_task_on_self_supervised_terms_only(
    tiny, tmp_path: Path
) -> None:
    tree = tiny("kaizen")
    tree["scenario"]["label_fraction"] = [1.0, 0.0, 1.0]
    result = kaizen.run(tree, tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["complete"] and all(
        0.0 <= value <= 1.0 for row in saved["accuracy_matrix"]["values"] for value in row
    )
    # nothing of the unlabelled task reached the labelled replay buffer
    import torch

    state = torch.load(sorted((tmp_path / "checkpoints").glob("*.pt"))[-1], weights_only=True)
    task_1_classes = set(result.tasks[1].classes)
    assert not task_1_classes & set(state["method"]["replay"]["labels"].tolist())


@pytest.mark.parametrize(
    ("dropped", "logged"),
    [
        ({"drop_test_class": 5}, "classes [5] have no test images; the task is measured on"),
        ({"drop_class": 5}, "classes [5] have no training images; the task trains on"),
    ],
)
def test_a_class_missing_from_a_split_is_logged_and_the_run_goes_on(
    dropped: dict, logged: str, tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tiny("finetune")
    tree["data"] = {"name": "npz", "path": str(_npz(tmp_path / "data.npz", **dropped))}
    kaizen.run(tree, tmp_path / "run")
    assert logged in capsys.readouterr().err
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["complete"]


HARDWARE_CASES: dict[str, tuple[list[str], int, str]] = {
    # case: (overrides, CUDA GPUs the machine pretends to have, text the error names)
    "cuda without a GPU": (["train.accelerator=cuda"], 0, "train.accelerator=cpu"),
    "more GPUs than exist": (
        ["train.accelerator=auto", "train.devices=2"],
        1,
        "train.devices=1 or fewer",
    ),
    "fp16 autocast on CPU": (["train.precision=16-mixed"], 0, "train.precision=bf16-mixed"),
}


@pytest.mark.parametrize("case", sorted(HARDWARE_CASES))
def test_hardware_that_is_not_there_is_named_before_the_run_directory_is_touched(
    case: str,
    tiny,
    previous_run: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import torch

    overrides, gpus, named = HARDWARE_CASES[case]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    run_dir = tmp_path / "run"
    shutil.copytree(previous_run, run_dir)
    before = _snapshot(run_dir)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny("kaizen")))
    bench_out = tmp_path / "bench.json"
    commands = (
        ["run", str(config), *overrides, "--out", str(run_dir), "--force"],
        ["bench", "--preset", str(config), "--steps", "1", "--out", str(bench_out), *overrides],
    )
    for command in commands:
        assert main(command) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith("kaizen: error:") and "\n" not in error
        assert named in error, error
    assert _snapshot(run_dir) == before
    assert not bench_out.exists()


@pytest.mark.parametrize("below", ["", "run"], ids=["the-file", "under-the-file"])
@pytest.mark.parametrize("force", [False, True], ids=["", "force"])
def test_a_run_directory_that_is_a_file_is_refused_and_the_file_kept(
    below: str, force: bool, tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny("finetune")))
    taken = tmp_path / "notes.txt"
    taken.write_text("not a run\n")
    out = taken / below if below else taken
    assert main(["run", str(config), "--out", str(out), *(["--force"] if force else [])]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("kaizen: error:") and "\n" not in error
    assert "is a file, not a folder: choose another --out" in error, error
    assert taken.read_text() == "not a run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "tiny.yaml"]


@pytest.mark.parametrize("given", ["weights", "end_to_end"])
def test_without_ssl_a_backbone_trains_end_to_end_or_is_pre_trained(
    given: str, tiny, previous_run: Path, tmp_path: Path
) -> None:
    """A linear probe of a pre-trained backbone (a kaizen-cl run's, here) is a run of its own,
    as is a classifier loss that trains the backbone."""
    tree = tiny("finetune")
    _no_ssl(tree, tmp_path)
    if given == "weights":
        tree["model"]["weights"] = str(previous_run)
    else:
        tree["strategy"]["end_to_end"] = True
    kaizen.run(tree, tmp_path / "run")
    assert json.loads((tmp_path / "run" / "results.json").read_text())["complete"]

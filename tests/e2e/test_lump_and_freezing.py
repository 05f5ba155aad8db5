"""LUMP and layer freezing plugged into the trainer, end to end on synthetic data."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch
from lightning.fabric import Fabric

import kaizen
from kaizen.config import build_config
from kaizen.data.stream import load_stream
from kaizen.learner.learner import build_learner
from kaizen.methods.parts.mixup import ReservoirMixup
from kaizen.methods.registry import settings_of
from kaizen.methods.seam import RunContext
from kaizen.methods.strategies.lump import LumpSettings
from kaizen.ssl.registry import views_of


def _read(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def test_lump_needs_no_labels_and_reports_the_task_aware_knn(tiny, tmp_path: Path) -> None:
    tree = tiny("lump")
    tree["scenario"]["label_fraction"] = 0.0
    tree["eval"] = {"probes": ["knn", "knn-task"]}
    kaizen.run(tree, tmp_path)
    saved = _read(tmp_path)
    assert saved["complete"]
    assert "task-aware" in saved["probes"]["knn-task"]["protocol"]
    task_aware = saved["probes"]["knn-task"]["values"]
    assert len(task_aware) == 3 and all(0.0 <= v <= 1.0 for row in task_aware for v in row)


def test_lump_mixes_each_view_with_an_augmented_buffer_view(tiny) -> None:
    config = build_config(tiny("lump"))
    fabric = Fabric(accelerator="cpu", devices=1)
    stream = load_stream(config, fabric, views_of(config.ssl))
    run = RunContext(stream, fabric, build_learner(config, 3, 6), stream.tasks[0])
    part = ReservoirMixup(settings_of(config, LumpSettings), seed=0)
    part.start_task(run)
    views = stream.augment(stream.train_images.gather(stream.tasks[0].train_indices[:4]))
    assert part.transform(views, torch.Generator().manual_seed(0)) is views  # first task
    part.end_task(run)
    run.task = stream.tasks[1]
    part.start_task(run)
    assert len(part.indices) == settings_of(config, LumpSettings).buffer_size
    torch.manual_seed(7)
    mixed = part.transform(views, torch.Generator().manual_seed(3))
    # the same draws by hand: buffer images, their views, then lambda ~ Beta(0.4, 0.4)
    torch.manual_seed(7)
    draw = torch.randint(len(part.indices), (4,), generator=torch.Generator().manual_seed(3))
    buffered = stream.augment(stream.train_images.gather(part.indices[draw]))
    mix = float(torch.distributions.Beta(torch.tensor(0.4), torch.tensor(0.4)).sample())
    torch.testing.assert_close(mixed, mix * views + (1 - mix) * buffered)
    assert 0.0 < mix < 1.0


def test_freezing_records_ratios_and_keeps_frozen_blocks_fixed(tiny, tmp_path: Path) -> None:
    tree = tiny("kaizen")
    tree["freeze"] = {"enabled": True, "threshold": 0.0}
    tree["train"]["checkpoint_every_epochs"] = 1
    kaizen.run(tree, tmp_path)
    tasks = _read(tmp_path)["tasks"]
    assert "parts" not in tasks[0]  # nothing measured at the first task
    for record in tasks[1:]:
        freeze = record["parts"]["freeze"]
        assert freeze["blocks"] == ["stage1", "stage2", "stage3", "stage4"]
        assert len(freeze["ratios"]) == 4 and all(0.0 <= r <= 1.0 + 1e-9 for r in freeze["ratios"])
        assert freeze["frozen_depth"] == 3  # threshold 0: every block before the last stage
    checkpoints = sorted((tmp_path / "checkpoints").glob("ckpt-t00[23]-e00000-*.pt"))
    after_1, after_2 = (torch.load(p, weights_only=True)["learner"] for p in checkpoints)
    frozen = "backbone.features.0.weight"  # stage 1
    trained = "backbone.features.12.weight"  # stage 4
    assert torch.equal(after_1[frozen], after_2[frozen])
    assert not torch.equal(after_1[trained], after_2[trained])


def test_no_freezing_above_every_ratio(tiny, tmp_path: Path) -> None:
    tree = tiny("kaizen")
    tree["freeze"] = {"enabled": True, "threshold": 1.0}
    kaizen.run(tree, tmp_path)
    depths = [t["parts"]["freeze"]["frozen_depth"] for t in _read(tmp_path)["tasks"][1:]]
    assert depths == [0, 0]


def test_the_report_shows_the_block_ratios_and_marks_the_frozen_blocks(
    tiny, tmp_path: Path
) -> None:
    from kaizen.report import write_report

    tree = tiny("kaizen")
    tree["freeze"] = {"enabled": True, "threshold": 0.0}
    kaizen.run(tree, tmp_path)
    markdown = write_report(tmp_path)[0].read_text()
    section = markdown.split("## Layer freezing", 1)[1].split("\n## ", 1)[0]
    assert "covariance measure" in section
    assert "| task | stage1 | stage2 | stage3 | stage4 |" in section
    ratios = _read(tmp_path)["tasks"][1]["parts"]["freeze"]["ratios"]
    # threshold 0: the three stages before the last are frozen, marked *
    marked = [f"{r:.3f}*" for r in ratios[:3]]
    assert f"| 1 | {' | '.join(marked)} | {ratios[3]:.3f} |" in section


def test_freezing_lowers_the_measured_backward_flops_and_step_memory(tiny, tmp_path: Path) -> None:
    costs = {}
    for name, freeze in (("plain", {}), ("frozen", {"enabled": True, "threshold": 0.0})):
        tree = tiny("kaizen")
        tree["freeze"] = freeze or {"enabled": False}
        kaizen.run(tree, tmp_path / name)
        costs[name] = json.loads((tmp_path / name / "costs.json").read_text())["tasks"]
    plain, frozen = costs["plain"], costs["frozen"]
    # the first task is never frozen: the same step costs the same
    assert frozen[0]["backward_flops_per_step"] == plain[0]["backward_flops_per_step"] > 0
    for task in (1, 2):
        assert frozen[task]["backward_flops_per_step"] < plain[task]["backward_flops_per_step"]
        assert frozen[task]["step_peak_memory_bytes"] < plain[task]["step_peak_memory_bytes"]
    assert plain[0]["step_memory_kind"] == frozen[0]["step_memory_kind"]


def test_compare_shows_the_savings_columns(tiny, tmp_path: Path) -> None:
    from kaizen.report import compare_runs

    for name, enabled in (("plain", False), ("frozen", True)):
        tree = tiny("kaizen")
        tree["name"] = name
        tree["freeze"] = {"enabled": enabled, "threshold": 0.0}
        kaizen.run(tree, tmp_path / name)
    comparison = compare_runs([tmp_path / "plain", tmp_path / "frozen"], tmp_path / "compare")
    markdown = (tmp_path / "compare" / "compare.md").read_text()
    assert "backward GFLOPs 1..T" in markdown and "step memory (MiB)" in markdown
    plain, frozen = sorted(comparison.groups, key=lambda group: "freeze" in group.strategy)
    assert "freeze.enabled=true" in frozen.strategy
    assert frozen.costs.backward_flops < plain.costs.backward_flops
    assert frozen.costs.step_memory_bytes < plain.costs.step_memory_bytes


def test_a_shared_frozen_prefix_runs_once_and_changes_no_result(tiny, tmp_path: Path, monkeypatch):
    from kaizen.learner.teacher import Teacher

    starts: list[int] = []
    teacher_forward = Teacher.forward

    def recording_forward(self: Teacher, views: torch.Tensor, start_block: int = 0):
        starts.append(start_block)
        return teacher_forward(self, views, start_block)

    monkeypatch.setattr(Teacher, "forward", recording_forward)
    tree = tiny("kaizen")
    tree["freeze"] = {"enabled": True, "threshold": 0.0}
    kaizen.run(tree, tmp_path / "shared")
    assert starts and set(starts) == {3}  # every teacher step starts after the frozen stages
    starts.clear()
    monkeypatch.setattr(Teacher, "shared_prefix_depth", lambda self, student: 0)
    kaizen.run(tree, tmp_path / "separate")
    assert starts and set(starts) == {0}
    shared = (tmp_path / "shared" / "results.json").read_text()
    assert shared == (tmp_path / "separate" / "results.json").read_text()


def _subspace(**settings) -> dict:
    return {"enabled": True, "measure": "subspace", "selection": "ranking", **settings}


def test_subspace_ranking_freezes_the_highest_ratios_within_the_budget(tiny, tmp_path: Path):
    from kaizen.report import write_report

    tree = tiny("kaizen")
    tree["freeze"] = _subspace(threshold=0.5, budget=2)
    kaizen.run(tree, tmp_path)
    tasks = _read(tmp_path)["tasks"]
    assert "parts" not in tasks[0]
    frozen_before: list[str] = []
    for record in tasks[1:]:
        freeze = record["parts"]["freeze"]
        assert freeze["measure"] == "subspace"
        ratios, blocks = freeze["ratios"], freeze["blocks"]
        assert all(0.0 <= r <= 1.0 for r in ratios)
        ranked = sorted(range(3), key=lambda index: (-ratios[index], index))
        assert len(freeze["frozen"]) == 2 and set(frozen_before) <= set(freeze["frozen"])
        if not frozen_before:  # the first freezing: the two highest ratios
            assert freeze["frozen"] == [blocks[index] for index in sorted(ranked[:2])]
        frozen_before = freeze["frozen"]
    section = write_report(tmp_path)[0].read_text().split("## Layer freezing", 1)[1]
    assert "subspace measure" in section.split("\n## ", 1)[0]


def test_subspace_bases_grow_and_an_unreachable_threshold_freezes_nothing(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kaizen.methods.parts.freezing import LayerFreezing

    ranks: list[list[int]] = []
    end_task = LayerFreezing.end_task

    def recording_end(self: LayerFreezing, run: RunContext) -> None:
        end_task(self, run)
        ranks.append([basis.shape[1] for basis in self.bases])

    monkeypatch.setattr(LayerFreezing, "end_task", recording_end)
    tree = tiny("finetune")  # keeps no earlier images: the subspace measure needs none
    tree["freeze"] = _subspace(threshold=1.0)
    kaizen.run(tree, tmp_path)
    assert len(ranks) == 3 and all(rank > 0 for rank in ranks[0])
    for earlier, later in itertools.pairwise(ranks):
        assert all(b >= a for a, b in zip(earlier, later, strict=True))
    assert ranks[-1] != ranks[0]
    for record in _read(tmp_path)["tasks"][1:]:
        assert record["parts"]["freeze"]["frozen"] == []


def test_a_restored_freezing_state_freezes_its_blocks(tiny) -> None:
    from kaizen.methods.parts.freezing import LayerFreezing

    config = build_config(tiny("kaizen"))
    fabric = Fabric(accelerator="cpu", devices=1)
    stream = load_stream(config, fabric, views_of(config.ssl))
    state = {"ratios": [0.9, 0.2, 0.8, 0.1], "blocks": ["stage1", "stage2", "stage3", "stage4"]}
    for saved, frozen in (
        ({"frozen": [0, 2], "bases": []}, {0, 2}),
        ({"depth": 2}, {0, 1}),  # an earlier release kept the depth of a frozen prefix only
    ):
        run = RunContext(stream, fabric, build_learner(config, 3, 6), stream.tasks[1])
        part = LayerFreezing(config.freeze, config.model, [], seed=0)
        part.load_state_dict({**state, **saved}, run)
        assert run.learner.backbone.frozen == frozen
        assert part.report()["frozen"] == [state["blocks"][index] for index in sorted(frozen)]


def test_a_prefix_within_the_budget(tiny, tmp_path: Path) -> None:
    tree = tiny("kaizen")
    tree["freeze"] = {"enabled": True, "threshold": 0.0, "budget": 1}
    kaizen.run(tree, tmp_path)
    for record in _read(tmp_path)["tasks"][1:]:
        assert record["parts"]["freeze"]["frozen"] == ["stage1"]
        assert record["parts"]["freeze"]["frozen_depth"] == 1

"""Comparison of runs: grouped by (SSL method, strategy), mean ± std over seeds, cost vs scratch."""

from __future__ import annotations

import csv
import json
import re

import pytest

from kaizen.errors import KaizenError
from kaizen.report import compare_runs
from kaizen.report.aggregate import strategy_order

SEED0 = [
    [0.90, 0.10, 0.00],
    [0.80, 0.85, 0.05],
    [0.60, 0.70, 0.80],
]
SEED1 = [
    [0.90, 0.10, 0.00],
    [0.80, 0.85, 0.05],
    [0.70, 0.80, 0.90],
]
# (simclr, kaizen), seeds 0 and 1:
#   final accuracy: (0.6 + 0.7 + 0.8) / 3 = 0.7 and (0.7 + 0.8 + 0.9) / 3 = 0.8
#     mean 0.75, sample std sqrt((0.05^2 + 0.05^2) / 1) = 0.0707107
#   average continual accuracy: (0.9 + 0.825 + 0.7) / 3 = 0.808333, (0.9 + 0.825 + 0.8) / 3
#     = 0.841667; mean 0.825, std sqrt(2 * 0.0166667^2) = 0.0235702
#   forgetting: ((0.9 - 0.6) + (0.85 - 0.7)) / 2 = 0.225 and ((0.9 - 0.7) + (0.85 - 0.8)) / 2
#     = 0.125; mean 0.175, std sqrt(2 * 0.05^2) = 0.0707107
# costs: wall 3 x 10 s = 30 s and 3 x 12 s = 36 s, mean 33 s; images 3 x 1000 = 3000 each.
# (simclr, scratch) retrains on all data so far: wall 10 + 20 + 30 = 60 s, images 6000.
#   kaizen saving: wall 1 - 33 / 60 = 0.45, images 1 - 3000 / 6000 = 0.5
FINETUNE = [
    [0.90, 0.10, 0.00],
    [0.30, 0.85, 0.05],
    [0.20, 0.30, 0.90],
]


@pytest.fixture(scope="module")
def runs(make_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return [
        make_run(root / "simclr-kaizen-seed0", matrix=SEED0),
        make_run(root / "simclr-kaizen-seed1", seed=1, matrix=SEED1, wall_seconds=(12, 12, 12)),
        make_run(root / "simclr-finetune-seed0", strategy="finetune", matrix=FINETUNE),
        make_run(
            root / "simclr-scratch-seed0",
            strategy="scratch",
            wall_seconds=(10, 20, 30),
            images_seen=(1000, 2000, 3000),
        ),
        make_run(root / "byol-kaizen-seed0", ssl="byol", matrix=SEED1),
        make_run(
            root / "byol-cassle-seed0",
            ssl="byol",
            strategy="cassle",
            matrix=SEED0[:2],
            complete=False,
        ),
    ]


@pytest.fixture(scope="module")
def comparison(runs, tmp_path_factory):
    return compare_runs(runs, tmp_path_factory.mktemp("compare"))


def _group(comparison, ssl, strategy):
    return next(g for g in comparison.groups if (g.ssl_method, g.strategy) == (ssl, strategy))


def test_groups_are_ordered_by_ssl_then_paper_strategies(comparison):
    pairs = [(g.ssl_method, g.strategy) for g in comparison.groups]
    assert pairs == [
        ("simclr", "finetune"),
        ("simclr", "kaizen"),
        ("simclr", "scratch"),
        ("byol", "kaizen"),
    ]


def test_mean_and_std_over_seeds(comparison):
    kaizen = _group(comparison, "simclr", "kaizen")
    assert kaizen.seeds == (0, 1)
    assert kaizen.accuracy["final_accuracy"].mean == pytest.approx(0.75)
    assert kaizen.accuracy["final_accuracy"].std == pytest.approx(0.0707107, rel=1e-5)
    assert kaizen.accuracy["average_continual_accuracy"].mean == pytest.approx(0.825)
    assert kaizen.accuracy["average_continual_accuracy"].std == pytest.approx(0.0235702, rel=1e-5)
    assert kaizen.accuracy["forgetting"].mean == pytest.approx(0.175)
    assert kaizen.accuracy["forgetting"].std == pytest.approx(0.0707107, rel=1e-5)
    # one seed: std 0
    byol = _group(comparison, "byol", "kaizen")
    assert byol.accuracy["final_accuracy"].mean == pytest.approx(0.8)
    assert byol.accuracy["final_accuracy"].std == 0.0


def test_cost_saving_against_scratch_of_the_same_ssl_method(comparison):
    kaizen = _group(comparison, "simclr", "kaizen")
    assert kaizen.costs.wall_seconds == pytest.approx(33.0)
    assert kaizen.costs.images_seen == pytest.approx(3000)
    assert kaizen.wall_saving == pytest.approx(0.45)
    assert kaizen.images_saving == pytest.approx(0.5)
    scratch = _group(comparison, "simclr", "scratch")
    assert scratch.costs.wall_seconds == pytest.approx(60.0)
    assert scratch.costs.images_seen == pytest.approx(6000)
    # no byol scratch run: no saving
    byol = _group(comparison, "byol", "kaizen")
    assert byol.wall_saving is None
    assert byol.images_saving is None


def test_incomplete_runs_are_listed_and_left_out(comparison, runs):
    assert comparison.skipped == [runs[-1]]
    assert "left out: incomplete" in comparison.markdown.read_text()


def test_csv_has_one_row_per_group_with_the_numbers(comparison):
    with comparison.csv.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    kaizen = next(r for r in rows if (r["ssl_method"], r["strategy"]) == ("simclr", "kaizen"))
    assert kaizen["seeds"] == "0 1"
    assert float(kaizen["final_accuracy_mean"]) == pytest.approx(0.75)
    assert float(kaizen["final_accuracy_std"]) == pytest.approx(0.0707107, rel=1e-5)
    assert float(kaizen["wall_saving_vs_scratch"]) == pytest.approx(0.45)
    byol = next(r for r in rows if r["ssl_method"] == "byol")
    assert byol["wall_saving_vs_scratch"] == ""


def test_markdown_and_html_show_the_aggregates_and_embed_the_charts(comparison):
    text = comparison.markdown.read_text()
    assert (
        "| simclr | kaizen | 10 | 0 1 | 0.7500 ± 0.0707 | 0.8250 ± 0.0236 | 0.1750 ± 0.0707 |"
        in text
    )
    assert "| simclr | kaizen | 10 | 33.0 | 3000 | 102.0 | 45.0% | 50.0% |" in text
    charts = re.findall(r"\]\(([^)]+\.png)\)", text)
    assert len(charts) == 4  # one per metric of the table
    assert all((comparison.markdown.parent / name).is_file() for name in charts)
    html = comparison.html.read_text()
    sources = re.findall(r'<img [^>]*src="([^"]*)"', html)
    assert len(sources) == 4
    assert all(source.startswith("data:image/png;base64,") for source in sources)
    assert 'src="http' not in html
    assert "0.7500 ± 0.0707" in html


def test_runs_of_different_settings_are_refused(make_run, tmp_path):
    first = make_run(tmp_path / "a")
    other = make_run(tmp_path / "b", data="cifar100")
    with pytest.raises(KaizenError, match="different settings"):
        compare_runs([first, other], tmp_path / "out")


def test_nothing_complete_or_nothing_given(make_run, tmp_path):
    partial = make_run(tmp_path / "a", matrix=SEED0[:1], complete=False)
    with pytest.raises(KaizenError, match="none of the 1 runs is complete"):
        compare_runs([partial], tmp_path / "out")
    with pytest.raises(KaizenError, match="at least one"):
        compare_runs([], tmp_path / "out")
    with pytest.raises(KaizenError, match=r"no results\.json"):
        compare_runs([tmp_path / "missing"], tmp_path / "out")


def test_strategy_order_puts_the_paper_strategies_first():
    names = ["scratch", "kaizen", "joint", "finetune", "kaizen"]
    assert strategy_order(names) == ["finetune", "kaizen", "scratch", "joint"]


SEEN = {"strategy.classifier_distill_classes": "seen"}


def test_a_variant_of_a_strategy_is_a_group_of_its_own(make_run, tmp_path):
    runs = [
        make_run(tmp_path / "paper0", matrix=SEED0),
        make_run(tmp_path / "paper1", seed=1, matrix=SEED1, settings={"optim.lr": 1.0}),
        make_run(tmp_path / "seen0", matrix=SEED1, settings=SEEN),
        # a setting that differs only between SSL methods names no variant
        make_run(tmp_path / "byol0", ssl="byol", settings={"optim.lr": 0.3}),
    ]
    comparison = compare_runs(runs, tmp_path / "out")
    labels = [(g.ssl_method, g.strategy, g.seeds) for g in comparison.groups]
    assert labels == [
        ("simclr", "kaizen", (0, 1)),  # a missing key counts as its default
        ("simclr", "kaizen[strategy.classifier_distill_classes=seen]", (0,)),
        ("byol", "kaizen", (0,)),
    ]


def test_runs_of_several_budgets_are_drawn_against_steps_per_task(make_run, tmp_path):
    runs = [
        make_run(
            tmp_path / f"{strategy}-e{epochs}-s{seed}",
            strategy=strategy,
            seed=seed,
            matrix=matrix,
            steps=9 * epochs,
            settings={"train.epochs": epochs},
        )
        for epochs in (6, 18)
        for strategy, matrix in (("finetune", FINETUNE), ("kaizen", SEED0))
        for seed in (0, 1)
    ]
    comparison = compare_runs(runs, tmp_path / "out")
    assert [(g.strategy, g.steps_per_task, g.budget[0]) for g in comparison.groups] == [
        ("finetune", 54, 6),
        ("finetune", 162, 18),
        ("kaizen", 54, 6),
        ("kaizen", 162, 18),
    ]
    text = comparison.markdown.read_text()
    charts = re.findall(r"\]\(([^)]+\.png)\)", text)
    assert sorted(charts) == sorted(
        f"compare_budget_{name}.png"
        for name in ("final_accuracy", "average_continual_accuracy", "forgetting", "plasticity")
    )
    assert "| simclr | kaizen | 162 | 0 1 | 0.7000 ± 0.0000 |" in text


def test_accuracy_right_after_training_each_task(comparison):
    kaizen = _group(comparison, "simclr", "kaizen")
    # diagonals (0.9, 0.85, 0.8) and (0.9, 0.85, 0.9)
    assert [s.mean for s in kaizen.just_trained] == pytest.approx([0.9, 0.85, 0.85])
    assert kaizen.just_trained[2].std == pytest.approx(0.0707107, rel=1e-5)
    assert "| simclr | kaizen | 10 | 0.900 ± 0.000 | 0.850 ± 0.000 | 0.850 ± 0.071 |" in (
        comparison.markdown.read_text()
    )


def test_accuracy_can_come_from_a_probe(make_run, tmp_path):
    run = make_run(tmp_path / "lump", strategy="lump", matrix=FINETUNE, probes={"knn-task": SEED0})
    comparison = compare_runs([run], tmp_path / "out", probe="knn-task")
    (group,) = comparison.groups
    assert group.accuracy["final_accuracy"].mean == pytest.approx(0.7)  # SEED0, not FINETUNE
    assert group.accuracy["forgetting"].mean == pytest.approx(0.225)
    assert "knn-task probe on frozen backbone features" in comparison.markdown.read_text()
    with pytest.raises(KaizenError, match=r"no 'linear' probe \(it has: knn-task\)"):
        compare_runs([run], tmp_path / "out", probe="linear")


def _with_step_costs(run_dir, flops: float, memory: tuple[float, ...]):
    """``run_dir`` with every task's backward FLOPs per step and its step memory set."""
    path = run_dir / "costs.json"
    costs = json.loads(path.read_text())
    for task, task_memory in zip(costs["tasks"], memory, strict=True):
        task.update(backward_flops_per_step=flops, step_peak_memory_bytes=task_memory)
    path.write_text(json.dumps(costs))
    return run_dir


def test_a_variant_is_measured_against_its_plain_strategy(make_run, tmp_path):
    frozen = {"freeze.enabled": True}
    runs = [
        _with_step_costs(make_run(tmp_path / "plain", matrix=SEED0), 4e9, (400, 400, 400)),
        _with_step_costs(
            make_run(tmp_path / "frozen", matrix=SEED1, wall_seconds=(10, 5, 5), settings=frozen),
            1e9,
            (400, 400, 200),  # the first later task freezes nothing yet
        ),
    ]
    comparison = compare_runs(runs, tmp_path / "out")
    plain, variant = comparison.groups
    assert plain.against_base is None
    against = variant.against_base
    assert against is not None and against.base == "kaizen"
    assert variant.strategy == "kaizen[freeze.enabled=true]"
    # tasks 1..T: train time 0.8 x (10 + 10) = 16 s against 0.8 x (5 + 5) = 8 s
    assert against.train_time_saving == pytest.approx(0.5)
    assert against.backward_flops_saving == pytest.approx(0.75)
    assert against.step_memory_saving == pytest.approx(0.0)  # largest over tasks 1..T
    assert against.mean_step_memory_saving == pytest.approx(0.25)  # 300 against 400
    assert against.accuracy_change["final_accuracy"] == pytest.approx(0.8 - 0.7)
    assert against.accuracy_change["forgetting"] == pytest.approx(0.125 - 0.225)
    markdown = comparison.markdown.read_text()
    assert (
        "| simclr | kaizen[freeze.enabled=true] | kaizen | 10 | 50.0% | 75.0% | 0.0% | 25.0% |"
        in (markdown)
    )
    rows = list(csv.DictReader(comparison.csv.open()))
    assert rows[0]["plain_strategy"] == "" and rows[1]["plain_strategy"] == "kaizen"
    assert float(rows[1]["backward_flops_saving_vs_plain"]) == pytest.approx(0.75)


def test_the_settings_of_a_switched_off_section_name_no_variant(make_run, tmp_path):
    runs = [
        make_run(tmp_path / "plain", settings={"freeze.enabled": False, "freeze.threshold": 0.5}),
        make_run(tmp_path / "frozen", settings={"freeze.enabled": True, "freeze.threshold": 0.5}),
    ]
    labels = [group.strategy for group in compare_runs(runs, tmp_path / "out").groups]
    assert labels == ["kaizen", "kaizen[freeze.enabled=true,freeze.threshold=0.5]"]


def test_the_classifier_stands_beside_its_probe_and_scratch(make_run, tmp_path):
    # probes: the seed-0 probe's final row is 0.9, 0.8, 0.7 (mean 0.8), the seed-1 one's
    # 0.8, 0.9, 1.0 (mean 0.9); the classifier's are SEED0's and SEED1's (0.7 and 0.8)
    probe0 = [[0.9, 0.0, 0.0], [0.9, 0.9, 0.0], [0.9, 0.8, 0.7]]
    probe1 = [[0.9, 0.0, 0.0], [0.9, 0.9, 0.0], [0.8, 0.9, 1.0]]
    runs = [
        make_run(tmp_path / "k0", matrix=SEED0, probes={"linear": probe0, "knn": SEED1}),
        make_run(tmp_path / "k1", seed=1, matrix=SEED1, probes={"linear": probe1}),
        make_run(
            tmp_path / "scratch",
            strategy="scratch",
            matrix=[[0.9, 0.0, 0.0], [0.8, 0.85, 0.0], [0.6, 0.6, 0.6]],
            wall_seconds=(10, 20, 30),
            probes={"linear": probe1},
        ),
    ]
    comparison = compare_runs(runs, tmp_path / "out")
    text = comparison.markdown.read_text()
    assert (
        "| simclr | kaizen | linear | 0.650 / 0.850 | 0.750 / 0.850 | 0.850 / 0.850 "
        "| 0.7500 / 0.8500 | 10.0 |" in text
    )
    kaizen = _group(comparison, "simclr", "kaizen")
    # train time 0.8 x (10 + 10 + 10) and 0.8 x 3 x 10 against 0.8 x (10 + 20 + 30)
    assert kaizen.train_time_ratio == pytest.approx(0.5)
    assert kaizen.accuracy_ratio == pytest.approx(0.75 / 0.6)
    assert "| 50.0% | 125.0% |" in text
    with comparison.csv.open() as handle:
        row = next(r for r in csv.DictReader(handle) if r["strategy"] == "kaizen")
    assert row["gap_probe"] == "linear"
    assert float(row["probe_final_accuracy_mean"]) == pytest.approx(0.85)
    assert float(row["final_accuracy_vs_scratch"]) == pytest.approx(1.25)
    # a probe's own comparison sets nothing beside it
    probed = compare_runs(runs, tmp_path / "probed", probe="linear")
    assert "Classifier against the probe" not in probed.markdown.read_text()

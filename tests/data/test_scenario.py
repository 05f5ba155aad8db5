"""Cutting a dataset into tasks: class- and data-incremental streams and hidden labels."""

from __future__ import annotations

import pytest
import torch

from kaizen.config import ScenarioConfig
from kaizen.data.formats.synthetic import make_synthetic
from kaizen.data.imageset import ImageSet, LabelledData
from kaizen.data.scenario import build_scenario, training_labels
from kaizen.errors import ConfigError

TRAIN_PER_CLASS = (4, 5, 6, 4, 5, 6)  # 30 training images
TEST_PER_CLASS = (2, 3, 2, 3, 2, 3)  # 15 test images


def _split(per_class: tuple[int, ...], seed: int) -> ImageSet:
    labels = torch.tensor([c for c, n in enumerate(per_class) for _ in range(n)])
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]
    images = torch.zeros(len(labels), 1, 4, 4, dtype=torch.uint8)
    return ImageSet(images=images, labels=labels)


@pytest.fixture
def data() -> LabelledData:
    """Six classes of unequal sizes, labels shuffled so that classes are not contiguous."""
    return LabelledData(
        name="hand",
        train=_split(TRAIN_PER_CLASS, 1),
        test=_split(TEST_PER_CLASS, 2),
        class_names=tuple(f"c{k}" for k in range(6)),
    )


def _where(labels: torch.Tensor, classes) -> list[int]:
    return [i for i, label in enumerate(labels.tolist()) if label in set(classes)]


# ---------------------------------------------------------------------------- class-incremental


def test_seeded_class_order_is_reproducible(data):
    config = ScenarioConfig(num_tasks=3)
    first, again = build_scenario(data, config, seed=5), build_scenario(data, config, seed=5)
    assert [t.classes for t in first] == [t.classes for t in again]
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a.train_indices, b.train_indices)
        assert torch.equal(a.test_indices, b.test_indices)
        assert torch.equal(a.labelled, b.labelled)


def test_other_seed_gives_another_class_order():
    data = make_synthetic(num_classes=10, train_per_class=2, test_per_class=1, image_size=8)
    config = ScenarioConfig(num_tasks=5)
    orders = {tuple(t.classes for t in build_scenario(data, config, seed)) for seed in (0, 1)}
    assert len(orders) == 2
    # the order is a permutation, not the classes in index order
    identity = ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9))
    assert tuple(t.classes for t in build_scenario(data, config, 0)) != identity


@pytest.mark.parametrize("num_tasks", [1, 2, 3, 4, 6])
def test_class_incremental_tasks_partition_the_classes(data, num_tasks):
    tasks = build_scenario(data, ScenarioConfig(num_tasks=num_tasks), seed=0)
    assert [t.index for t in tasks] == list(range(num_tasks))
    classes = [c for t in tasks for c in t.classes]
    assert sorted(classes) == list(range(6))  # every class once
    sizes = sorted(len(t.classes) for t in tasks)
    assert sizes[-1] - sizes[0] <= 1  # near-equal groups
    assert sum(sizes) == 6


def test_task_indices_hold_exactly_the_task_classes_and_all_of_them(data):
    tasks = build_scenario(data, ScenarioConfig(num_tasks=3), seed=3)
    for task in tasks:
        assert task.train_indices.dtype == torch.int64
        assert task.test_indices.dtype == torch.int64
        assert sorted(task.train_indices.tolist()) == _where(data.train.labels, task.classes)
        assert sorted(task.test_indices.tolist()) == _where(data.test.labels, task.classes)
        assert set(data.train.labels[task.train_indices].tolist()) == set(task.classes)
        expected = sum(TRAIN_PER_CLASS[c] for c in task.classes)
        assert len(task.train_indices) == expected
    all_train = torch.cat([t.train_indices for t in tasks]).tolist()
    assert sorted(all_train) == list(range(30))


def test_explicit_class_order(data):
    config = ScenarioConfig(num_tasks=3, class_order=[[5, 0], [3], [1, 4]])
    tasks = build_scenario(data, config, seed=0)
    assert [t.classes for t in tasks] == [(0, 5), (3,), (1, 4)]
    assert sorted(tasks[0].train_indices.tolist()) == _where(data.train.labels, {0, 5})
    assert sorted(tasks[1].test_indices.tolist()) == _where(data.test.labels, {3})
    # class 2 is in no task: none of its images is drawn
    drawn = torch.cat([t.train_indices for t in tasks])
    assert 2 not in data.train.labels[drawn].tolist()
    assert len(drawn) == 30 - TRAIN_PER_CLASS[2]


def test_explicit_class_order_does_not_depend_on_the_seed(data):
    config = ScenarioConfig(num_tasks=2, class_order=[[2, 4], [0]])
    for seed in (0, 7):
        assert [t.classes for t in build_scenario(data, config, seed)] == [(2, 4), (0,)]


@pytest.mark.parametrize(
    ("order", "words"),
    [
        ([[0, 6], [1]], ["class 6", "0..5"]),
        ([[0, -1], [1]], ["class -1"]),
        ([[0, 1], [1, 2]], ["class 1", "twice"]),
        ([[0, 0], [1]], ["class 0", "twice"]),
        ([[0, 1], []], ["task 1", "no classes"]),
    ],
)
def test_invalid_class_order_raises_config_error(data, order, words):
    config = ScenarioConfig(num_tasks=2, class_order=order)
    with pytest.raises(ConfigError) as caught:
        build_scenario(data, config, seed=0)
    message = str(caught.value)
    assert "scenario.class_order" in message
    assert "\n" not in message
    for word in words:
        assert word in message


def test_class_without_training_images_raises_config_error():
    labels = torch.tensor([0, 0, 1, 1])
    images = torch.zeros(4, 1, 4, 4, dtype=torch.uint8)
    data = LabelledData(
        name="gap",
        train=ImageSet(images=images, labels=labels),
        test=ImageSet(images=images, labels=labels),
        class_names=("a", "b", "c"),
    )
    with pytest.raises(ConfigError, match="no training images"):
        build_scenario(data, ScenarioConfig(num_tasks=2, class_order=[[0, 1], [2]]), seed=0)


def test_more_tasks_than_classes_raises_config_error(data):
    with pytest.raises(ConfigError, match="num_tasks=7") as caught:
        build_scenario(data, ScenarioConfig(num_tasks=7), seed=0)
    assert "6 classes" in str(caught.value)


# ---------------------------------------------------------------------------- data-incremental


@pytest.mark.parametrize("num_tasks", [1, 3, 5])
def test_data_incremental_equal_shards_partition_each_split(data, num_tasks):
    config = ScenarioConfig(kind="data-incremental", num_tasks=num_tasks)
    tasks = build_scenario(data, config, seed=0)
    assert len(tasks) == num_tasks
    for split, size, attr in (("train", 30, "train_indices"), ("test", 15, "test_indices")):
        shards = [getattr(t, attr).tolist() for t in tasks]
        assert sorted(i for shard in shards for i in shard) == list(range(size)), split
        lengths = [len(shard) for shard in shards]
        assert max(lengths) - min(lengths) <= 1
        assert sum(lengths) == size
    for task in tasks:
        assert task.classes == tuple(sorted(set(data.train.labels[task.train_indices].tolist())))


def test_data_incremental_shards_are_random_and_seeded(data):
    config = ScenarioConfig(kind="data-incremental", num_tasks=3)
    first = build_scenario(data, config, seed=0)
    again = build_scenario(data, config, seed=0)
    other = build_scenario(data, config, seed=1)
    assert all(
        torch.equal(a.train_indices, b.train_indices) for a, b in zip(first, again, strict=True)
    )
    assert any(
        not torch.equal(a.train_indices, b.train_indices) for a, b in zip(first, other, strict=True)
    )
    # not consecutive blocks of the split
    assert first[0].train_indices.tolist() != list(range(10))


def test_data_incremental_more_tasks_than_images_raises_config_error(data):
    config = ScenarioConfig(kind="data-incremental", num_tasks=31)
    with pytest.raises(ConfigError, match="31"):
        build_scenario(data, config, seed=0)


# ---------------------------------------------------------------------------- label fraction


def test_label_fraction_per_task_list(data):
    # task sizes: classes {0, 1} -> 4 + 5 = 9, {2, 3} -> 6 + 4 = 10, {4, 5} -> 5 + 6 = 11
    config = ScenarioConfig(
        num_tasks=3, class_order=[[0, 1], [2, 3], [4, 5]], label_fraction=[0.3, 0.74, 0.0]
    )
    tasks = build_scenario(data, config, seed=0)
    assert [len(t.train_indices) for t in tasks] == [9, 10, 11]
    # round(0.3 * 9) = round(2.7) = 3, round(0.74 * 10) = round(7.4) = 7, 0
    assert [int(t.labelled.sum()) for t in tasks] == [3, 7, 0]
    for task in tasks:
        assert task.labelled.dtype == torch.bool
        assert task.labelled.shape == task.train_indices.shape
        assert torch.equal(task.labelled_indices, task.train_indices[task.labelled])


def test_single_label_fraction_applies_to_every_task(data):
    config = ScenarioConfig(num_tasks=3, class_order=[[0, 1], [2, 3], [4, 5]], label_fraction=0.2)
    tasks = build_scenario(data, config, seed=0)
    # round(1.8) = 2, round(2.0) = 2, round(2.2) = 2
    assert [int(t.labelled.sum()) for t in tasks] == [2, 2, 2]


def test_full_label_fraction_labels_everything(data):
    tasks = build_scenario(data, ScenarioConfig(num_tasks=2), seed=0)
    assert all(bool(t.labelled.all()) for t in tasks)
    assert sum(len(t.labelled_indices) for t in tasks) == 30


def test_labelled_images_are_a_random_subset(data):
    config = ScenarioConfig(kind="data-incremental", num_tasks=1, label_fraction=0.5)
    (task,) = build_scenario(data, config, seed=0)
    assert int(task.labelled.sum()) == 15
    assert task.labelled[:15].all().item() is False  # not simply the first images


def test_training_labels_hide_exactly_the_unlabelled_images(data):
    config = ScenarioConfig(
        num_tasks=3, class_order=[[0, 1], [2, 3], [4]], label_fraction=[0.6, 0.0, 1.0]
    )
    tasks = build_scenario(data, config, seed=4)
    true = data.train.labels
    seen = training_labels(true, tasks)
    assert seen.dtype == torch.int64
    assert seen.shape == true.shape
    hidden = {
        i
        for t in tasks
        for i, keep in zip(t.train_indices.tolist(), t.labelled.tolist(), strict=True)
        if not keep
    }
    # task 0: 9 images, round(5.4) = 5 labelled, 4 hidden; task 1: all 10 hidden; task 2: none
    assert len(hidden) == 4 + 10
    for i in range(30):
        expected = -1 if i in hidden else int(true[i])
        assert int(seen[i]) == expected, i
    # class 5 is in no task and keeps its labels; the input is not modified
    assert all(int(seen[i]) == 5 for i in _where(true, {5}))
    assert int((true == -1).sum()) == 0


def test_training_labels_of_no_task_is_a_copy(data):
    seen = training_labels(data.train.labels, [])
    assert torch.equal(seen, data.train.labels)
    assert seen.data_ptr() != data.train.labels.data_ptr()


def test_numpy_permutation_gives_the_published_slca_class_order():
    # the first split-CIFAR-100 task of SLCA's (and PyCIL's) seed 1993
    data = make_synthetic(num_classes=100, train_per_class=1, test_per_class=1, image_size=4)
    config = ScenarioConfig(num_tasks=10, class_permutation="numpy")
    tasks = build_scenario(data, config, seed=1993)
    assert tasks[0].classes == tuple(sorted((68, 56, 78, 8, 23, 84, 90, 65, 74, 76)))
    assert build_scenario(data, ScenarioConfig(num_tasks=10), 1993)[0].classes != tasks[0].classes


def test_classes_per_task_fills_every_task_but_the_last(data):
    config = ScenarioConfig(num_tasks=3, classes_per_task=5, class_permutation="numpy")
    data = make_synthetic(num_classes=12, train_per_class=1, test_per_class=1, image_size=4)
    sizes = [len(t.classes) for t in build_scenario(data, config, seed=0)]
    assert sizes == [5, 5, 2]


def test_classes_per_task_that_disagrees_with_num_tasks_names_the_fix(data):
    config = ScenarioConfig(num_tasks=2, classes_per_task=2)
    with pytest.raises(ConfigError, match=r"set scenario.num_tasks=3"):
        build_scenario(data, config, seed=0)


def test_classes_per_task_and_class_order_are_exclusive():
    with pytest.raises(ValueError, match="drop classes_per_task"):
        ScenarioConfig(num_tasks=1, class_order=[[0, 1]], classes_per_task=2)

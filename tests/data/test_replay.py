"""Labelled replay: class-balanced, seeded random selection by fraction or by total budget."""

from __future__ import annotations

import pytest
import torch

from kaizen.config import ReplayConfig
from kaizen.data.replay import ReplayBuffer

# A training split of 200 images whose labels follow a fixed shuffled pattern over 6 classes.
true_labels = torch.randperm(200, generator=torch.Generator().manual_seed(0)) % 6


def _labelled(classes, per_class: int | dict[int, int], skip: int = 0) -> tuple:
    """Training indices of ``classes`` (the first ``skip`` of each class left out, as if
    unlabelled), at most ``per_class`` of each, and their true labels."""
    chosen = []
    for label in classes:
        where = torch.nonzero(true_labels == label).flatten()[skip:]
        count = per_class[label] if isinstance(per_class, dict) else per_class
        chosen.append(where[:count])
    indices = torch.cat(chosen)
    return indices, true_labels[indices]


def _per_class(buffer: ReplayBuffer) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for index, label in zip(buffer.indices.tolist(), buffer.labels.tolist(), strict=True):
        out.setdefault(label, []).append(index)
    return out


def _fraction(fraction: float) -> ReplayConfig:
    return ReplayConfig(fraction_per_class=fraction, budget=None)


def _budget(budget: int) -> ReplayConfig:
    return ReplayConfig(fraction_per_class=None, budget=budget)


# ---------------------------------------------------------------------------- fraction mode


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [
        # class sizes 20, 7, 1
        (0.1, {0: 2, 1: 1, 2: 1}),  # round(2.0), round(0.7), max(1, round(0.1))
        (0.3, {0: 6, 1: 2, 2: 1}),  # round(6.0), round(2.1), max(1, round(0.3))
        (1.0, {0: 20, 1: 7, 2: 1}),
    ],
)
def test_fraction_mode_keeps_that_share_of_each_class(fraction, expected):
    indices, labels = _labelled([0, 1, 2], {0: 20, 1: 7, 2: 1})
    buffer = ReplayBuffer(_fraction(fraction), seed=0)
    buffer.add(indices, labels)
    kept = _per_class(buffer)
    assert {label: len(ix) for label, ix in kept.items()} == expected
    assert len(buffer) == sum(expected.values())
    assert buffer.indices.dtype == torch.int64 and buffer.labels.dtype == torch.int64


def test_selection_comes_only_from_the_given_indices_with_their_true_labels():
    # leave out the first 3 images of each class, as if they were unlabelled
    indices, labels = _labelled([0, 3, 5], 10, skip=3)
    unlabelled = {int(i) for c in (0, 3, 5) for i in torch.nonzero(true_labels == c)[:3]}
    buffer = ReplayBuffer(_fraction(0.5), seed=1)
    buffer.add(indices, labels)
    assert set(buffer.indices.tolist()) <= set(indices.tolist())
    assert not set(buffer.indices.tolist()) & unlabelled
    assert len(set(buffer.indices.tolist())) == len(buffer)  # no duplicates
    assert torch.equal(buffer.labels, true_labels[buffer.indices])
    assert {label: len(ix) for label, ix in _per_class(buffer).items()} == {0: 5, 3: 5, 5: 5}


def test_selection_is_seeded_and_not_the_first_indices():
    indices, labels = _labelled([0, 1, 2], 20)
    selections = []
    for seed in (7, 7, 8):
        buffer = ReplayBuffer(_fraction(0.25), seed=seed)
        buffer.add(indices, labels)
        selections.append(_per_class(buffer))
    assert selections[0] == selections[1]
    assert selections[0] != selections[2]
    first_k = {c: indices[labels == c][:5].tolist() for c in (0, 1, 2)}
    assert any(sorted(selections[0][c]) != sorted(first_k[c]) for c in (0, 1, 2))


def test_fraction_mode_keeps_earlier_classes_when_new_ones_arrive():
    buffer = ReplayBuffer(_fraction(0.2), seed=0)
    buffer.add(*_labelled([0, 1], 10))
    before = _per_class(buffer)
    buffer.add(*_labelled([2, 3], 15))
    after = _per_class(buffer)
    assert after[0] == before[0] and after[1] == before[1]
    assert len(after[2]) == 3 and len(after[3]) == 3  # round(0.2 * 15)
    assert torch.equal(buffer.labels, true_labels[buffer.indices])


def test_adding_nothing_keeps_the_buffer():
    buffer = ReplayBuffer(_fraction(0.5), seed=0)
    empty = torch.empty(0, dtype=torch.int64)
    buffer.add(empty, empty)
    assert len(buffer) == 0
    buffer.add(*_labelled([4], 6))
    kept = buffer.indices.clone()
    buffer.add(empty, empty)
    assert torch.equal(buffer.indices, kept)


# ---------------------------------------------------------------------------- budget mode


def test_budget_is_split_evenly_and_old_classes_shrink():
    buffer = ReplayBuffer(_budget(12), seed=0)
    buffer.add(*_labelled([0, 1], 20))
    first = _per_class(buffer)
    assert {c: len(ix) for c, ix in first.items()} == {0: 6, 1: 6}  # 12 // 2

    buffer.add(*_labelled([2, 3], 20))
    second = _per_class(buffer)
    assert {c: len(ix) for c, ix in second.items()} == {0: 3, 1: 3, 2: 3, 3: 3}  # 12 // 4
    # old classes shrink to a subset of what they kept, they are not re-drawn
    assert set(second[0]) <= set(first[0]) and set(second[1]) <= set(first[1])

    buffer.add(*_labelled([4], 20))
    third = _per_class(buffer)
    # 12 // 5 = 2 each, the remaining 2 images go to two classes that still hold 3
    third_counts = {c: len(ix) for c, ix in third.items()}
    assert sorted(third_counts.values()) == [2, 2, 2, 3, 3]
    assert len(buffer) == 12
    assert torch.equal(buffer.labels, true_labels[buffer.indices])


def test_budget_mode_draws_at_random_from_each_class():
    indices, labels = _labelled([0, 1], 20)
    buffer = ReplayBuffer(_budget(8), seed=3)
    buffer.add(indices, labels)
    kept = _per_class(buffer)
    for c in (0, 1):
        assert set(kept[c]) <= set(indices[labels == c].tolist())
    assert any(sorted(kept[c]) != indices[labels == c][:4].tolist() for c in (0, 1))


def test_budget_larger_than_the_data_keeps_everything():
    indices, labels = _labelled([0, 1], 3)
    buffer = ReplayBuffer(_budget(100), seed=0)
    buffer.add(indices, labels)
    assert sorted(buffer.indices.tolist()) == sorted(indices.tolist())


def test_budget_smaller_than_the_number_of_classes_is_respected():
    buffer = ReplayBuffer(_budget(3), seed=0)
    buffer.add(*_labelled([0, 1, 2, 3, 4], 4))
    assert len(buffer) <= 3


# ---------------------------------------------------------------------------- state


@pytest.mark.parametrize("config", [_fraction(0.3), _budget(10)])
def test_state_dict_round_trip_reproduces_later_selections(config):
    original = ReplayBuffer(config, seed=0)
    original.add(*_labelled([0, 1], 12))
    state = original.state_dict()

    restored = ReplayBuffer(config, seed=99)  # another seed: everything must come from the state
    restored.load_state_dict(state)
    assert torch.equal(restored.indices, original.indices)
    assert torch.equal(restored.labels, original.labels)

    for buffer in (original, restored):
        buffer.add(*_labelled([2, 3, 4], 12))
    assert torch.equal(restored.indices, original.indices)
    assert torch.equal(restored.labels, original.labels)

    fresh = ReplayBuffer(config, seed=99)
    fresh.load_state_dict({**state, "rng": torch.Generator().manual_seed(99).get_state()})
    fresh.add(*_labelled([2, 3, 4], 12))
    assert not torch.equal(fresh.indices, original.indices)  # the generator state matters


def test_replayed_rows_mark_the_rows_after_the_current_ones():
    import torch

    from kaizen.data.replay import replayed_rows

    rows = replayed_rows(3, 2, torch.device("cpu"))
    assert rows.tolist() == [False, False, False, True, True]
    assert replayed_rows(4, 0, torch.device("cpu")) is None


# ---------------------------------------------------------------------------- as released


def test_first_selection_keeps_the_first_floor_fraction_of_each_class_by_index():
    """Kaizen's released code keeps the first int(n x fraction) images of each class."""
    indices, labels = _labelled([0, 1, 2], {0: 20, 1: 7, 2: 1})
    shuffled = torch.randperm(len(indices), generator=torch.Generator().manual_seed(3))
    buffer = ReplayBuffer(ReplayConfig(fraction_per_class=0.3, selection="first"), seed=0)
    buffer.add(indices[shuffled], labels[shuffled])
    kept = _per_class(buffer)
    for label, count in {0: 6, 1: 2}.items():  # floor(6.0), floor(2.1); class 2: floor(0.3) = 0
        expected = torch.nonzero(true_labels == label).flatten()[:count].tolist()
        assert kept[label] == expected
    assert 2 not in kept

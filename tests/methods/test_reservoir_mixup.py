"""LUMP's reservoir buffer and its mixup of the views."""

from __future__ import annotations

import torch

from kaizen.methods.parts.mixup import reservoir_update


def test_reservoir_fills_free_slots_first_in_order():
    generator = torch.Generator().manual_seed(0)
    buffer, seen, *_ = reservoir_update(
        torch.empty(0, dtype=torch.int64), 0, torch.arange(5), 8, generator
    )
    assert buffer.tolist() == [0, 1, 2, 3, 4] and seen == 5
    buffer, seen, *_ = reservoir_update(buffer, seen, torch.arange(5, 8), 8, generator)
    assert buffer.tolist() == list(range(8)) and seen == 8


def test_reservoir_keeps_its_size_and_only_offered_items():
    generator = torch.Generator().manual_seed(1)
    buffer, seen, *_ = reservoir_update(
        torch.empty(0, dtype=torch.int64), 0, torch.arange(100), 16, generator
    )
    assert len(buffer) == 16 and seen == 100
    assert len(set(buffer.tolist())) == 16
    assert all(0 <= item < 100 for item in buffer.tolist())


def test_reservoir_is_a_uniform_sample_of_the_whole_stream():
    """Every item offered over three tasks is kept with probability size / items: the share of
    the first task's items matches its share of the stream, not the last task's recency."""
    size, per_task, trials = 20, 100, 400
    first_task_share = []
    for trial in range(trials):
        generator = torch.Generator().manual_seed(trial)
        buffer, seen = torch.empty(0, dtype=torch.int64), 0
        for task in range(3):
            offered = torch.arange(task * per_task, (task + 1) * per_task)
            buffer, seen, *_ = reservoir_update(buffer, seen, offered, size, generator)
        first_task_share.append(float((buffer < per_task).float().mean()))
    mean = sum(first_task_share) / trials
    assert abs(mean - 1 / 3) < 0.03


def test_reservoir_is_deterministic_for_a_seed():
    def fill(seed: int) -> list[int]:
        generator = torch.Generator().manual_seed(seed)
        return reservoir_update(
            torch.empty(0, dtype=torch.int64), 0, torch.arange(50), 10, generator
        )[0].tolist()

    assert fill(3) == fill(3)
    assert fill(3) != fill(4)

"""The labelled-replay part's serving: with replacement, or in passes without replacement."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import torch

from kaizen.config import ReplayConfig
from kaizen.methods.parts.replay import LabelledReplay
from kaizen.methods.seam import RunContext


def _part(buffered: int, batch_size: int) -> tuple[LabelledReplay, RunContext]:
    """A part whose buffer holds training indices 100..100+buffered-1, and a run it can start."""
    part = LabelledReplay(ReplayConfig(batch_size=batch_size, sampling="passes"), seed=0)
    indices = torch.arange(100, 100 + buffered)
    part.buffer.indices, part.buffer.labels = indices, torch.zeros_like(indices)
    run = SimpleNamespace(
        stream=SimpleNamespace(train_images=SimpleNamespace(index_device=torch.device("cpu")))
    )
    part.start_task(cast(Any, run))
    return part, cast(Any, run)


def _steps(part: LabelledReplay, generator: torch.Generator, count: int) -> list[list[int]]:
    rows = [part.step_rows(generator) for _ in range(count)]
    return [r.tolist() for r in rows if r is not None]


def test_passes_serve_every_image_once_before_any_repeats():
    part, _ = _part(buffered=10, batch_size=4)
    assert part.rows_per_step() == 4
    first, second, third = _steps(part, torch.Generator().manual_seed(1), 3)
    assert len(set(first + second)) == 8  # one pass: no image twice
    assert set(first + second) <= set(range(100, 110))
    assert len(set(third)) == 4  # the 2 left over are dropped: a new pass starts


def test_a_buffer_smaller_than_the_batch_is_served_whole_each_step():
    part, _ = _part(buffered=3, batch_size=32)
    assert part.rows_per_step() == 3
    for rows in _steps(part, torch.Generator().manual_seed(2), 4):
        assert sorted(rows) == [100, 101, 102]


def test_a_restored_part_serves_the_rest_of_the_pass_it_was_saved_in():
    part, run = _part(buffered=10, batch_size=4)
    generator = torch.Generator().manual_seed(3)
    _steps(part, generator, 1)
    saved, generator_state = part.state_dict(), generator.get_state()
    expected = _steps(part, generator, 3)

    restored = LabelledReplay(ReplayConfig(batch_size=4, sampling="passes"), seed=0)
    restored.load_state_dict(saved, run)
    generator.set_state(generator_state)
    assert _steps(restored, generator, 3) == expected

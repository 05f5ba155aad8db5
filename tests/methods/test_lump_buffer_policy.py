"""LUMP's buffer as its released code runs it: offered every step's batch, each image stored
with the view it entered with, drawn without replacement, and kept in the checkpoint."""

from __future__ import annotations

import io

import pytest
import torch
from lightning.fabric import Fabric

from kaizen.config import build_config
from kaizen.data.stream import Stream, load_stream
from kaizen.errors import ConfigError
from kaizen.learner.learner import build_learner
from kaizen.methods.parts.mixup import ReservoirMixup, reservoir_update, without_replacement
from kaizen.methods.registry import settings_of
from kaizen.methods.seam import RunContext
from kaizen.methods.strategies.lump import LumpSettings
from kaizen.ssl.registry import views_of

RELEASED = {"buffer_update": "step", "buffer_views": "stored", "buffer_size": 8}


def _part(tiny, **settings) -> tuple[ReservoirMixup, RunContext, Stream]:
    tree = tiny("lump")
    tree["strategy"].update(settings)
    config = build_config(tree)
    fabric = Fabric(accelerator="cpu", devices=1)
    stream = load_stream(config, fabric, views_of(config.ssl))
    run = RunContext(stream, fabric, build_learner(config, 3, 6), stream.tasks[0])
    part = ReservoirMixup(settings_of(config, LumpSettings), seed=0)
    part.start_task(run)
    return part, run, stream


def _step(part: ReservoirMixup, stream: Stream, rows: torch.Tensor, seed: int) -> torch.Tensor:
    """One step's transform and end, as the trainer calls them; returns the step's views."""
    torch.manual_seed(seed)
    views = stream.augment(stream.train_images.gather(rows))
    part.transform(views, torch.Generator().manual_seed(seed))
    part.end_step(rows)
    return views


def test_step_updates_store_each_batch_with_its_second_view_and_mix_from_the_second_step(tiny):
    part, _, stream = _part(tiny, **RELEASED)
    first = stream.tasks[0].train_indices[:4]
    views = _step(part, stream, first, seed=1)
    # the first step is not mixed (nothing buffered yet); its images and view 2 are stored
    assert part.indices.tolist() == first.tolist() and part.seen == 4
    assert part.views is not None
    torch.testing.assert_close(part.views, views[4:])
    second = stream.tasks[0].train_indices[4:8]
    torch.manual_seed(2)
    current = stream.augment(stream.train_images.gather(second))
    torch.manual_seed(3)
    mixed = part.transform(current, torch.Generator().manual_seed(4))
    # the same draws by hand: 4 of the 4 buffered images without replacement, a weak view of
    # each for view 1 and its stored view for view 2, then lambda ~ Beta(0.4, 0.4)
    torch.manual_seed(3)
    draw = torch.randperm(4, generator=torch.Generator().manual_seed(4))
    weak = stream.augment.weak_view(stream.train_images.gather(first[draw]))
    partners = torch.cat([weak, views[4:][draw]])
    mix = float(torch.distributions.Beta(torch.tensor(0.4), torch.tensor(0.4)).sample())
    torch.testing.assert_close(mixed, mix * current + (1 - mix) * partners)
    assert sorted(draw.tolist()) == [0, 1, 2, 3]


def test_a_full_buffer_replaces_slots_and_their_views_together(tiny):
    part, _, stream = _part(tiny, **RELEASED)
    indices = stream.tasks[0].train_indices
    steps = [_step(part, stream, indices[i : i + 4], seed=i) for i in range(0, 16, 4)]
    assert len(part.indices) == 8 and part.seen == 16
    assert part.views is not None
    # every kept image carries the view 2 it had in its own step
    for slot, index in enumerate(part.indices.tolist()):
        position = indices[:16].tolist().index(index)
        torch.testing.assert_close(part.views[slot], steps[position // 4][4 + position % 4])
    # the same reservoir as the one-call reference over the whole sequence of offers
    generator = torch.Generator().manual_seed(0)
    buffer, seen = torch.empty(0, dtype=torch.int64), 0
    for i in range(0, 16, 4):
        buffer, seen, *_ = reservoir_update(buffer, seen, indices[i : i + 4], 8, generator)
    assert buffer.tolist() == part.indices.tolist()


def test_the_buffer_and_its_views_survive_a_checkpoint(tiny):
    part, run, stream = _part(tiny, **RELEASED)
    indices = stream.tasks[0].train_indices
    for i in range(0, 12, 4):
        _step(part, stream, indices[i : i + 4], seed=i)
    saved = io.BytesIO()
    torch.save(part.state_dict(), saved)
    saved.seek(0)
    restored, _, _ = _part(tiny, **RELEASED)
    restored.load_state_dict(torch.load(saved, weights_only=True), run)
    assert restored.views is not None and part.views is not None
    assert torch.equal(restored.views, part.views) and restored.seen == part.seen
    # both continue with the same reservoir draws and the same mixed views
    after = [_step(each, stream, indices[12:16], seed=9) for each in (part, restored)]
    assert torch.equal(after[0], after[1])
    assert restored.indices.tolist() == part.indices.tolist()
    mixed = []
    for each in (part, restored):
        torch.manual_seed(6)
        mixed.append(each.transform(after[0], torch.Generator().manual_seed(5)))
    assert torch.equal(mixed[0], mixed[1])


def test_task_end_updates_keep_the_first_task_unmixed(tiny):
    part, _, stream = _part(tiny, buffer_size=8)
    views = _step(part, stream, stream.tasks[0].train_indices[:4], seed=1)
    assert len(part.indices) == 0 and part.views is None
    assert part.transform(views, torch.Generator().manual_seed(0)) is views


def test_draws_without_replacement_use_each_index_once_before_any_twice():
    draws = without_replacement(3, 7, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert sorted(draws[:3].tolist()) == sorted(draws[3:6].tolist()) == [0, 1, 2]
    assert len(draws) == 7


def test_stored_views_need_step_updates(tiny):
    tree = tiny("lump")
    with pytest.raises(ConfigError, match="buffer_update=step") as refused:
        build_config(tree, ["strategy.buffer_views=stored"])
    assert "\n" not in str(refused.value)
    with pytest.raises(ConfigError, match="buffer_update"):
        build_config(tree, ["strategy.buffer_update=epoch"])

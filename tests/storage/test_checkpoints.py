"""Checkpoint files: atomic writes, checksums, rotation, corrupt-file fallback, full disks."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

from kaizen.engine.rng import capture_rng, restore_rng
from kaizen.errors import KaizenError
from kaizen.storage.atomic import atomic_write_text
from kaizen.storage.checkpoints import CheckpointStore, Position


def _store(tmp_path: Path, keep: int = 3) -> tuple[CheckpointStore, list[str]]:
    warnings: list[str] = []
    return CheckpointStore(tmp_path / "checkpoints", keep, warnings.append), warnings


def test_positions_sort_in_the_order_they_are_written() -> None:
    positions = [Position(0, 1, 0), Position(0, 0, 12), Position(1, 0, 0), Position(0, 10, 0)]
    names = sorted(p.file_name for p in positions)
    assert names == [p.file_name for p in sorted(positions)]
    assert Position(2, 0, 0).at_task_start and not Position(2, 0, 1).at_task_start


def test_the_newest_checkpoint_loads_with_its_tensors(tmp_path: Path) -> None:
    store, warnings = _store(tmp_path)
    store.save({"weights": torch.arange(4.0), "step": 1}, Position(0, 1, 0))
    store.save({"weights": torch.arange(4.0) * 2, "step": 2}, Position(0, 2, 0))
    found = store.load_latest()
    assert found is not None
    state, path = found
    assert path.name == Position(0, 2, 0).file_name
    assert state["step"] == 2 and torch.equal(state["weights"], torch.arange(4.0) * 2)
    assert warnings == []


def test_only_the_last_k_are_kept(tmp_path: Path) -> None:
    store, _ = _store(tmp_path, keep=2)
    for epoch in range(1, 5):
        store.save({"epoch": epoch}, Position(0, epoch, 0))
    kept = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert kept == [
        Position(0, 3, 0).file_name,
        Position(0, 3, 0).file_name + ".sha256",
        Position(0, 4, 0).file_name,
        Position(0, 4, 0).file_name + ".sha256",
    ]


@pytest.mark.parametrize("damage", ["truncate", "flip", "no-checksum"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous(
    damage: str, tmp_path: Path
) -> None:
    store, warnings = _store(tmp_path)
    store.save({"epoch": 1}, Position(0, 1, 0))
    newest = store.save({"epoch": 2}, Position(0, 2, 0))
    payload = newest.read_bytes()
    if damage == "truncate":
        newest.write_bytes(payload[: len(payload) // 2])
    elif damage == "flip":
        newest.write_bytes(payload[:-1] + bytes([payload[-1] ^ 0xFF]))
    else:
        Path(str(newest) + ".sha256").unlink()
    found = store.load_latest()
    assert found is not None and found[0]["epoch"] == 1
    assert len(warnings) == 1 and newest.name in warnings[0] and "\n" not in warnings[0]


def test_a_checkpoint_with_pickled_code_is_refused(tmp_path: Path) -> None:
    store, warnings = _store(tmp_path)
    store.save({"epoch": 1}, Position(0, 1, 0))
    evil = store.save({"epoch": 2, "hook": os.getcwd}, Position(0, 2, 0))
    found = store.load_latest()
    assert found is not None and found[0]["epoch"] == 1
    assert evil.name in warnings[0]


def test_a_full_disk_leaves_the_previous_file_intact(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "results.json"
    atomic_write_text(target, "previous")

    def full_disk(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(KaizenError, match="no space left"):
        atomic_write_text(target, "new content that does not fit")
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path: Path) -> None:
    import random

    import numpy as np

    store, _ = _store(tmp_path)
    torch.manual_seed(3)
    random.seed(3)
    np.random.seed(3)
    store.save({"rng": capture_rng()}, Position(0, 1, 0))
    expected = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(99)
    random.seed(99)
    np.random.seed(99)
    found = store.load_latest()
    assert found is not None
    restore_rng(found[0]["rng"])
    again = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(expected[0], again[0]) and expected[1:] == again[1:]

"""Batch-level losses over several processes equal the single-process loss on the global batch.

Two gloo processes each hold half of a batch; the losses gather both views across processes
(:func:`kaizen.distributed.gather_views`), and the gradients, averaged over processes as
data-parallel training does, must equal the gradients of one process holding the whole batch.
"""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from kaizen.distributed import gather_views
from kaizen.ssl.barlow import barlow_loss
from kaizen.ssl.distill import distill_loss
from kaizen.ssl.simclr import nt_xent_loss
from kaizen.ssl.vicreg import vicreg_loss

WORLD = 2
IMAGES_PER_PROCESS = 3
DIM = 4
LOSSES = ("nt_xent", "vicreg", "barlow", "contrastive_distill", "decorrelative_distill")


def _losses(z: torch.Tensor, teacher: torch.Tensor) -> dict[str, torch.Tensor]:
    gathered = gather_views(z)
    half = len(gathered) // 2
    return {
        "nt_xent": nt_xent_loss(gathered, 0.5),
        "vicreg": vicreg_loss(gathered[:half], gathered[half:], 25.0, 25.0, 1.0),
        "barlow": barlow_loss(gathered[:half], gathered[half:], 5.1e-3),
        "contrastive_distill": distill_loss("contrastive", z, teacher, 0.2),
        "decorrelative_distill": distill_loss("decorrelative", z, teacher, 0.2),
    }


def _global_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """(2 * WORLD * n, DIM) rows: view 1 of all images, then view 2, as one process sees them."""
    generator = torch.Generator().manual_seed(0)
    n = WORLD * IMAGES_PER_PROCESS
    return torch.randn(2 * n, DIM, generator=generator), torch.randn(
        2 * n, DIM, generator=generator
    )


def _local_rows(rows: torch.Tensor, rank: int) -> torch.Tensor:
    """This process's rows: view 1 then view 2 of its images."""
    view1, view2 = rows.chunk(2)
    mine = slice(rank * IMAGES_PER_PROCESS, (rank + 1) * IMAGES_PER_PROCESS)
    return torch.cat([view1[mine], view2[mine]])


def _worker(rank: int, port: int, results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        rows, teacher = _global_batch()
        out = {}
        for name in LOSSES:
            z = _local_rows(rows, rank).clone().requires_grad_(True)
            loss = _losses(z, _local_rows(teacher, rank))[name]
            loss.backward()
            grad = z.grad.clone()
            # data-parallel training sums each process's contribution and divides by the
            # number of processes: emulate it on the rows themselves
            full = torch.zeros_like(rows)
            view1, view2 = full.chunk(2)
            mine = slice(rank * IMAGES_PER_PROCESS, (rank + 1) * IMAGES_PER_PROCESS)
            view1[mine], view2[mine] = grad.chunk(2)
            dist.all_reduce(full)
            out[name] = (loss.detach(), full / WORLD)
        results[rank] = out
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def two_processes() -> dict:
    """Each process's loss and emulated data-parallel gradient, for every loss."""
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_worker, args=(_free_port(), results), nprocs=WORLD, join=True)
    return dict(results)


@pytest.mark.parametrize("name", LOSSES)
def test_gathered_losses_match_one_process_on_the_global_batch(name: str, two_processes) -> None:
    rows, teacher = _global_batch()
    single_rows = rows.clone().requires_grad_(True)
    expected = {
        "nt_xent": lambda z: nt_xent_loss(z, 0.5),
        "vicreg": lambda z: vicreg_loss(*z.chunk(2), 25.0, 25.0, 1.0),
        "barlow": lambda z: barlow_loss(*z.chunk(2), 5.1e-3),
        "contrastive_distill": lambda z: distill_loss("contrastive", z, teacher, 0.2),
        "decorrelative_distill": lambda z: distill_loss("decorrelative", z, teacher, 0.2),
    }[name](single_rows)
    expected.backward()
    for rank in range(WORLD):
        loss, grad = two_processes[rank][name]
        assert torch.allclose(loss, expected.detach(), atol=1e-6)
        assert torch.allclose(grad, single_rows.grad, atol=1e-6), (rank, name)

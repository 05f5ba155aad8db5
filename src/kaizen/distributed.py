"""Collective helpers for multi-process training; no-ops in a single process."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import Tensor


def world_size() -> int:
    """Processes in the default group (1 when torch.distributed is not initialised)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_primary() -> bool:
    """Whether this process reports and writes files (rank 0, or the only process)."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def gather_views(rows: Tensor) -> Tensor:
    """Both views of every process's batch, with gradients flowing back to each process's rows.

    Each process holds (2n, ...) rows: view 1 of its n images, then view 2. The result is
    (2nW, ...): view 1 of every process (in rank order), then view 2 of every process, so that
    batch-level losses (InfoNCE negatives, VICReg statistics) see the global batch. Every
    process computes the same global loss; the all-gather's backward sums the W identical
    gradients and data-parallel averaging divides them again, so the update equals the
    single-process one on the global batch.
    """
    if world_size() == 1:
        return rows
    parts = dist_fn.all_gather(rows) if rows.requires_grad else _gather_no_grad(rows)
    halves = [part.chunk(2) for part in parts]
    return torch.cat([first for first, _ in halves] + [second for _, second in halves])


def _gather_no_grad(rows: Tensor) -> list[Tensor]:
    parts = [torch.empty_like(rows) for _ in range(world_size())]
    dist.all_gather(parts, rows.contiguous())
    return parts

"""How correlated a backbone's block features are between the current task and earlier data.

Progressive task-correlated layer freezing (Yang et al., "Efficient Self-supervised Continual
Learning with Progressive Task-correlated Layer Freezing", arXiv 2303.07477) freezes the blocks
whose features are most correlated between tasks: a prefix of them (``frozen_prefix``) or the
highest ranked (``ranked_blocks``). The correlation builds on linear CKA
(Kornblith, Norouzi, Lee, Hinton, "Similarity of Neural Network Representations Revisited",
ICML 2019), which compares two representations of the *same* examples; the current task's images
and the earlier (replayed) images are different examples, so the blocks are compared by the
alignment of their channel covariances instead (``covariance_alignment``).

The measures here centre the columns and compute in float64; the subspace-projection measure
of TRGP is in :mod:`kaizen.learner.subspace`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from kaizen.models.blocks import BlockBackbone


def _centred(x: Tensor, name: str) -> Tensor:
    """``x`` (n, p) in float64 with every column's mean subtracted; checks n >= 2 and variance."""
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"{name} must be a matrix (n, p) with n >= 2 rows, got {tuple(x.shape)}")
    x = x.to(torch.float64)
    centred = x - x.mean(dim=0, keepdim=True)
    if not torch.any(centred != 0):
        raise ValueError(f"{name} has no variance: every row is the same")
    return centred


def linear_cka(x: Tensor, y: Tensor) -> float:
    """Linear CKA of two representations (n, p1), (n, p2) of the same n examples (row i of
    ``x`` and row i of ``y`` are the same example).

    CKA = ||Y_c^T X_c||_F^2 / (||X_c^T X_c||_F ||Y_c^T Y_c||_F) with column-centred X_c, Y_c
    (Kornblith et al., ICML 2019). In [0, 1]; invariant to orthogonal
    transforms of either representation, to isotropic scaling and to translation, not to other
    invertible linear transforms.
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"linear CKA needs the same examples in both: {x.shape[0]} vs {y.shape[0]} rows"
        )
    x_c, y_c = _centred(x, "x"), _centred(y, "y")
    cross = torch.linalg.matrix_norm(y_c.T @ x_c) ** 2
    return (
        cross / (torch.linalg.matrix_norm(x_c.T @ x_c) * torch.linalg.matrix_norm(y_c.T @ y_c))
    ).item()


def covariance_alignment(x: Tensor, y: Tensor) -> float:
    """How aligned the channel covariances of two unpaired sets (n1, C), (n2, C) are.

    tr(S_x S_y) / (||S_x||_F ||S_y||_F), S = the centred covariance (C, C) of each set: the
    Frobenius cosine of the two covariances. It keeps linear CKA's normalisation
    (||X_c^T X_c||_F ||Y_c^T Y_c||_F) and replaces its cross-covariance term ||Y_c^T X_c||_F^2,
    which pairs row i of ``x`` with row i of ``y``, by tr(X_c^T X_c Y_c^T Y_c), the product of
    the two auto-covariances, which needs no pairing: the rows of the two sets are different
    examples, and their number and order do not matter. When ``y`` is ``x`` it equals linear
    CKA of ``x`` with itself, 1.

    Properties (S_x, S_y are positive semi-definite):
    - in [0, 1]; 1 iff S_x and S_y are proportional (Cauchy-Schwarz for the Frobenius inner
      product, with tr(S_x S_y) >= 0 for positive semi-definite matrices);
    - 0 iff the two sets vary in orthogonal subspaces of the channel space
      (tr(S_x S_y) = ||S_x^(1/2) S_y^(1/2)||_F^2);
    - symmetric; invariant to translating either set, to scaling either set by a non-zero
      factor and to one orthogonal transform of the channels applied to both sets
      (S -> Q^T S Q); not invariant to a transform applied to one set only, nor to per-channel
      scaling, since the channels of the two sets are the same channels.
    """
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(f"both sets need the same channels: {tuple(x.shape)} vs {tuple(y.shape)}")
    x_c, y_c = _centred(x, "x"), _centred(y, "y")
    s_x, s_y = x_c.T @ x_c, y_c.T @ y_c  # the covariances times n1 - 1 and n2 - 1
    return (
        torch.sum(s_x * s_y) / (torch.linalg.matrix_norm(s_x) * torch.linalg.matrix_norm(s_y))
    ).item()


@contextmanager
def in_eval_mode(model: nn.Module) -> Iterator[None]:
    """``model`` in eval mode inside the ``with`` block; each module's training mode is
    restored after it."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def block_correlations(backbone: BlockBackbone, current: Tensor, earlier: Tensor) -> list[float]:
    """``covariance_alignment`` of each block's pooled features between two sets of images.

    Args:
        backbone: the model to measure, run in eval mode (BatchNorm with running statistics);
            the training mode of each of its modules is restored afterwards.
        current: normalised float images (N1, C, H, W) of the current task.
        earlier: normalised float images (N2, C, H, W) of earlier tasks (e.g. a replay buffer).

    Returns one value in [0, 1] per block of ``backbone.block_names()``, in order.
    """
    with in_eval_mode(backbone):
        current_features = backbone.pooled_block_features(current)
        earlier_features = backbone.pooled_block_features(earlier)
    return [
        covariance_alignment(x, y) for x, y in zip(current_features, earlier_features, strict=True)
    ]


def frozen_prefix(
    ratios: Sequence[float], threshold: float, current_depth: int, max_depth: int
) -> int:
    """The depth to freeze: the longest prefix of blocks whose ratio is >= ``threshold``,
    at most ``max_depth`` and never below ``current_depth`` (a NaN ratio ends the prefix).

    Raises ``ValueError`` unless 0 <= current_depth <= max_depth <= len(ratios).
    """
    if not 0 <= current_depth <= max_depth <= len(ratios):
        raise ValueError(
            "need 0 <= current_depth <= max_depth <= len(ratios), got "
            f"current_depth={current_depth}, max_depth={max_depth}, {len(ratios)} ratios"
        )
    depth = 0
    while depth < max_depth and ratios[depth] >= threshold:
        depth += 1
    return max(depth, current_depth)


def ranked_blocks(
    ratios: Sequence[float],
    threshold: float,
    frozen: Collection[int],
    eligible: int,
    budget: int,
) -> frozenset[int]:
    """The blocks to freeze by ranking: those in ``frozen`` (they stay frozen), then, while
    fewer than ``budget`` are, the blocks among the first ``eligible`` with the highest ratios
    that are >= ``threshold`` (the shallower first among equal ratios; a NaN ratio never
    qualifies).

    Raises ``ValueError`` unless ``frozen`` lies in range(eligible), holds at most ``budget``
    blocks and eligible <= len(ratios).
    """
    if not eligible <= len(ratios) or not all(0 <= index < eligible for index in frozen):
        raise ValueError(
            f"need frozen blocks in [0, eligible) and eligible <= len(ratios), got frozen="
            f"{sorted(frozen)}, eligible={eligible}, {len(ratios)} ratios"
        )
    if len(frozen) > budget:
        raise ValueError(f"{len(frozen)} blocks are frozen already, above the budget {budget}")
    candidates = sorted(
        (index for index in range(eligible) if index not in frozen and ratios[index] >= threshold),
        key=lambda index: (-ratios[index], index),
    )
    return frozenset(frozen) | frozenset(candidates[: budget - len(frozen)])

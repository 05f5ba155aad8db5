"""How much of a new task's block inputs lies in the subspace of earlier tasks' block inputs.

The subspace-projection correlation of TRGP (Lin, Yang, Fan, Zhang, "TRGP: Trust Region
Gradient Projection for Continual Learning", ICLR 2022), the earlier work of the authors of
progressive task-correlated layer freezing (Yang et al., arXiv 2303.07477). After each task, a
layer's inputs on some of the task's images, as the columns of a matrix R (d, n), give the
task's input subspace: the fewest left-singular vectors that hold a share of R's energy
||R||_F^2 (grown GPM-style over the tasks: only what the earlier tasks' basis does not yet hold
is added; Saha, Garg, Roy, "Gradient Projection Memory for Continual Learning", ICLR 2021). A
new task's layer correlates with the earlier tasks as much as its inputs lie in that subspace:
||U U^T R||_F / ||R||_F (TRGP compares a projection's norm with the whole's norm this way).

A convolution's input is the unfolded k x k x C_in patches it multiplies with its weights
(d = C_in k k, one column per image and output position); a Transformer block's input is its
tokens (d = D, one column per image and token). All bases and ratios are float64 on the CPU.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from kaizen.learner.correlation import in_eval_mode
from kaizen.models.blocks import BlockBackbone

ENERGY_CAP = 0.999
"""The largest energy share a basis is grown to, whatever the task: below 1, so that no
direction of a vanishing singular value (numerical noise) enters the basis."""

_CHUNK_ELEMENTS = 2**24
"""How many elements of unfolded patches are made at a time (64 MiB of float32)."""


def energy_share(energy: float, step: float, task: int) -> float:
    """The share of task ``task``'s input energy its basis holds: ``energy + step * task``,
    at most :data:`ENERGY_CAP` (TRGP: 0.97 + 0.003 t)."""
    return min(energy + step * task, ENERGY_CAP)


def _energy(inputs: Tensor) -> Tensor:
    """||R||_F^2 of ``inputs`` R (d, n) in float64; raises ``ValueError`` when it is 0."""
    total = torch.linalg.matrix_norm(inputs.to(torch.float64)) ** 2
    if total == 0:
        raise ValueError(f"the inputs {tuple(inputs.shape)} are all zero: they span no subspace")
    return total


def grow_basis(basis: Tensor, inputs: Tensor, energy: float) -> Tensor:
    """``basis`` with the fewest new directions that make it hold ``energy`` of ``inputs``.

    Args:
        basis: U (d, r), orthonormal columns (r = 0: no basis yet).
        inputs: R (d, n), the new task's inputs as columns.
        energy: the share in (0, 1) of ||R||_F^2 the grown basis must hold.

    Returns (d, r + k) float64: ``basis`` followed by the k leading left-singular vectors of
    the residual R - U U^T R, k the fewest with ||U^T R||_F^2 + s_1^2 + ... + s_k^2 >=
    ``energy`` ||R||_F^2 (k = 0 when U holds enough already). The new vectors are orthogonal
    to U, as the residual is; only directions of non-vanishing singular values are added.
    """
    if not 0.0 < energy < 1.0:
        raise ValueError(f"energy must be in (0, 1), got {energy}")
    if basis.shape[0] != inputs.shape[0]:
        raise ValueError(f"basis {tuple(basis.shape)} and inputs {tuple(inputs.shape)} differ in d")
    basis, inputs = basis.to(torch.float64), inputs.to(torch.float64)
    total = _energy(inputs)
    projected = basis.T @ inputs  # (r, n)
    captured = torch.linalg.matrix_norm(projected) ** 2 / total
    if captured >= energy:
        return basis
    vectors, singular, _ = torch.linalg.svd(inputs - basis @ projected, full_matrices=False)
    shares = captured + torch.cumsum(singular**2, dim=0) / total
    needed = int((shares < energy).sum()) + 1
    tolerance = singular[0] * max(inputs.shape) * torch.finfo(torch.float64).eps
    rank = int((singular > tolerance).sum())
    return torch.cat([basis, vectors[:, : min(needed, rank)]], dim=1)


def projection_ratio(basis: Tensor, inputs: Tensor) -> float:
    """||U U^T R||_F / ||R||_F in [0, 1]: the share of ``inputs`` R (d, n) in the span of
    ``basis`` U (d, r) with orthonormal columns (0 for r = 0), in float64."""
    inputs = inputs.to(torch.float64)
    norm = _energy(inputs).sqrt()
    projected = torch.linalg.matrix_norm(basis.to(torch.float64).T @ inputs)
    return min((projected / norm).item(), 1.0)


def _draw(total: int, count: int, generator: torch.Generator) -> Tensor:
    """Sorted int64 indices: ``count`` of range(``total``) drawn without replacement, or all."""
    if total <= count:
        return torch.arange(total)
    return torch.randperm(total, generator=generator)[:count].sort().values


def _first_convolution(block: nn.Module) -> nn.Conv2d | None:
    return next((m for m in block.modules() if isinstance(m, nn.Conv2d)), None)


def _patch_columns(conv: nn.Conv2d, x: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """At most ``count`` of the k x k patches ``conv`` sees in ``x`` (N, C, H, W), drawn
    uniformly over images and output positions: (C k k, n) float64 on the CPU."""
    if isinstance(conv.padding, str):
        raise ValueError(f"a convolution padded {conv.padding!r} has no fixed patches")
    kernel, stride, padding, dilation = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    sides = [
        (size + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1
        for i, size in enumerate(x.shape[-2:])
    ]
    positions = sides[0] * sides[1]
    chosen = _draw(len(x) * positions, count, generator).to(x.device)
    image, position = chosen // positions, chosen % positions
    chunk = max(1, _CHUNK_ELEMENTS // (x.shape[1] * kernel[0] * kernel[1] * positions))
    columns = []
    for start in range(0, len(x), chunk):
        inside = (image >= start) & (image < start + chunk)
        patches = F.unfold(
            x[start : start + chunk], kernel, dilation=dilation, padding=padding, stride=stride
        )  # (chunk, C k k, positions)
        columns.append(patches[image[inside] - start, :, position[inside]])
    return torch.cat(columns).to("cpu", torch.float64).T


def input_columns(block: nn.Module, x: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """A block's input ``x`` as at most ``count`` columns, drawn with ``generator``.

    A block with a convolution: the patches its first convolution sees (kernel, stride,
    padding and dilation as that convolution), x (N, C, H, W) -> (C k k, n). Otherwise x is
    tokens (N, T, D) -> (D, n). Float64 on the CPU; n = min(``count``, all columns).
    """
    conv = _first_convolution(block)
    if conv is not None:
        return _patch_columns(conv, x, count, generator)
    tokens = x.reshape(-1, x.shape[-1])
    chosen = _draw(len(tokens), count, generator).to(tokens.device)
    return tokens[chosen].to("cpu", torch.float64).T


def block_input_columns(
    backbone: BlockBackbone, images: Tensor, count: int, generator: torch.Generator
) -> list[Tensor]:
    """Each block's input for ``images`` (N, C_in, H, W) as columns (d_b, n_b) (see
    :func:`input_columns`), in ``backbone.block_names()`` order.

    The backbone runs in eval mode (BatchNorm with running statistics); the training mode of
    each of its modules is restored afterwards.
    """
    with in_eval_mode(backbone):
        blocks = backbone.block_modules()
        return [
            input_columns(block, x, count, generator)
            for block, x in zip(blocks, backbone.block_inputs(images), strict=True)
        ]

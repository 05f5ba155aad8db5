"""Symmetric cross-entropy (Wang et al., ICCV 2019), SLCA++'s training loss.

SCE = alpha * CE(p, y) + beta * RCE(p, y) with p = softmax(logits) and the reverse
cross-entropy RCE = -sum_k p_k log q_k, where q is the one-hot label clamped to [1e-4, 1]
(so log q_k is 0 for the true class and log 1e-4 for the others). SLCA++ (Zhang et al.,
arXiv 2408.08295) uses (alpha, beta) = (1.0, 0.1) or (0.5, 0.5) depending on the benchmark.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

ONE_HOT_FLOOR = 1e-4
"""The clamp that keeps log q finite for the classes the label does not name."""


def symmetric_cross_entropy(logits: Tensor, labels: Tensor, alpha: float, beta: float) -> Tensor:
    """SCE averaged over the labelled rows: logits (N, K), labels (N,) in [0, K) or -1 for a
    row that does not count -> scalar (0 when no row counts)."""
    counted = labels >= 0
    probabilities = F.softmax(logits.float(), dim=1)
    one_hot = F.one_hot(labels.clamp_min(0), logits.shape[1]).float()
    one_hot = one_hot.clamp(min=ONE_HOT_FLOOR, max=1.0)
    reverse = -(probabilities * torch.log(one_hot)).sum(dim=1)
    forward = F.cross_entropy(logits.float(), labels, ignore_index=-1, reduction="none")
    per_row = alpha * forward + beta * reverse * counted
    return per_row.sum() / counted.sum().clamp_min(1)

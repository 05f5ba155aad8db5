"""InfoNCE of queries against their own key and a shared queue of negatives, with a hand-written
backward that keeps one (N, K) buffer.

Autograd through ``cat -> log_softmax -> nll_loss`` makes several (N, 1 + K) passes and buffers
(the concatenated logits, their log-softmax, a zero-filled gradient, the gradient of the slice).
For MoCo's 65536-key queue these dominate the step on a CPU. Here the forward computes the
negative similarities once, turns them in place into exp(l - max), and saves that buffer; the
backward multiplies it by the queue and divides the (N, D) product by the row sums.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class QueueInfoNCE(torch.autograd.Function):
    """mean_i [logsumexp(l_i) - l_i0] with l_i = (q_i . k_i, q_i . queue_1, ..., q_i . queue_K).

    Inputs (float32): queries (N, D), keys (N, D) and queue (K, D), already normalised and
    scaled as the caller wants (MoCo: unit queries divided by the temperature, unit keys). The
    result equals ``cross_entropy(cat([sum(q * k, 1, keepdim), q @ queue.T], 1), zeros(N))``.
    """

    @staticmethod
    def forward(ctx: Any, queries: Tensor, keys: Tensor, queue: Tensor) -> Tensor:
        positive = (queries * keys).sum(dim=1)
        negatives = queries @ queue.T
        peak = torch.maximum(negatives.amax(dim=1), positive)
        exp_negatives = negatives.sub_(peak[:, None]).exp_()
        exp_positive = (positive - peak).exp()
        total = exp_negatives.sum(dim=1) + exp_positive
        ctx.save_for_backward(queries, keys, queue, exp_negatives, exp_positive, total)
        return (peak + total.log() - positive).mean()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        queries, keys, queue, exp_negatives, exp_positive, total = ctx.saved_tensors
        scale = grad / len(queries)
        # softmax = exp_negatives / total: the division is applied to the (N, D) products
        # rather than to the (N, K) buffer
        row_scale = (scale / total)[:, None]
        positive_weight = ((exp_positive / total - 1.0) * scale)[:, None]
        grad_queries = grad_keys = grad_queue = None
        if ctx.needs_input_grad[0]:
            grad_queries = (exp_negatives @ queue) * row_scale + positive_weight * keys
        if ctx.needs_input_grad[1]:
            grad_keys = positive_weight * queries
        if ctx.needs_input_grad[2]:
            grad_queue = exp_negatives.T @ (queries * row_scale)
        return grad_queries, grad_keys, grad_queue


def queue_info_nce(queries: Tensor, keys: Tensor, queue: Tensor) -> Tensor:
    """:class:`QueueInfoNCE` of (N, D) queries, (N, D) keys and a (K, D) queue: a scalar."""
    return QueueInfoNCE.apply(queries, keys, queue)

"""Continual-learning metrics from an accuracy matrix.

``a[i][j]`` is the accuracy on task j's test set after training task i (0-based, T x T). The
formulas follow Chaudhry et al. 2018 (forgetting), Lopez-Paz & Ranzato 2017 (backward and
forward transfer), Rebuffi et al. 2017 (average incremental accuracy), Zhang et al. 2023 (the
pooled final accuracy), Tang et al. 2024 (average continual accuracy) and Yan et al. 2021
(negative flip rate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

Matrix = Sequence[Sequence[float]]


@dataclass(frozen=True)
class Metric:
    """A number with the protocol that produced it."""

    value: float
    protocol: str


def _check_square(matrix: Matrix) -> int:
    size = len(matrix)
    if size == 0 or any(len(row) != size for row in matrix):
        raise ValueError(f"accuracy matrix must be T x T with T >= 1, got {len(matrix)} rows")
    return size


def final_accuracy(matrix: Matrix) -> float:
    """mean_j a[T-1][j]: accuracy over all tasks after the last one."""
    size = _check_square(matrix)
    return sum(matrix[-1]) / size


def average_continual_accuracy(matrix: Matrix) -> float:
    """mean_i (mean_{j <= i} a[i][j]): the seen-task accuracy averaged over the stream (Kaizen)."""
    size = _check_square(matrix)
    return sum(sum(matrix[i][: i + 1]) / (i + 1) for i in range(size)) / size


def forgetting(matrix: Matrix, reference: str = "max") -> float:
    """mean_{j < T-1} (r_j - a[T-1][j]); 0 for one task.

    With ``reference="max"``, r_j = max_{j <= l < T-1} a[l][j], task j's best accuracy over the
    models trained after it was seen (Chaudhry et al. 2018). With ``"just-learned"``, r_j =
    a[j][j], its accuracy right after learning it (LUMP's released main.py, Madaan et al.,
    ICLR 2022): the negated backward transfer.
    """
    size = _check_square(matrix)
    if size == 1:
        return 0.0
    drops = [
        (
            matrix[j][j]
            if reference == "just-learned"
            else max(matrix[later][j] for later in range(j, size - 1))
        )
        - matrix[-1][j]
        for j in range(size - 1)
    ]
    return sum(drops) / len(drops)


FORGETTING_PROTOCOLS = {
    "max": "mean_(j<T-1) max_(j<=l<T-1) a[l][j] - a[T-1][j]",
    "just-learned": "mean_(j<T-1) a[j][j] - a[T-1][j] (forgetting from the accuracy just after "
    "learning each task)",
}
"""How each ``eval.forgetting`` reference is described in a metric's protocol."""


def backward_transfer(matrix: Matrix) -> float:
    """mean_{j < T-1} (a[T-1][j] - a[j][j]) (Lopez-Paz & Ranzato 2017); 0 for one task."""
    size = _check_square(matrix)
    if size == 1:
        return 0.0
    return sum(matrix[-1][j] - matrix[j][j] for j in range(size - 1)) / (size - 1)


def _check_per_task(values: Sequence[object], size: int, what: str) -> None:
    if len(values) != size:
        raise ValueError(f"{what} needs one entry per task ({size}), got {len(values)}")


def average_incremental_accuracy(matrix: Matrix, test_sizes: Sequence[int]) -> float:
    """mean_t (sum_{j <= t} n_j a[t][j] / sum_{j <= t} n_j) (Rebuffi et al. 2017, iCaRL).

    After each task t, the accuracy on all test images of the tasks seen so far (n_j of them for
    task j), averaged over t. It equals the average continual accuracy when every task has a
    test set of the same size.
    """
    size = _check_square(matrix)
    _check_per_task(test_sizes, size, "test_sizes")
    if any(count <= 0 for count in test_sizes):
        raise ValueError(f"every task needs test images, got test sizes {list(test_sizes)}")
    seen = [
        sum(test_sizes[j] * matrix[t][j] for j in range(t + 1)) / sum(test_sizes[: t + 1])
        for t in range(size)
    ]
    return sum(seen) / size


def pooled_final_accuracy(matrix: Matrix, test_sizes: Sequence[int]) -> float:
    """sum_j n_j a[T-1][j] / sum_j n_j: top-1 over all test images pooled after the last task.

    SLCA's "last accuracy" (Zhang et al., ICCV 2023); it equals :func:`final_accuracy`, the
    mean over tasks, when every task has a test set of the same size.
    """
    size = _check_square(matrix)
    _check_per_task(test_sizes, size, "test_sizes")
    if sum(test_sizes) <= 0:
        raise ValueError(f"the tasks need test images, got test sizes {list(test_sizes)}")
    return sum(count * value for count, value in zip(test_sizes, matrix[-1], strict=True)) / sum(
        test_sizes
    )


def forward_transfer(matrix: Matrix, random_init: Sequence[float]) -> float:
    """mean_{i >= 1} (a[i-1][i] - b_i) (Lopez-Paz & Ranzato 2017); 0 for one task.

    ``b_i`` is the accuracy of the randomly initialised model on task i's test set, measured
    with the same head: how much training on the earlier tasks helps a task not yet seen.
    """
    size = _check_square(matrix)
    _check_per_task(random_init, size, "random_init")
    if size == 1:
        return 0.0
    return sum(matrix[i - 1][i] - random_init[i] for i in range(1, size)) / (size - 1)


def plasticity(matrix: Matrix) -> float:
    """mean_i a[i][i]: the accuracy on each task right after training it.

    The plasticity side of the stability-plasticity trade-off (the complement of the
    intransigence of Chaudhry et al. 2018, measured without a joint-training reference).
    """
    size = _check_square(matrix)
    return sum(matrix[i][i] for i in range(size)) / size


def old_new_accuracy(matrix: Matrix) -> tuple[float, float]:
    """(mean_{j < T-1} a[T-1][j], a[T-1][T-1]): the final model on earlier tasks and on the last.

    With one task there is no earlier task: the old accuracy is 0.0 rather than undefined, as
    for forgetting and backward transfer.
    """
    size = _check_square(matrix)
    last = matrix[-1]
    old = sum(last[: size - 1]) / (size - 1) if size > 1 else 0.0
    return old, last[size - 1]


def negative_flip_rate(previous_correct: Tensor, current_correct: Tensor) -> float:
    """#(previous right and current wrong) / N over the same N test samples (Yan et al. 2021).

    Both arguments are bool (N,) vectors: whether the model before and after an update classifies
    each sample correctly. The count is divided by all N samples (the definition of
    "Positive-Congruent Training", CVPR 2021), not by the samples the previous model got right,
    so rates of models with different accuracies stay on one scale.
    """
    if previous_correct.shape != current_correct.shape or previous_correct.dim() != 1:
        raise ValueError(
            "negative_flip_rate needs two (N,) vectors over the same samples, got shapes "
            f"{tuple(previous_correct.shape)} and {tuple(current_correct.shape)}"
        )
    if previous_correct.dtype != torch.bool or current_correct.dtype != torch.bool:
        raise ValueError("negative_flip_rate needs bool vectors (prediction == label)")
    if len(previous_correct) == 0:
        raise ValueError("negative_flip_rate needs at least one test sample")
    flips = previous_correct & ~current_correct
    return float(flips.sum()) / len(flips)


def _mean_flip_rate(flip_rates: Sequence[float | None], size: int) -> float:
    """Mean of the flip rates of tasks 1..T-1 (task 0 has no previous model); 0 for one task."""
    _check_per_task(flip_rates, size, "flip_rates")
    later = [rate for rate in flip_rates[1:] if rate is not None]
    if len(later) != size - 1:
        raise ValueError(f"every task after the first needs a flip rate, got {list(flip_rates)}")
    return sum(later) / len(later) if later else 0.0


def continual_metrics(
    matrix: Matrix,
    head: str,
    *,
    test_sizes: Sequence[int] | None = None,
    random_init: Sequence[float] | None = None,
    flip_rates: Sequence[float | None] | None = None,
    forgetting_reference: str = "max",
) -> dict[str, Metric]:
    """Every metric of ``matrix`` that the given inputs allow, each with its protocol.

    Args:
        matrix: the T x T accuracy matrix.
        head: what was evaluated (which head, which data, masked or not); starts every protocol.
        test_sizes: test images per task; adds the average incremental accuracy.
        random_init: accuracy of the randomly initialised model per task; adds forward transfer.
        flip_rates: negative flip rate of each task's model against the previous one (the
            first entry, without a previous model, is None); adds their mean.
        forgetting_reference: what :func:`forgetting` measures the drop from (``max`` or
            ``just-learned``); the protocol names it.
    """
    size = _check_square(matrix)
    base = f"{head}; a[i][j] = top-1 on task j's test set after task i"
    old, new = old_new_accuracy(matrix)
    metrics = {
        "final_accuracy": Metric(final_accuracy(matrix), f"{base}; mean_j a[T-1][j]"),
        "average_continual_accuracy": Metric(
            average_continual_accuracy(matrix), f"{base}; mean_i mean_(j<=i) a[i][j]"
        ),
        "forgetting": Metric(
            forgetting(matrix, forgetting_reference),
            f"{base}; {FORGETTING_PROTOCOLS[forgetting_reference]}",
        ),
        "backward_transfer": Metric(
            backward_transfer(matrix), f"{base}; mean_(j<T-1) a[T-1][j] - a[j][j]"
        ),
    }
    if test_sizes is not None:
        metrics["pooled_final_accuracy"] = Metric(
            pooled_final_accuracy(matrix, test_sizes),
            f"{base}; sum_j n_j a[T-1][j] / sum_j n_j, n_j = test images of task j (top-1 over "
            "all test images pooled)",
        )
        metrics["average_incremental_accuracy"] = Metric(
            average_incremental_accuracy(matrix, test_sizes),
            f"{base}; mean_i sum_(j<=i) n_j a[i][j] / sum_(j<=i) n_j, n_j = test images of task j",
        )
    if random_init is not None:
        metrics["forward_transfer"] = Metric(
            forward_transfer(matrix, random_init),
            f"{base}; mean_(i>=1) a[i-1][i] - b_i, b_i = randomly initialised model on task i",
        )
    metrics["plasticity"] = Metric(plasticity(matrix), f"{base}; mean_i a[i][i]")
    metrics["old_accuracy"] = Metric(old, f"{base}; mean_(j<T-1) a[T-1][j] (0 for one task)")
    metrics["new_accuracy"] = Metric(new, f"{base}; a[T-1][T-1]")
    if flip_rates is not None:
        metrics["negative_flip_rate"] = Metric(
            _mean_flip_rate(flip_rates, size),
            f"{head}; mean_(i>=1) #(right after task i-1, wrong after task i) / N "
            "over the N test-set samples compared",
        )
    return metrics

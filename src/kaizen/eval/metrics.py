"""Continual-learning metrics from an accuracy matrix.

``a[i][j]`` is the accuracy on task j's test set after training task i (0-based, T x T). The
formulas follow Chaudhry et al. 2018 (forgetting), Lopez-Paz & Ranzato 2017 (backward
transfer) and Tang et al. 2024 (average continual accuracy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


def forgetting(matrix: Matrix) -> float:
    """mean_{j < T-1} (max_{l < T-1} a[l][j] - a[T-1][j]) (Chaudhry et al. 2018); 0 for one task.

    The max runs over the models trained after task j was seen (l >= j), which is where the
    accuracy on task j can have been reached.
    """
    size = _check_square(matrix)
    if size == 1:
        return 0.0
    drops = [
        max(matrix[later][j] for later in range(j, size - 1)) - matrix[-1][j]
        for j in range(size - 1)
    ]
    return sum(drops) / len(drops)


def backward_transfer(matrix: Matrix) -> float:
    """mean_{j < T-1} (a[T-1][j] - a[j][j]) (Lopez-Paz & Ranzato 2017); 0 for one task."""
    size = _check_square(matrix)
    if size == 1:
        return 0.0
    return sum(matrix[-1][j] - matrix[j][j] for j in range(size - 1)) / (size - 1)


def continual_metrics(matrix: Matrix, head: str) -> dict[str, Metric]:
    """Every metric of ``matrix``, each with its protocol; ``head`` names what was evaluated."""
    base = f"{head}; a[i][j] = top-1 on task j's test set after task i"
    return {
        "final_accuracy": Metric(final_accuracy(matrix), f"{base}; mean_j a[T-1][j]"),
        "average_continual_accuracy": Metric(
            average_continual_accuracy(matrix), f"{base}; mean_i mean_(j<=i) a[i][j]"
        ),
        "forgetting": Metric(
            forgetting(matrix), f"{base}; mean_(j<T-1) max_(j<=l<T-1) a[l][j] - a[T-1][j]"
        ),
        "backward_transfer": Metric(
            backward_transfer(matrix), f"{base}; mean_(j<T-1) a[T-1][j] - a[j][j]"
        ),
    }

"""Continual-learning metrics of an accuracy matrix a[i][j] (task j after training task i)."""

from __future__ import annotations

import pytest

from kaizen.eval.metrics import (
    Metric,
    average_continual_accuracy,
    backward_transfer,
    continual_metrics,
    final_accuracy,
    forgetting,
)

MATRIX = [
    [0.90, 0.10, 0.00],
    [0.95, 0.80, 0.20],
    [0.50, 0.70, 0.60],
]
# final accuracy: last row (0.5 + 0.7 + 0.6) / 3 = 0.6
# average continual accuracy: row means over the seen tasks
#   after task 0: 0.9; after task 1: (0.95 + 0.8) / 2 = 0.875; after task 2: 0.6
#   (0.9 + 0.875 + 0.6) / 3 = 2.375 / 3 = 0.7916667
# forgetting: task 0: best 0.95 (after task 1) - 0.5 = 0.45; task 1: best 0.8 - 0.7 = 0.1
#   (0.45 + 0.1) / 2 = 0.275
# backward transfer: task 0: 0.5 - 0.9 = -0.4; task 1: 0.7 - 0.8 = -0.1; mean -0.25
EXPECTED = {
    "final_accuracy": 0.6,
    "average_continual_accuracy": 2.375 / 3,
    "forgetting": 0.275,
    "backward_transfer": -0.25,
}


def test_final_accuracy_by_hand():
    assert final_accuracy(MATRIX) == pytest.approx(0.6)


def test_average_continual_accuracy_by_hand():
    assert average_continual_accuracy(MATRIX) == pytest.approx(0.7916667, rel=1e-6)


def test_forgetting_by_hand():
    assert forgetting(MATRIX) == pytest.approx(0.275)


def test_backward_transfer_by_hand():
    assert backward_transfer(MATRIX) == pytest.approx(-0.25)


def test_metrics_ignore_entries_of_tasks_not_yet_seen():
    # the upper triangle (accuracy on tasks before training them) changes none of the metrics
    other = [row[:] for row in MATRIX]
    other[0][2] = 0.33
    other[1][2] = 0.44
    for fn in (average_continual_accuracy, forgetting, backward_transfer):
        assert fn(other) == pytest.approx(fn(MATRIX))


def test_improving_stream_has_negative_forgetting_and_positive_transfer():
    # accuracy on task 0 rises after task 1: 0.5 -> 0.7; task 1 stays 0.6
    matrix = [[0.5, 0.0], [0.7, 0.6]]
    # forgetting: task 0, best before the end 0.5, now 0.7: 0.5 - 0.7 = -0.2
    assert forgetting(matrix) == pytest.approx(-0.2)
    # backward transfer: 0.7 - 0.5 = 0.2
    assert backward_transfer(matrix) == pytest.approx(0.2)
    # final: (0.7 + 0.6) / 2 = 0.65; continual: (0.5 + 0.65) / 2 = 0.575
    assert final_accuracy(matrix) == pytest.approx(0.65)
    assert average_continual_accuracy(matrix) == pytest.approx(0.575)


def test_one_task():
    matrix = [[0.7]]
    assert final_accuracy(matrix) == pytest.approx(0.7)
    assert average_continual_accuracy(matrix) == pytest.approx(0.7)
    assert forgetting(matrix) == 0.0
    assert backward_transfer(matrix) == 0.0


def test_tuples_are_accepted():
    matrix = tuple(tuple(row) for row in MATRIX)
    assert final_accuracy(matrix) == pytest.approx(0.6)
    assert forgetting(matrix) == pytest.approx(0.275)


@pytest.mark.parametrize(
    "matrix",
    [[], [[0.5, 0.4]], [[0.5], [0.4]], [[0.5, 0.4], [0.3]], [[0.1, 0.2, 0.3]] * 2],
)
@pytest.mark.parametrize(
    "fn", [final_accuracy, average_continual_accuracy, forgetting, backward_transfer]
)
def test_non_square_matrix_raises(matrix, fn):
    with pytest.raises(ValueError, match="T x T"):
        fn(matrix)


def test_continual_metrics_give_every_value_with_its_protocol():
    head = "single head, argmax over all classes, unmasked"
    metrics = continual_metrics(MATRIX, head)
    assert set(metrics) == set(EXPECTED)
    for name, expected in EXPECTED.items():
        metric = metrics[name]
        assert isinstance(metric, Metric)
        assert metric.value == pytest.approx(expected), name
        assert head in metric.protocol
        assert "test set" in metric.protocol
    # each protocol also names its own formula
    assert len({metric.protocol for metric in metrics.values()}) == len(metrics)


def test_continual_metrics_rejects_a_non_square_matrix():
    with pytest.raises(ValueError):
        continual_metrics([[0.5, 0.4]], "single head")

"""Continual-learning metrics of an accuracy matrix a[i][j] (task j after training task i)."""

from __future__ import annotations

import pytest
import torch

from kaizen.eval.metrics import (
    Metric,
    average_continual_accuracy,
    average_incremental_accuracy,
    backward_transfer,
    continual_metrics,
    final_accuracy,
    forgetting,
    forward_transfer,
    negative_flip_rate,
    old_new_accuracy,
    plasticity,
    pooled_final_accuracy,
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
    "plasticity": 2.3 / 3,
    "old_accuracy": 0.6,
    "new_accuracy": 0.6,
}
TEST_SIZES = [100, 300, 100]
RANDOM_INIT = [0.10, 0.05, 0.15]
FLIP_RATES = [None, 0.2, 0.1]


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


def test_average_incremental_accuracy_weights_tasks_by_test_size():
    # test sizes 100, 300, 100: accuracy over all seen test images after each task
    #   after task 0: 0.9
    #   after task 1: (100 * 0.95 + 300 * 0.8) / 400 = (95 + 240) / 400 = 0.8375
    #   after task 2: (100 * 0.5 + 300 * 0.7 + 100 * 0.6) / 500 = (50 + 210 + 60) / 500 = 0.64
    #   mean: (0.9 + 0.8375 + 0.64) / 3 = 2.3775 / 3 = 0.7925
    assert average_incremental_accuracy(MATRIX, TEST_SIZES) == pytest.approx(0.7925)
    # equal sizes give the average continual accuracy
    assert average_incremental_accuracy(MATRIX, [7, 7, 7]) == pytest.approx(2.375 / 3)


def test_pooled_final_accuracy_weights_the_last_row_by_test_size():
    # last row 0.5, 0.7, 0.6 over 100, 300, 100 test images: (50 + 210 + 60) / 500
    assert pooled_final_accuracy(MATRIX, TEST_SIZES) == pytest.approx(0.64)
    # the mean over tasks is 0.6: pooling differs where the test sets differ in size
    assert final_accuracy(MATRIX) == pytest.approx(0.6)
    assert pooled_final_accuracy(MATRIX, [9, 9, 9]) == pytest.approx(0.6)


@pytest.mark.parametrize("sizes", [[100, 300], [0, 0, 0]])
def test_pooled_final_accuracy_rejects_bad_test_sizes(sizes):
    with pytest.raises(ValueError):
        pooled_final_accuracy(MATRIX, sizes)


@pytest.mark.parametrize("sizes", [[100, 300], [100, 0, 100]])
def test_average_incremental_accuracy_rejects_bad_test_sizes(sizes):
    with pytest.raises(ValueError):
        average_incremental_accuracy(MATRIX, sizes)


def test_forward_transfer_by_hand():
    # random-init accuracies b = 0.10, 0.05, 0.15
    #   task 1 before training it: a[0][1] - b_1 = 0.10 - 0.05 = 0.05
    #   task 2 before training it: a[1][2] - b_2 = 0.20 - 0.15 = 0.05
    #   mean: 0.05 (b_0 is not used: no model precedes task 0)
    assert forward_transfer(MATRIX, RANDOM_INIT) == pytest.approx(0.05)
    assert forward_transfer([[0.7]], [0.1]) == 0.0
    with pytest.raises(ValueError, match="one entry per task"):
        forward_transfer(MATRIX, [0.1, 0.1])


def test_plasticity_by_hand():
    # diagonal 0.9, 0.8, 0.6: (0.9 + 0.8 + 0.6) / 3 = 2.3 / 3 = 0.7666667
    assert plasticity(MATRIX) == pytest.approx(2.3 / 3)


def test_old_new_accuracy_by_hand():
    # last row 0.5, 0.7, 0.6: old = (0.5 + 0.7) / 2 = 0.6, new = 0.6
    assert old_new_accuracy(MATRIX) == pytest.approx((0.6, 0.6))
    # [[0.9, 0.1], [0.4, 0.8]]: old = 0.4, new = 0.8
    assert old_new_accuracy([[0.9, 0.1], [0.4, 0.8]]) == pytest.approx((0.4, 0.8))
    # one task: no earlier task, old is 0.0
    assert old_new_accuracy([[0.7]]) == pytest.approx((0.0, 0.7))


def test_negative_flip_rate_by_hand():
    previous = torch.tensor([True, True, True, False, False, True, False, True])
    current = torch.tensor([True, False, True, True, False, False, False, True])
    # right before and wrong now: samples 1 and 5 -> 2 of 8 samples = 0.25
    # (sample 3 flips the other way and does not count)
    assert negative_flip_rate(previous, current) == pytest.approx(0.25)
    assert negative_flip_rate(previous, previous) == 0.0


@pytest.mark.parametrize(
    ("previous", "current"),
    [
        (torch.ones(4, dtype=torch.bool), torch.ones(3, dtype=torch.bool)),
        (torch.ones(2, 2, dtype=torch.bool), torch.ones(2, 2, dtype=torch.bool)),
        (torch.ones(4), torch.ones(4)),
        (torch.ones(0, dtype=torch.bool), torch.ones(0, dtype=torch.bool)),
    ],
)
def test_negative_flip_rate_rejects_bad_inputs(previous, current):
    with pytest.raises(ValueError, match="negative_flip_rate"):
        negative_flip_rate(previous, current)


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


def test_continual_metrics_add_the_metrics_their_inputs_allow():
    head = "single head"
    metrics = continual_metrics(
        MATRIX, head, test_sizes=TEST_SIZES, random_init=RANDOM_INIT, flip_rates=FLIP_RATES
    )
    expected = {
        **EXPECTED,
        "average_incremental_accuracy": 0.7925,
        # last row 0.5, 0.7, 0.6 over 100, 300, 100 test images: (50 + 210 + 60) / 500
        "pooled_final_accuracy": 0.64,
        "forward_transfer": 0.05,
        # flip rates of tasks 1 and 2: (0.2 + 0.1) / 2 = 0.15
        "negative_flip_rate": 0.15,
    }
    assert set(metrics) == set(expected)
    for name, value in expected.items():
        assert metrics[name].value == pytest.approx(value), name
        assert head in metrics[name].protocol
    assert "b_i" in metrics["forward_transfer"].protocol
    assert "n_j" in metrics["average_incremental_accuracy"].protocol
    assert "pooled" in metrics["pooled_final_accuracy"].protocol
    assert len({metric.protocol for metric in metrics.values()}) == len(metrics)


def test_continual_metrics_of_one_task_with_every_input():
    metrics = continual_metrics([[0.7]], "h", test_sizes=[5], random_init=[0.1], flip_rates=[None])
    assert metrics["negative_flip_rate"].value == 0.0
    assert metrics["forward_transfer"].value == 0.0
    assert metrics["average_incremental_accuracy"].value == pytest.approx(0.7)


@pytest.mark.parametrize("flip_rates", [[None, 0.2], [None, None, 0.1]])
def test_continual_metrics_reject_missing_flip_rates(flip_rates):
    with pytest.raises(ValueError, match=r"flip.rate"):
        continual_metrics(MATRIX, "h", flip_rates=flip_rates)


def test_continual_metrics_rejects_a_non_square_matrix():
    with pytest.raises(ValueError):
        continual_metrics([[0.5, 0.4]], "single head")


def test_forgetting_from_the_accuracy_just_after_learning_is_lumps():
    # task 0: 0.9 right after it, 0.5 at the end (its best, 0.95, is not the reference); task 1:
    # 0.8 -> 0.7; (0.4 + 0.1) / 2 = 0.25, against 0.275 from the best accuracy
    assert forgetting(MATRIX, "just-learned") == pytest.approx(0.25)
    metrics = continual_metrics(MATRIX, "head", forgetting_reference="just-learned")
    assert metrics["forgetting"].value == pytest.approx(0.25)
    assert "a[j][j] - a[T-1][j]" in metrics["forgetting"].protocol
    assert "max" in continual_metrics(MATRIX, "head")["forgetting"].protocol

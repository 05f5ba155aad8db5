"""Loss terms: classifier cross-entropy, soft-label distillation and the weighted total."""

from __future__ import annotations

import math

import pytest
import torch

from kaizen.learner.learner import LearnerOutputs
from kaizen.learner.teacher import TeacherOutputs
from kaizen.learner.terms import (
    StepTensors,
    WeightedTerm,
    classifier_cross_entropy,
    classifier_distill_term,
    classifier_term,
    soft_label_distillation,
    total_loss,
)

# ---------------------------------------------------------------------------- classifier CE


def test_cross_entropy_by_hand_with_one_unlabelled_image():
    # 2 images x 2 views: rows 0, 1 are view 1 of images A, B; rows 2, 3 view 2 of A, B.
    # Image A has label 1, image B is unlabelled (-1) and must not count, whatever its logits.
    logits = torch.tensor(
        [
            [0.0, 1.0, 0.0],  # A, view 1
            [50.0, -50.0, 9.0],  # B, view 1 (ignored)
            [2.0, 0.0, 0.0],  # A, view 2
            [-7.0, 30.0, 1.0],  # B, view 2 (ignored)
        ],
        requires_grad=True,
    )
    labels = torch.tensor([1, -1, 1, -1])
    # A view 1: -log(e^1 / (1 + e + 1)) = log(e + 2) - 1
    # A view 2: -log(e^0 / (e^2 + 1 + 1)) = log(e^2 + 2)
    # one labelled row per view: the mean per view is that row, and the two views are summed
    expected = (math.log(math.e + 2) - 1) + math.log(math.exp(2) + 2)
    loss = classifier_cross_entropy(logits, labels)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert torch.count_nonzero(logits.grad[[1, 3]]) == 0  # unlabelled rows get no gradient
    # d/dlogits of -log softmax = softmax - onehot, for row 0: softmax = (1, e, 1) / (e + 2)
    row0 = torch.tensor([1.0, math.e, 1.0]) / (math.e + 2) - torch.tensor([0.0, 1.0, 0.0])
    torch.testing.assert_close(logits.grad[0], row0)


def test_cross_entropy_by_hand_all_labelled_averages_per_view_and_sums_views():
    logits = torch.tensor([[0.0, 0.0], [math.log(3), 0.0], [0.0, 0.0], [0.0, math.log(3)]])
    labels = torch.tensor([0, 0, 1, 1])
    # row 0: log 2; row 1: -log(3/4); row 2: log 2; row 3: -log(3/4)
    # per view mean (log 2 - log(3/4)) / 2, summed over the two views
    expected = 2 * (math.log(2) - math.log(0.75)) / 2
    assert classifier_cross_entropy(logits, labels).item() == pytest.approx(expected, rel=1e-6)


def test_cross_entropy_without_labels_is_zero_with_a_graph():
    logits = torch.randn(4, 5, requires_grad=True)
    loss = classifier_cross_entropy(logits, torch.full((4,), -1))
    assert loss.item() == 0.0
    assert not torch.isnan(loss)
    assert loss.grad_fn is not None
    loss.backward()
    assert torch.count_nonzero(logits.grad) == 0


def test_cross_entropy_of_half_precision_logits_is_float32():
    logits = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.bfloat16)
    loss = classifier_cross_entropy(logits, torch.tensor([1, 1]))
    assert loss.dtype == torch.float32
    # view 1: log(1 + e^-1); view 2: log(1 + e)
    expected = math.log(1 + math.exp(-1)) + math.log(1 + math.e)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


# ---------------------------------------------------------------------------- soft-label KD


def test_soft_label_distillation_by_hand():
    # row 0: targets softmax(log 2, 0) = (2/3, 1/3); student softmax(0, log 3) = (1/4, 3/4)
    # row 1: targets (1/2, 1/2); student (1/2, 1/2)
    logits = torch.tensor([[0.0, math.log(3)], [0.0, 0.0]])
    teacher = torch.tensor([[math.log(2), 0.0], [5.0, 5.0]])
    row0 = -(2 / 3 * math.log(1 / 4) + 1 / 3 * math.log(3 / 4))
    row1 = math.log(2)
    expected = (row0 + row1) / 2  # mean over rows
    assert soft_label_distillation(logits, teacher).item() == pytest.approx(expected, rel=1e-6)


def test_soft_label_distillation_divides_both_sides_by_the_temperature_and_scales_by_its_square():
    # the same rows as above, scaled by T = 2: dividing by T gives the same distributions,
    # and the loss is multiplied by T^2 = 4 (Hinton et al. 2015)
    logits = torch.tensor([[0.0, 2 * math.log(3)], [0.0, 0.0]])
    teacher = torch.tensor([[2 * math.log(2), 0.0], [10.0, 10.0]])
    row0 = -(2 / 3 * math.log(1 / 4) + 1 / 3 * math.log(3 / 4))
    expected = 4 * (row0 + math.log(2)) / 2
    loss = soft_label_distillation(logits, teacher, temperature=2.0)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # at T = 1 the same inputs give a different value
    assert soft_label_distillation(logits, teacher).item() != pytest.approx(expected, rel=1e-3)


def test_the_temperature_square_keeps_the_gradient_size():
    # for large T the gradient of the unscaled loss shrinks as 1/T^2; with the T^2 factor it
    # tends to (logits - teacher) / K - mean terms: the same size at T = 50 and T = 100
    logits = torch.tensor([[3.0, -1.0, 0.5]])
    teacher = torch.tensor([[1.0, -2.0, 0.0]])
    norms = []
    for temperature in (50.0, 100.0):
        student = logits.clone().requires_grad_(True)
        soft_label_distillation(student, teacher, temperature=temperature).backward()
        norms.append(student.grad.norm().item())
    assert norms[0] == pytest.approx(norms[1], rel=1e-2)


def test_high_temperature_flattens_the_targets():
    logits = torch.tensor([[3.0, -1.0, 0.5]])
    teacher = torch.tensor([[10.0, -10.0, 0.0]])
    # as T grows both distributions tend to uniform and the loss over T^2 to log K
    temperature = 1e4
    loss = soft_label_distillation(logits, teacher, temperature=temperature)
    assert loss.item() / temperature**2 == pytest.approx(math.log(3), rel=1e-3)


def test_soft_label_distillation_over_marked_rows_is_their_mean():
    generator = torch.Generator().manual_seed(1)
    logits, teacher = torch.randn(6, 4, generator=generator), torch.randn(6, 4, generator=generator)
    rows = torch.tensor([False, True, False, False, True, True])
    marked = soft_label_distillation(logits, teacher, rows=rows)
    assert marked.item() == pytest.approx(
        soft_label_distillation(logits[rows], teacher[rows]).item()
    )
    assert marked.item() != pytest.approx(soft_label_distillation(logits, teacher).item())
    student = logits.clone().requires_grad_(True)
    nothing = soft_label_distillation(student, teacher, rows=torch.zeros(6, dtype=torch.bool))
    nothing.backward()
    assert nothing.item() == 0.0 and torch.equal(student.grad, torch.zeros_like(logits))


def test_soft_label_distillation_with_equal_logits_is_the_target_entropy():
    generator = torch.Generator().manual_seed(0)
    teacher = torch.randn(6, 4, generator=generator) * 3
    probs = teacher.exp() / teacher.exp().sum(dim=1, keepdim=True)
    entropy = -(probs * probs.log()).sum(dim=1).mean()
    loss = soft_label_distillation(teacher.clone(), teacher)
    assert loss.item() == pytest.approx(entropy.item(), rel=1e-5)


def test_soft_label_distillation_gradient_is_student_minus_target_probabilities():
    logits = torch.tensor([[0.0, math.log(3)]], requires_grad=True)
    teacher = torch.tensor([[math.log(2), 0.0]])
    soft_label_distillation(logits, teacher).backward()
    # d/dlogits = softmax(logits) - targets = (1/4 - 2/3, 3/4 - 1/3), one row
    torch.testing.assert_close(logits.grad, torch.tensor([[1 / 4 - 2 / 3, 3 / 4 - 1 / 3]]))


def _distill_step(logits: torch.Tensor, teacher_logits: torch.Tensor, replayed) -> StepTensors:
    rows = len(logits)
    zeros = torch.zeros(rows, 2)
    return StepTensors(
        views=torch.zeros(rows, 1, 2, 2),
        labels=torch.full((rows,), -1),
        student=LearnerOutputs(zeros, zeros, logits, None),
        teacher=TeacherOutputs(zeros, teacher_logits),
        replayed=replayed,
    )


def test_distilling_over_the_teachers_classes_leaves_the_new_classes_alone():
    # Learning without Forgetting's form: softmax over the old classes 0 and 1 only
    generator = torch.Generator().manual_seed(2)
    logits = torch.randn(4, 4, generator=generator, requires_grad=True)
    teacher = torch.randn(4, 4, generator=generator)
    term = classifier_distill_term(1.0, teacher_classes=[0, 1])
    value = term(_distill_step(logits, teacher, None))
    expected = soft_label_distillation(logits[:, :2], teacher[:, :2])
    assert value.item() == pytest.approx(expected.item())
    value.backward()
    assert torch.equal(logits.grad[:, 2:], torch.zeros(4, 2))  # new classes: no pull
    assert logits.grad[:, :2].abs().sum() > 0
    everything = classifier_distill_term(1.0)(_distill_step(logits, teacher, None))
    assert everything.item() != pytest.approx(value.item())


def test_distilling_on_replay_rows_only():
    generator = torch.Generator().manual_seed(3)
    logits, teacher = torch.randn(4, 3, generator=generator), torch.randn(4, 3, generator=generator)
    replayed = torch.tensor([False, True, False, True])
    term = classifier_distill_term(1.0, replay_rows_only=True)
    value = term(_distill_step(logits, teacher, replayed))
    assert value.item() == pytest.approx(
        soft_label_distillation(logits[replayed], teacher[replayed]).item()
    )
    assert term(_distill_step(logits, teacher, None)).item() == 0.0  # nothing replayed


# ---------------------------------------------------------------------------- total_loss


def _step(logits: torch.Tensor, labels: torch.Tensor) -> StepTensors:
    rows = len(labels)
    student = LearnerOutputs(
        features=torch.zeros(rows, 2),
        projections=torch.zeros(rows, 2),
        logits=logits,
        distilled=None,
    )
    return StepTensors(
        views=torch.zeros(rows, 1, 2, 2), labels=labels, student=student, teacher=None
    )


def test_total_loss_weights_terms_and_reports_detached_unweighted_values():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    terms = [
        WeightedTerm("square", 3.0, lambda step: (x**2).sum()),  # 5
        WeightedTerm("linear", 0.5, lambda step: x.sum()),  # 3
        WeightedTerm("off", 0.0, lambda step: 100 * x.sum()),  # 300, weight 0
    ]
    step = _step(torch.zeros(2, 2), torch.tensor([0, 1]))
    loss, values = total_loss(terms, step)
    assert loss.item() == pytest.approx(3.0 * 5 + 0.5 * 3)
    assert set(values) == {"square", "linear", "off"}
    assert values["square"].item() == pytest.approx(5.0)
    assert values["linear"].item() == pytest.approx(3.0)
    assert values["off"].item() == pytest.approx(300.0)
    assert all(not value.requires_grad for value in values.values())
    loss.backward()
    # d/dx (3 * sum x^2 + 0.5 * sum x) = 6 x + 0.5
    torch.testing.assert_close(x.grad, torch.tensor([6.5, 12.5]))


def test_classifier_term_reads_the_student_logits_and_step_labels():
    logits = torch.tensor([[0.0, 0.0], [9.0, 9.0]])
    labels = torch.tensor([0, -1])
    # view 1: the one labelled row, log 2; view 2: no labelled row, 0
    assert classifier_term(_step(logits, labels)).item() == pytest.approx(math.log(2))
    loss, values = total_loss(
        [WeightedTerm("classifier", 2.0, classifier_term)], _step(logits, labels)
    )
    assert loss.item() == pytest.approx(2 * math.log(2))
    assert values["classifier"].item() == pytest.approx(math.log(2))

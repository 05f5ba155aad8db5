"""The learner, its frozen teacher and the strategies' loss terms: where gradients go."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import small_learner_config
from kaizen.config import RunConfig, build_config, to_plain
from kaizen.learner.learner import Learner, build_learner
from kaizen.learner.teacher import Teacher
from kaizen.learner.terms import StepTensors, classifier_cross_entropy, total_loss
from kaizen.methods.build import build_method
from kaizen.methods.registry import METHODS
from kaizen.methods.seam import TaskClasses
from kaizen.methods.strategies.slca import FAMILY

SSL_METHODS = ("simclr", "mocov2plus", "byol", "vicreg", "simsiam", "barlow")
NUM_CLASSES = 4


_config = small_learner_config


def _learner(config: RunConfig) -> Learner:
    torch.manual_seed(0)
    return build_learner(config, in_channels=1, num_classes=NUM_CLASSES)


def _named(config: RunConfig, strategy: str) -> RunConfig:
    return build_config(to_plain(config), [f"strategy.name={strategy}"])


def _terms(strategy: str, config: RunConfig, learner: Learner, has_teacher: bool):
    """The task's terms of ``strategy``, with a teacher snapshot of ``learner`` or none."""
    teacher = Teacher.snapshot(learner) if has_teacher else None
    return build_method(_named(config, strategy)).terms(learner, teacher, TaskClasses([]))


def _views(rows: int = 8) -> torch.Tensor:
    return torch.randn(rows, 1, 16, 16, generator=torch.Generator().manual_seed(1))


pytestmark = pytest.mark.usefixtures("one_thread")


# 4 images x 2 views; image 1 unlabelled
LABELS = torch.tensor([0, -1, 2, 3, 0, -1, 2, 3])


def _grads(module: nn.Module) -> list[torch.Tensor | None]:
    return [p.grad for p in module.parameters()]


def _has_gradient(module: nn.Module) -> bool:
    return any(g is not None and torch.count_nonzero(g) > 0 for g in _grads(module))


def _no_gradient(module: nn.Module) -> bool:
    return all(g is None or torch.count_nonzero(g) == 0 for g in _grads(module))


# ---------------------------------------------------------------------------- learner


def test_learner_outputs_have_the_documented_shapes():
    learner = _learner(_config())
    out = learner(_views(), with_distill=True)
    feature_dim = learner.backbone.feature_dim
    assert out.features.shape == (8, feature_dim)
    assert out.projections.shape == (8, 8)
    assert out.logits.shape == (8, NUM_CLASSES)
    assert out.distilled is not None and out.distilled.shape == (8, 8)
    assert learner(_views()).distilled is None
    assert learner.ssl.settings.proj_output_dim == 8
    assert learner.ssl.settings.temperature == pytest.approx(0.1)  # SimCLR's paper default kept


def test_classifier_loss_does_not_reach_the_backbone_by_default():
    learner = _learner(_config())
    out = learner(_views())
    classifier_cross_entropy(out.logits, LABELS).backward()
    assert _has_gradient(learner.classifier)
    assert _no_gradient(learner.backbone)
    assert _no_gradient(learner.ssl)


def test_end_to_end_classifier_loss_trains_the_backbone():
    learner = _learner(_config(end_to_end=True))
    out = learner(_views())
    classifier_cross_entropy(out.logits, LABELS).backward()
    assert _has_gradient(learner.classifier)
    assert _has_gradient(learner.backbone)
    assert _no_gradient(learner.ssl)  # the projector is not on the classifier's path


def test_classify_uses_backbone_and_classifier():
    learner = _learner(_config()).eval()
    views = _views()
    with torch.no_grad():
        expected = learner.classifier(learner.backbone(views))
        torch.testing.assert_close(learner.classify(views), expected)
        torch.testing.assert_close(learner(views).logits, expected)


# ---------------------------------------------------------------------------- teacher


def test_teacher_snapshot_is_frozen_and_stays_in_eval_mode():
    learner = _learner(_config()).train()
    teacher = Teacher.snapshot(learner)
    assert all(not p.requires_grad for p in teacher.parameters())
    assert len(list(teacher.parameters())) > 0
    assert all(not m.training for m in teacher.modules())
    teacher.train()
    assert all(not m.training for m in teacher.modules())
    parent = nn.ModuleDict({"teacher": teacher, "learner": learner})
    parent.train()
    assert all(not m.training for m in teacher.modules())
    assert learner.training  # the learner itself follows its parent
    # the learner is not frozen by taking a snapshot
    assert all(p.requires_grad for p in learner.backbone.parameters())
    assert all(p.requires_grad for p in learner.classifier.parameters())


def test_teacher_outputs_carry_no_gradient():
    learner = _learner(_config())
    teacher = Teacher.snapshot(learner)
    with torch.enable_grad():
        out = teacher(_views().requires_grad_(True))
    assert out.projections.shape == (8, 8)
    assert out.logits.shape == (8, NUM_CLASSES)
    assert not out.projections.requires_grad and out.projections.grad_fn is None
    assert not out.logits.requires_grad and out.logits.grad_fn is None


def test_teacher_matches_the_learner_at_snapshot_time_in_eval_mode():
    learner = _learner(_config()).eval()
    teacher = Teacher.snapshot(learner)
    views = _views()
    with torch.no_grad():
        expected = learner(views)
    out = teacher(views)
    torch.testing.assert_close(out.projections, expected.projections)
    torch.testing.assert_close(out.logits, expected.logits)


def test_batch_statistics_teacher_matches_the_train_mode_learner_and_keeps_its_state():
    """Kaizen's and CaSSLe's released code leave the frozen model in train mode: its BatchNorm
    layers normalise with the batch's statistics; here without moving the running ones."""
    learner = _learner(_config())
    teacher = Teacher.snapshot(learner, batchnorm="batch")
    running = Teacher.snapshot(learner)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    views = _views()
    with torch.no_grad():
        expected = learner.train()(views)
    out = teacher.train()(views)
    torch.testing.assert_close(out.projections, expected.projections)
    torch.testing.assert_close(out.logits, expected.logits)
    assert not torch.allclose(running(views).projections, out.projections)
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_teacher_weights_and_statistics_do_not_follow_the_learner():
    learner = _learner(_config()).train()
    teacher = Teacher.snapshot(learner)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    with torch.no_grad():
        for p in learner.parameters():
            p.add_(1.0)
    learner(_views())  # train mode: updates the learner's BatchNorm running statistics
    teacher(_views())  # eval mode: uses, and keeps, its own running statistics
    after = teacher.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(after[key], value), key
    learner_state = learner.backbone.state_dict()
    teacher_state = teacher.backbone.state_dict()
    assert any(not torch.equal(learner_state[k], teacher_state[k]) for k in learner_state)


@pytest.mark.parametrize("ssl", SSL_METHODS)
def test_full_kaizen_loss_leaves_the_teacher_without_gradient(ssl):
    config = _config(ssl)
    learner = _learner(config).train()
    teacher = Teacher.snapshot(learner)
    views = _views()
    step = StepTensors(views, LABELS, learner(views, with_distill=True), teacher(views))
    terms = _terms("kaizen", config, learner, has_teacher=True)
    loss, values = total_loss(terms, step)
    assert set(values) == {"ssl", "classifier", "feature_distill", "classifier_distill"}
    assert torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    # the student parts on the distillation paths are trained
    assert _has_gradient(learner.predictor)
    assert _has_gradient(learner.backbone)
    assert _has_gradient(learner.classifier)


def test_classifier_distillation_trains_only_the_classifier():
    config = _config()
    learner = _learner(config).train()
    teacher = Teacher.snapshot(learner)
    with torch.no_grad():  # make the teacher's soft labels differ from the student's
        for p in teacher.classifier.parameters():
            p.mul_(-1.0)
    views = _views()
    step = StepTensors(views, LABELS, learner(views, with_distill=True), teacher(views))
    terms = _terms("kaizen", config, learner, has_teacher=True)
    (term,) = [t for t in terms if t.name == "classifier_distill"]
    term.fn(step).backward()
    assert _has_gradient(learner.classifier)
    assert _no_gradient(learner.backbone)
    assert _no_gradient(learner.ssl)
    assert _no_gradient(learner.predictor)


# ---------------------------------------------------------------------------- task terms


SSL_STRATEGIES = sorted(set(METHODS) - set(FAMILY))
"""The strategies that learn their features with a self-supervised loss."""


@pytest.mark.parametrize("strategy", sorted(set(SSL_STRATEGIES) - {"lump"}))
def test_first_task_uses_ssl_and_classifier_only(strategy):
    config = _config()
    learner = _learner(config)
    terms = _terms(strategy, config, learner, has_teacher=False)
    assert [t.name for t in terms] == ["ssl", "classifier"]
    assert [t.weight for t in terms] == [1.0, 1.0]


@pytest.mark.parametrize(
    ("strategy", "names"),
    [
        ("kaizen", {"ssl", "classifier", "feature_distill", "classifier_distill"}),
        ("cassle", {"ssl", "classifier", "feature_distill"}),
        ("finetune", {"ssl", "classifier"}),
        ("joint", {"ssl", "classifier"}),
        ("scratch", {"ssl", "classifier"}),
        ("lump", {"ssl"}),
    ],
)
def test_later_task_terms_per_strategy(strategy, names):
    config = _config()
    learner = _learner(config)
    terms = _terms(strategy, config, learner, has_teacher=True)
    assert {t.name for t in terms} == names
    assert len(terms) == len(names)


def test_strategies_that_distill_need_a_teacher():
    config = _config()
    assert {
        name for name in SSL_STRATEGIES if build_method(_named(config, name)).has_part("teacher")
    } == {
        "cassle",
        "kaizen",
        "kaizen-replay-kd",
        "kaizen-refit",
    }


def test_kaizen_term_weights_follow_the_config():
    config = _config(classifier_weight=0.5, classifier_distill_weight=3.0)
    learner = _learner(config)
    terms = _terms("kaizen", config, learner, has_teacher=True)
    weights = {t.name: t.weight for t in terms}
    assert weights == {
        "ssl": 1.0,
        "classifier": 0.5,
        "feature_distill": 1.0,
        "classifier_distill": 3.0,
    }


@pytest.mark.parametrize(
    ("ssl", "weight"),
    [
        ("simclr", 1.0),
        ("mocov2plus", 1.0),
        ("byol", 1.0),
        ("vicreg", 25.0),
        ("simsiam", 1.0),
        ("barlow", 1.0),
    ],
)
def test_default_feature_distill_weight(ssl, weight):
    config = _config(ssl)
    learner = _learner(config)
    for strategy in ("cassle", "kaizen"):
        terms = _terms(strategy, config, learner, has_teacher=True)
        (term,) = [t for t in terms if t.name == "feature_distill"]
        assert term.weight == weight


def test_explicit_feature_distill_weight_wins_over_the_default():
    config = _config("vicreg", feature_distill_weight=3.0)
    learner = _learner(config)
    terms = _terms("kaizen", config, learner, has_teacher=True)
    assert {t.name: t.weight for t in terms}["feature_distill"] == 3.0


def test_teacher_shares_the_frozen_prefix_it_holds_bit_for_bit():
    learner = _learner(_config()).train()
    learner.backbone.freeze_prefix(2)
    teacher = Teacher.snapshot(learner)
    assert teacher.shared_prefix_depth(learner.backbone) == 2
    learner(_views())  # train mode: only the unfrozen blocks' statistics move
    assert teacher.shared_prefix_depth(learner.backbone) == 2
    with torch.no_grad():
        next(learner.backbone.block_modules()[1].parameters()).add_(1e-3)
    assert teacher.shared_prefix_depth(learner.backbone) == 1
    with torch.no_grad():
        next(learner.backbone.block_modules()[0].parameters()).add_(1e-3)
    assert teacher.shared_prefix_depth(learner.backbone) == 0


def test_teacher_shares_nothing_the_student_does_not_freeze():
    learner = _learner(_config())
    teacher = Teacher.snapshot(learner)
    assert learner.backbone.frozen_depth == 0
    assert teacher.shared_prefix_depth(learner.backbone) == 0
    assert teacher.shared_prefix_depth(nn.Linear(2, 2)) == 0


def test_teacher_and_learner_on_shared_prefix_features_equal_their_full_forward():
    learner = _learner(_config()).eval()
    learner.backbone.freeze_prefix(2)
    teacher = Teacher.snapshot(learner)
    views = _views()
    with torch.no_grad():
        expected_student = learner(views)
    expected_teacher = teacher(views)
    prefix = learner.backbone.prefix_features(views, 2)
    with torch.no_grad():
        student = learner(prefix, start_block=2)
    shared = teacher(prefix, start_block=2)
    torch.testing.assert_close(student.projections, expected_student.projections, rtol=0, atol=0)
    torch.testing.assert_close(shared.projections, expected_teacher.projections, rtol=0, atol=0)
    torch.testing.assert_close(shared.logits, expected_teacher.logits, rtol=0, atol=0)

"""The continual learner: backbone, SSL heads, classifier and distillation predictor."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from kaizen.config import RunConfig
from kaizen.errors import ConfigError
from kaizen.models.backbones import build_backbone
from kaizen.models.batchnorm import normalise_views_apart
from kaizen.models.heads import Classifier, TaskHeads
from kaizen.models.weights import load_backbone_weights
from kaizen.ssl.base import SSLMethod
from kaizen.ssl.distill import distill_predictor
from kaizen.ssl.registry import build_ssl_method


@dataclass
class LearnerOutputs:
    """What one forward pass over both views gives (2M rows: view 1 then view 2).

    Attributes:
        features: (2M, F) backbone features h.
        projections: (2M, D) projector outputs z.
        logits: (2M, K) classifier outputs on h (on stop-gradient h unless end-to-end).
        distilled: (2M, D) distillation-predictor outputs P(z), or None when not asked for.
    """

    features: Tensor
    projections: Tensor
    logits: Tensor
    distilled: Tensor | None


LossValues = tuple[Tensor, dict[str, Tensor]]
"""A step's total loss and each term's detached value."""


class Learner(nn.Module):
    """Feature extractor f (backbone + SSL method), classifier g and distillation predictor P.

    Args:
        backbone: (N, C, H, W) -> (N, F), with attribute ``feature_dim``.
        ssl: the SSL method owning the projector (F -> D) and its own heads.
        classifier: (N, F) -> (N, K), over all classes (one head, or one per task).
        predictor: (N, D) -> (N, D), maps current projections into the previous model's space.
        end_to_end: let the classifier's gradient reach the backbone.
    """

    def __init__(
        self,
        backbone: nn.Module,
        ssl: SSLMethod,
        classifier: Classifier | TaskHeads,
        predictor: nn.Module,
        end_to_end: bool = False,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.ssl = ssl
        self.classifier = classifier
        self.predictor = predictor
        self.end_to_end = end_to_end

    def forward(
        self,
        views: Tensor,
        with_distill: bool = False,
        loss_fn: Callable[[LearnerOutputs], LossValues] | None = None,
        start_block: int = 0,
    ) -> LearnerOutputs | LossValues:
        """Shapes: views (2M, C, H, W) -> :class:`LearnerOutputs`, or ``loss_fn`` of them.

        Computing the loss inside ``forward`` keeps every trainable module (the SSL method's own
        heads included) inside the call that data-parallel training wraps. With
        ``start_block`` > 0, ``views`` is the output of the backbone's first ``start_block``
        (frozen) blocks, and the backbone runs the rest.
        """
        features = self.backbone(views, start_block) if start_block else self.backbone(views)
        projections = self.ssl.projector(features)
        logits = self.classifier(features if self.end_to_end else features.detach())
        distilled = self.predictor(self.ssl.distill_input(projections)) if with_distill else None
        outputs = LearnerOutputs(features, projections, logits, distilled)
        return outputs if loss_fn is None else loss_fn(outputs)

    def classify(self, images: Tensor) -> Tensor:
        """Logits (N, K) for normalised images (N, C, H, W)."""
        return self.classifier(self.backbone(images))


def build_learner(
    config: RunConfig,
    in_channels: int,
    num_classes: int,
    data_image_size: int | None = None,
    task_classes: Sequence[Sequence[int]] | None = None,
) -> Learner:
    """A freshly initialised learner for ``config``.

    A Vision Transformer is built for ``model.image_size``, or else for ``data_image_size``
    (the side of the data's images, which then reach it unresized). Per-task heads
    (``model.heads=per-task``) are cut along ``task_classes``, the classes of each task.
    """
    model = config.model
    image_size = model.image_size or data_image_size
    if model.backbone.startswith("vit_") and image_size is None:
        raise ConfigError(
            f"model.backbone={model.backbone} needs an input size: set model.image_size "
            "(a multiple of model.patch_size)"
        )
    backbone = build_backbone(
        model.backbone,
        stem=model.stem,
        width=model.width,
        in_channels=in_channels,
        image_size=image_size or 224,
        patch_size=model.patch_size,
        depth=model.depth,
        stem_padding=model.stem_padding,
    )
    if model.weights is not None:
        load_backbone_weights(backbone, model.weights)
    ssl = build_ssl_method(config.ssl, backbone.feature_dim)
    classifier: Classifier | TaskHeads
    if model.heads == "per-task":
        if task_classes is None:
            raise ValueError("per-task heads need the classes of each task")
        classifier = TaskHeads(backbone.feature_dim, num_classes, task_classes)
    else:
        classifier = Classifier(backbone.feature_dim, num_classes, model.classifier_hidden_dim)
    predictor = (
        nn.Identity()
        if ssl.distill_kind == "none"
        else distill_predictor(ssl.output_dim, config.strategy.distill_predictor_hidden_dim)
    )
    if model.batchnorm_views == "per-view":
        for module in (backbone, ssl, classifier, predictor):
            normalise_views_apart(module, ssl.views)
    ssl.attach_backbone(backbone)
    return Learner(backbone, ssl, classifier, predictor, config.strategy.end_to_end)

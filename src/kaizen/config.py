"""Typed run configuration: validated sections, YAML presets and dotted ``key=value`` overrides.

A run is fully described by one :class:`RunConfig`. Presets are YAML files shipped in
``kaizen/presets``; a user YAML or a preset name plus overrides gives the same object, so the CLI
and the Python API take one path.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Sequence
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from kaizen.errors import ConfigError


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SyntheticConfig(Section):
    """Shape of the procedural dataset used for tests and smoke runs."""

    num_classes: int = Field(10, ge=2)
    train_per_class: int = Field(64, ge=1)
    test_per_class: int = Field(16, ge=1)
    image_size: int = Field(16, ge=8)
    channels: Literal[1, 3] = 3


DatasetName = Literal[
    "fashion-mnist",
    "mnist",
    "idx",
    "cifar10",
    "cifar100",
    "image-folder",
    "domain-folder",
    "npz",
    "synthetic",
]


class DataConfig(Section):
    """Where the images come from and how much of them to use."""

    name: DatasetName = "fashion-mnist"
    path: Path | None = Field(
        None, description="Folder or file of the data; default: the dataset's usual location."
    )
    image_size: int | None = Field(
        None, ge=8, description="Resize side for image folders (shorter side, then centre crop)."
    )
    train_per_class: int | None = Field(
        None, ge=1, description="Keep at most this many training images per class (seeded)."
    )
    test_per_class: int | None = Field(
        None, ge=1, description="Keep at most this many test images per class (seeded)."
    )
    test_fraction: float = Field(
        0.2,
        gt=0.0,
        lt=1.0,
        description="Held-out share for .npz files without x_test/y_test and for image folders "
        "without train/ and val/ (per class).",
    )
    cache_dir: Path | None = Field(None, description="Where decoded image folders are cached.")
    synthetic: SyntheticConfig = SyntheticConfig()


class ScenarioConfig(Section):
    """How the stream is cut into tasks."""

    kind: Literal["class-incremental", "data-incremental", "domain-incremental"] = Field(
        "class-incremental",
        description="New classes per task, seeded shards of all classes, or the same classes "
        "in a new domain per task (a domain-folder's domains, or scenario.domains' transforms).",
    )
    domains: list[str] | None = Field(
        None,
        description="Domain-incremental: the domain of each task, folder names of a "
        "domain-folder (default: sorted) or transforms of one dataset (original, rotated, "
        "inverted, noisy, blurred).",
    )
    num_tasks: int = Field(5, ge=1)
    class_order: list[list[int]] | None = Field(
        None, description="Explicit classes per task; default: a seeded random permutation."
    )
    class_permutation: Literal["torch", "numpy"] = Field(
        "torch",
        description="The generator of the seeded class order: torch's, or numpy's "
        "RandomState(seed).permutation, the order of SLCA's and PyCIL's benchmarks.",
    )
    classes_per_task: int | None = Field(
        None,
        ge=1,
        description="Classes in each task but the last, which takes the rest (196 Cars classes "
        "at 20 are 9 x 20 + 16); default: num_tasks near-equal groups.",
    )
    label_fraction: float | list[float] = Field(
        1.0, description="Share of each task's training images that keep their label."
    )

    @model_validator(mode="after")
    def _check(self) -> ScenarioConfig:
        fractions = (
            self.label_fraction if isinstance(self.label_fraction, list) else [self.label_fraction]
        )
        for fraction in fractions:
            if not 0.0 <= fraction <= 1.0:
                raise ValueError(f"label_fraction {fraction} must lie in [0, 1]")
        if isinstance(self.label_fraction, list) and len(self.label_fraction) != self.num_tasks:
            raise ValueError(
                f"label_fraction lists {len(self.label_fraction)} values for "
                f"{self.num_tasks} tasks; give one per task or a single number"
            )
        if self.class_order is not None and len(self.class_order) != self.num_tasks:
            raise ValueError(
                f"class_order lists {len(self.class_order)} tasks but num_tasks is {self.num_tasks}"
            )
        if self.class_order is not None and self.classes_per_task is not None:
            raise ValueError(
                "class_order already fixes the classes of each task; drop classes_per_task"
            )
        return self

    def label_fraction_of(self, task: int) -> float:
        """The label fraction of task ``task`` (0-based)."""
        if isinstance(self.label_fraction, list):
            return self.label_fraction[task]
        return self.label_fraction


def check_patch_grid(image_size: int, patch_size: int) -> int:
    """The side of the patch grid, ``image_size // patch_size``.

    Raises ``ConfigError`` unless both are positive and ``patch_size`` divides ``image_size``.
    """
    if patch_size < 1 or image_size < 1:
        raise ConfigError(
            f"ViT image size and patch size must be >= 1, got image size {image_size} and "
            f"patch size {patch_size}"
        )
    if image_size % patch_size:
        smaller = max(patch_size, image_size - image_size % patch_size)
        raise ConfigError(
            f"ViT image size {image_size} is not a multiple of the patch size {patch_size}; "
            f"resize the images to a multiple of {patch_size} (e.g. {smaller}) or choose a "
            f"patch size that divides {image_size}"
        )
    return image_size // patch_size


class ModelConfig(Section):
    """Backbone and classifier."""

    backbone: Literal["resnet18", "resnet50", "convnet", "vit_tiny", "vit_small", "vit_base"] = (
        "resnet18"
    )
    stem: Literal["cifar", "imagenet"] = "cifar"
    width: float = Field(1.0, gt=0.0)
    classifier_hidden_dim: int | None = Field(1000, ge=1)
    weights: Path | None = Field(
        None,
        description="Backbone weights to start from: a state dict (.pth, .pt, .bin, "
        ".safetensors; torchvision ResNet or timm ViT keys) or a kaizen-cl run directory.",
    )
    image_size: int | None = Field(
        None,
        ge=8,
        description="The backbone's input side: images are resized to it on the device "
        "(training views by the random crop, test images by resize and centre crop); none: "
        "the data's own size.",
    )
    patch_size: int = Field(16, ge=1, description="A Vision Transformer's patch side.")
    depth: int | None = Field(
        None, ge=1, description="A Vision Transformer's number of blocks; none: 12, as timm's."
    )
    heads: Literal["single", "per-task"] = Field(
        "single",
        description="The classifier: one head over all classes (classifier_hidden_dim wide), "
        "or one linear head per task, concatenated (SLCA's).",
    )

    @model_validator(mode="after")
    def _patches_tile_the_image(self) -> ModelConfig:
        if self.backbone.startswith("vit_") and self.image_size is not None:
            check_patch_grid(self.image_size, self.patch_size)
        if self.depth is not None and not self.backbone.startswith("vit_"):
            raise ValueError(
                f"depth sets a Vision Transformer's blocks, and {self.backbone} is not one; "
                "remove model.depth"
            )
        return self


class SSLSettings(Section):
    """Base of the SSL method records.

    Each method's record holds its own settings only, with the paper's values (Kaizen, split
    CIFAR-100) as defaults; ``method`` is the tag of the ``ssl:`` section's union.
    """

    method: str


class NoSSLSettings(SSLSettings):
    """No self-supervised term: the backbone learns from the classifier's loss alone (with
    ``strategy.end_to_end``), on one augmented view per image."""

    method: Literal["none"] = "none"


class ProjectorSettings(SSLSettings):
    """Base of the self-supervised methods: each has a projector F -> proj_output_dim."""

    proj_hidden_dim: int = Field(ge=1)
    proj_output_dim: int = Field(ge=1)


class MomentumSettings(ProjectorSettings):
    """Settings of a momentum encoder, raised from tau_base to tau_final over each task."""

    tau_base: float = Field(0.99, ge=0.0, le=1.0)
    tau_final: float = Field(1.0, ge=0.0, le=1.0)


class SimCLRSettings(ProjectorSettings):
    """SimCLR (Chen et al., ICML 2020)."""

    method: Literal["simclr"] = "simclr"
    proj_hidden_dim: int = Field(4096, ge=1)
    proj_output_dim: int = Field(256, ge=1)
    temperature: float = Field(0.1, gt=0.0)


class MoCoV2PlusSettings(MomentumSettings):
    """MoCoV2+ (Chen et al., arXiv 2003.04297, with a symmetric loss)."""

    method: Literal["mocov2plus"] = "mocov2plus"
    proj_hidden_dim: int = Field(2048, ge=1)
    proj_output_dim: int = Field(256, ge=1)
    temperature: float = Field(0.2, gt=0.0)
    queue_size: int = Field(65536, ge=1, description="Negative keys kept per view.")
    tau_final: float = Field(0.999, ge=0.0, le=1.0)


class BYOLSettings(MomentumSettings):
    """BYOL (Grill et al., NeurIPS 2020)."""

    method: Literal["byol"] = "byol"
    proj_hidden_dim: int = Field(4096, ge=1)
    proj_output_dim: int = Field(256, ge=1)
    pred_hidden_dim: int = Field(4096, ge=1)


class VICRegSettings(ProjectorSettings):
    """VICReg (Bardes et al., ICLR 2022) and the weights of its three terms."""

    method: Literal["vicreg"] = "vicreg"
    proj_hidden_dim: int = Field(2048, ge=1)
    proj_output_dim: int = Field(2048, ge=1)
    sim_weight: float = Field(25.0, ge=0.0, description="Invariance term.")
    var_weight: float = Field(25.0, ge=0.0, description="Variance term.")
    cov_weight: float = Field(1.0, ge=0.0, description="Covariance term.")


class SimSiamSettings(ProjectorSettings):
    """SimSiam (Chen & He, CVPR 2021): its predictor's bottleneck is pred_hidden_dim."""

    method: Literal["simsiam"] = "simsiam"
    proj_hidden_dim: int = Field(2048, ge=1)
    proj_output_dim: int = Field(2048, ge=1)
    pred_hidden_dim: int = Field(512, ge=1)


class BarlowSettings(ProjectorSettings):
    """Barlow Twins (Zbontar et al., ICML 2021)."""

    method: Literal["barlow"] = "barlow"
    proj_hidden_dim: int = Field(2048, ge=1)
    proj_output_dim: int = Field(2048, ge=1)
    off_diagonal_weight: float = Field(
        5.1e-3, ge=0.0, description="lambda, the weight of the redundancy-reduction term."
    )
    loss_scale: float = Field(1.0, gt=0.0, description="Factor of the whole loss.")


SSLConfig = Annotated[
    SimCLRSettings
    | MoCoV2PlusSettings
    | BYOLSettings
    | VICRegSettings
    | SimSiamSettings
    | BarlowSettings
    | NoSSLSettings,
    Field(discriminator="method"),
]
"""The ``ssl:`` section: the record of the method ``ssl.method`` names."""

SSL_SETTINGS: dict[str, type[SSLSettings]] = {
    record.model_fields["method"].default: record for record in get_args(get_args(SSLConfig)[0])
}
"""Each SSL method's settings record by ``ssl.method``."""

DEFAULT_SSL_METHOD = MoCoV2PlusSettings().method
"""The method of an ``ssl:`` section that does not name one."""


StrategyName = Literal[
    "finetune",
    "cassle",
    "kaizen",
    "kaizen-replay-kd",
    "joint",
    "scratch",
    "lump",
    "seqft",
    "sl",
    "slca",
    "slcapp",
]


class StrategyConfig(Section):
    """The continual strategy and the weights of its loss terms."""

    name: StrategyName = "kaizen"
    feature_distill_weight: float | None = Field(
        None, ge=0.0, description="lambda_fe; default 1 (VICReg 25)."
    )
    classifier_weight: float = Field(1.0, ge=0.0, description="w_cls.")
    classifier_distill_weight: float = Field(2.0, ge=0.0, description="lambda_c.")
    distill_temperature: float = Field(0.2, gt=0.0, description="Contrastive distillation.")
    classifier_distill_temperature: float = Field(
        1.0, gt=0.0, description="T of the soft labels; the term is scaled by T^2 (Hinton)."
    )
    classifier_distill_classes: Literal["all", "seen"] = Field(
        "all",
        description="Soft labels over all classes (the paper) or only over the classes the "
        "teacher was trained on (Learning without Forgetting's form).",
    )
    classifier_distill_rows: Literal["all", "replay"] = Field(
        "all", description="Classifier distillation on every row (the paper) or on replay rows."
    )
    distill_predictor_hidden_dim: int = Field(2048, ge=1)
    end_to_end: bool = Field(
        False, description="Let classifier terms train the backbone (default: stop-gradient)."
    )


class LumpConfig(Section):
    """LUMP's mixup with a reservoir buffer (Madaan et al., ICLR 2022); read by ``lump``."""

    buffer_size: int = Field(256, ge=1, description="Raw training images kept over the stream.")
    alpha: float = Field(0.4, gt=0.0, description="Mixup weight lambda ~ Beta(alpha, alpha).")


class SLCAConfig(Section):
    """The SLCA family (Zhang et al., ICCV 2023; SLCA++, arXiv 2408.08295): the training loss,
    SLCA++'s hybrid slow learner (LoRA) and its old-task feature scaling."""

    loss: Literal["ce", "sce"] | None = Field(
        None,
        description="Cross-entropy on the current task's logits, or the symmetric "
        "cross-entropy alpha CE + beta RCE; none: the strategy's own (sce for slcapp).",
    )
    sce_alpha: float = Field(1.0, ge=0.0, description="alpha of the symmetric cross-entropy.")
    sce_beta: float = Field(0.1, ge=0.0, description="beta of the symmetric cross-entropy.")
    lora_rank: int = Field(4, ge=1, description="Rank of the hybrid slow learner's adapters.")
    lora_scale: float = Field(0.8, gt=0.0, description="Factor of the adapters' product.")
    lora_first_task_lr: float = Field(
        0.005, gt=0.0, description="The adapters' learning rate at the first task."
    )
    lora_lr: float = Field(0.001, gt=0.0, description="The adapters' learning rate after it.")
    feature_scale: float = Field(
        0.02,
        ge=0.0,
        description="SLCA++'s mu: alignment shrinks task i's sampled features by "
        "1 / (1 + u (t - i)), u ~ U[mu - 0.01, mu + 0.01], and inference scales the input of "
        "task i's head by 1 + mu (t - i); 0: off.",
    )


class ClassifierConfig(Section):
    """Post-hoc classifier alignment from class statistics (SLCA, Zhang et al., ICCV 2023)."""

    align: bool = Field(
        False,
        description="After each task, align the classifier on features sampled from every seen "
        "class's stored mean and covariance; evaluate with it, restore it before the next task.",
    )
    align_epochs: int = Field(5, ge=1)
    align_lr: float = Field(0.01, gt=0.0)
    align_samples_per_class: int = Field(256, ge=1)
    align_temperature: float = Field(0.1, gt=0.0, description="Of the normalised logits.")
    align_weight_decay: float = Field(0.0, ge=0.0, description="Of the alignment's SGD.")
    align_statistics: Literal["stored", "replay"] = Field(
        "stored",
        description="Earlier classes' statistics as stored when their task ended (SLCA), or "
        "recomputed at every task's end from the strategy's replayed images with the current "
        "backbone, so that they follow the backbone's drift.",
    )


class FreezeConfig(Section):
    """Progressive task-correlated layer freezing (Yang et al., arXiv 2303.07477)."""

    enabled: bool = Field(False, description="Freeze correlated backbone blocks from task 1 on.")
    threshold: float = Field(
        0.8,
        ge=0.0,
        le=1.0,
        description="Freeze the blocks whose correlation ratio reaches it (docs/efficiency.md "
        "measures 0.8, 0.9 and 0.95).",
    )
    probe_images: int = Field(
        256, ge=2, description="Current and earlier images the ratios are measured on."
    )
    max_depth: int | None = Field(
        None, ge=0, description="Freeze at most this many blocks; none: all before the last stage."
    )


class ReplayConfig(Section):
    """Labelled replay kept from earlier tasks."""

    fraction_per_class: float | None = Field(0.01, gt=0.0, le=1.0)
    budget: int | None = Field(None, ge=1, description="Total size; overrides the fraction.")
    batch_size: int = Field(32, ge=1)


class OptimConfig(Section):
    """Optimiser and per-task learning-rate schedule (restarted at every task)."""

    name: Literal["lars", "sgd", "adamw"] = "lars"
    lr: float = Field(1.0, gt=0.0, description="Base lr, scaled by batch_size / 256.")
    classifier_lr: float = Field(0.1, gt=0.0)
    weight_decay: float = Field(1e-5, ge=0.0)
    classifier_weight_decay: float = Field(0.0, ge=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    lars_eta: float = Field(0.02, gt=0.0)
    lars_clip: bool = True
    warmup_epochs: float = Field(10, ge=0.0)
    warmup_start_lr: float = Field(0.003, ge=0.0)
    min_lr: float = Field(0.0, ge=0.0)
    schedule: Literal["cosine", "step"] = Field(
        "cosine",
        description="After the warm-up: a half cosine down to min_lr, or steps of lr_decay at "
        "the milestones.",
    )
    milestones: list[int] = Field(
        default_factory=list, description="Epochs of the task where the step schedule decays."
    )
    lr_decay: float = Field(0.1, gt=0.0, le=1.0, description="The step schedule's factor.")
    scale_lr_by_batch: bool = True
    clip_grad_norm: float | None = Field(
        None,
        gt=0.0,
        description="Rescale the gradients of all trainable parameters to at most this global "
        "L2 norm before each update; none: no clipping.",
    )


class AugmentConfig(Section):
    """Two-view augmentation for the self-supervised terms (per view where a pair is given)."""

    crop_scale: tuple[float, float] = (0.08, 1.0)
    brightness: float = Field(0.4, ge=0.0)
    contrast: float = Field(0.4, ge=0.0)
    saturation: float = Field(0.2, ge=0.0)
    hue: float = Field(0.1, ge=0.0, le=0.5)
    jitter_prob: float = Field(0.8, ge=0.0, le=1.0)
    grayscale_prob: float = Field(0.2, ge=0.0, le=1.0)
    solarize_prob: tuple[float, float] = (0.0, 0.2)
    blur_prob: tuple[float, float] = (0.0, 0.0)
    hflip_prob: float = Field(0.5, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _check(self) -> AugmentConfig:
        low, high = self.crop_scale
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"crop_scale {self.crop_scale} must satisfy 0 < low <= high <= 1")
        for name in ("solarize_prob", "blur_prob"):
            if not all(0.0 <= p <= 1.0 for p in getattr(self, name)):
                raise ValueError(f"{name} values must lie in [0, 1]")
        return self


class TrainConfig(Section):
    """The training loop."""

    epochs: int = Field(500, ge=1, description="Epochs per task.")
    batch_size: int = Field(256, ge=2)
    precision: Literal["32", "bf16-mixed", "16-mixed"] = "32"
    accelerator: Literal["auto", "cpu", "cuda"] = "auto"
    devices: int = Field(1, ge=1, description="Processes (GPUs, or CPU processes) per node.")
    num_nodes: int = Field(1, ge=1)
    strategy: Literal["auto", "ddp"] = Field(
        "auto", description="ddp: one process per device, gradients all-reduced (Fabric)."
    )
    sync_batchnorm: bool = Field(False, description="BatchNorm statistics over all processes.")
    channels_last: bool = Field(
        True, description="NHWC memory layout for convolutions (faster on GPUs and oneDNN CPUs)."
    )
    compile: bool = Field(False, description="torch.compile the backbone (GPU runs).")
    num_threads: int | None = Field(None, ge=1, description="CPU threads for torch.")
    logger: Literal["none", "csv", "tensorboard"] = Field(
        "none",
        description="Experiment log through Fabric's loggers in <run>/logs: the loss terms, "
        "learning rates and images/s every log_every steps, and each task's accuracies.",
    )
    save_models: bool = Field(
        True,
        description="Write each task's model as models/v<k>/ (weights, classes, preprocessing, "
        "metrics) for kaizen predict and export.",
    )
    log_every: int = Field(20, ge=1, description="Steps between loss read-outs.")
    progress: bool = True
    checkpoint_every_epochs: int = Field(
        10, ge=1, description="Epochs between checkpoints inside a task (and at every task end)."
    )
    keep_checkpoints: int = Field(3, ge=1, description="How many of the newest to keep.")

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class GateConfig(Section):
    """The release gate of an update (``kaizen update``): its model replaces the one in service
    only when it keeps the old classes."""

    max_old_drop: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Largest allowed drop in accuracy on the test images of the classes the "
        "model in service was trained on (0.05: 5 points).",
    )
    max_flip_rate: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="Largest allowed negative flip rate against the model in service: the share "
        "of those test images it got right and the update gets wrong.",
    )


ProbeName = Literal["knn", "linear", "knn-task"]


def _default_probes() -> list[ProbeName]:
    return ["knn", "linear"]


class EvalConfig(Section):
    """Evaluation after every task: the classifier, and probes on frozen features."""

    batch_size: int = Field(512, ge=1)
    probes: list[ProbeName] = Field(
        default_factory=_default_probes,
        description="Representation probes run after each task, beside the classifier; "
        "knn-task is LUMP's task-aware kNN (a bank of the queried task's own training images).",
    )
    knn_k: int = Field(20, ge=1)
    knn_temperature: float = Field(0.07, gt=0.0)
    linear_epochs: int = Field(100, ge=1)
    linear_lr: float = Field(0.1, gt=0.0)


class RunConfig(Section):
    """Everything a continual run needs."""

    name: str = Field(
        "run",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Letters, digits, '.', '_' and '-': it names the default run directory.",
    )
    seed: int = Field(0, ge=0)
    data: DataConfig = DataConfig()
    scenario: ScenarioConfig = ScenarioConfig()
    model: ModelConfig = ModelConfig()
    ssl: SSLConfig = MoCoV2PlusSettings()
    strategy: StrategyConfig = StrategyConfig()
    replay: ReplayConfig = ReplayConfig()
    lump: LumpConfig = LumpConfig()
    slca: SLCAConfig = SLCAConfig()
    freeze: FreezeConfig = FreezeConfig()
    classifier: ClassifierConfig = ClassifierConfig()
    optim: OptimConfig = OptimConfig()
    augment: AugmentConfig = AugmentConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    gate: GateConfig = GateConfig()

    @field_validator("ssl", mode="before")
    @classmethod
    def _default_ssl_method(cls, value: Any) -> Any:
        if isinstance(value, dict) and "method" not in value:
            return {**value, "method": DEFAULT_SSL_METHOD}
        return value


def _first_line(error: Exception) -> str:
    problem = getattr(error, "problem", None)
    mark = getattr(error, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return str(error).splitlines()[0]


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into its key path and a YAML-parsed value.

    >>> parse_override("train.epochs=3")
    (['train', 'epochs'], 3)
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} is not key=value: write e.g. train.epochs=10")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        raise ConfigError(
            f"override {text!r}: value is not valid YAML ({_first_line(error)})"
        ) from None
    return key.strip().split("."), value


def _section_models(annotation: Any) -> list[type[BaseModel]]:
    """The sections a field holds: its model, every model of a union (the SSL records), or none."""
    members = (
        get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    )
    return [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]


def _fields(models: Sequence[type[BaseModel]]) -> dict[str, FieldInfo]:
    """The fields of ``models`` together, by name: a union's keys are all its members' keys."""
    fields: dict[str, FieldInfo] = {}
    for model in models:
        for name, field in model.model_fields.items():
            fields.setdefault(name, field)
    return fields


def _known_keys(models: Sequence[type[BaseModel]] = (RunConfig,), prefix: str = "") -> list[str]:
    keys = []
    for name, field in _fields(models).items():
        keys.append(prefix + name)
        keys.extend(_known_keys(_section_models(field.annotation), f"{prefix}{name}."))
    return keys


def _unknown_key_error(dotted: str) -> ConfigError:
    close = difflib.get_close_matches(dotted, _known_keys(), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(
        f"unknown config key '{dotted}'{hint}; `kaizen run --help` and the presets show the keys"
    )


def _other_method_error(key: str, method: str) -> ConfigError | None:
    """The error of ssl key ``key`` given with ``ssl.method=method`` when another method has it."""
    owners = [name for name, record in SSL_SETTINGS.items() if key in record.model_fields]
    if not owners:
        return None
    choice = "that method" if len(owners) == 1 else "one of those methods"
    return ConfigError(
        f"config key 'ssl.{key}' does not apply to ssl.method={method} (it is a setting of "
        f"{', '.join(owners)}); remove it or choose {choice}"
    )


def set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    """Set ``tree[path[0]][path[1]]... = value``, creating sections, rejecting unknown keys.

    A key of any SSL method is accepted under ``ssl``; whether it applies to the chosen method
    is checked when the tree is validated, after every override.
    """
    models: list[type[BaseModel]] = [RunConfig]
    node = tree
    for depth, key in enumerate(path):
        field = _fields(models).get(key)
        if field is None:
            raise _unknown_key_error(".".join(path[: depth + 1]))
        if depth == len(path) - 1:
            node[key] = value
            return
        children = _section_models(field.annotation)
        if not children:
            raise _unknown_key_error(".".join(path[: depth + 2]))
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            child = node[key] = {}
        node, models = child, children


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """A new dict: ``base`` with ``update`` merged in, nested dicts merged key by key."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _location(loc: tuple[Any, ...]) -> str:
    """The dotted config key of a validation error location, without pydantic's union tags."""
    known = set(_known_keys())
    parts: list[str] = []
    for part in loc:
        candidate = ".".join([*parts, str(part)])
        if candidate in known or isinstance(part, int):
            parts.append(str(part))
    return ".".join(parts)


def _extra_key_error(loc: tuple[Any, ...]) -> ConfigError:
    """The error of a key the schema has no place for at ``loc``."""
    section, key = _location(loc[:-1]), str(loc[-1])
    if section == "ssl":
        # the location is ("ssl", <the method's tag>, key)
        error = _other_method_error(key, str(loc[1]))
        if error is not None:
            return error
    return _unknown_key_error(f"{section}.{key}" if section else key)


def validate_config(tree: dict[str, Any]) -> RunConfig:
    """Validate a config tree into a :class:`RunConfig`, or raise a one-line ConfigError."""
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as error:
        first = error.errors()[0]
        if first["type"] == "extra_forbidden":
            raise _extra_key_error(first["loc"]) from None
        where = _location(first["loc"])
        given = first.get("input")
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "union_tag_invalid":
            # the section's tag (ssl.method) names no member of the union
            ctx = first["ctx"]
            tag_key = ctx["discriminator"].strip("'")
            where = f"{where}.{tag_key}"
            given = ctx["tag"]
            message = f"Input should be one of {ctx['expected_tags']}"
        shown = "" if isinstance(given, dict) else f" = {given!r}"
        raise ConfigError(f"config value '{where}'{shown}: {message}") from None


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader."""
    try:
        content = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"config {path} is not valid YAML: {_first_line(error)}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"config {path} must be a YAML mapping of sections, e.g. 'train:'")
    return content


def _ssl_method(tree: dict[str, Any]) -> Any:
    """The tree's ``ssl.method`` (the default when unset), or None when ``ssl`` is no section."""
    section = tree.get("ssl", {})
    return section.get("method", DEFAULT_SSL_METHOD) if isinstance(section, dict) else None


def _switch_ssl_method(tree: dict[str, Any], before: Any, overridden: set[str]) -> None:
    """After overrides changed ``ssl.method`` from ``before``: drop the tree's settings of other
    methods that the new one lacks (a preset's queue size when a sweep switches MoCoV2+ to
    SimCLR). Keys set by the overrides themselves stay, and so are still rejected."""
    method = _ssl_method(tree)
    if method == before or method not in SSL_SETTINGS:
        return
    own = SSL_SETTINGS[method].model_fields
    ssl_keys = _fields(list(SSL_SETTINGS.values()))
    tree["ssl"] = {
        key: value
        for key, value in tree["ssl"].items()
        if key in own or key in overridden or key not in ssl_keys
    }


def build_config(tree: dict[str, Any], overrides: Sequence[str] = ()) -> RunConfig:
    """Apply ``key=value`` overrides to a config tree and validate it.

    An ``ssl.method`` override that changes the tree's method leaves behind the tree's settings
    of the old method that the new one does not have; every other key that does not apply to
    the chosen method is an error.
    """
    tree = copy.deepcopy(tree)
    method = _ssl_method(tree)
    overridden: set[str] = set()
    for text in overrides:
        path, value = parse_override(text)
        set_path(tree, path, value)
        if path[0] == "ssl":
            section = {path[1]: value} if len(path) > 1 else value
            overridden.update(section if isinstance(section, dict) else ())
    _switch_ssl_method(tree, method, overridden)
    return validate_config(tree)


def to_plain(config: RunConfig) -> dict[str, Any]:
    """A JSON-ready dict of the config (paths as strings)."""
    return config.model_dump(mode="json")


RUNTIME_KEYS = (
    "train.accelerator",
    "train.devices",
    "train.num_nodes",
    "train.strategy",
    "train.precision",
    "train.channels_last",
    "train.compile",
    "train.sync_batchnorm",
    "train.num_threads",
    "train.progress",
    "train.log_every",
    "train.logger",
    "gate.max_old_drop",
    "gate.max_flip_rate",
)
"""Settings of where and how a run executes; a resumed run may change them (another machine)."""


def without_runtime(plain: dict[str, Any]) -> dict[str, Any]:
    """``plain`` (from :func:`to_plain`) without the :data:`RUNTIME_KEYS`."""
    trimmed = copy.deepcopy(plain)
    for dotted in RUNTIME_KEYS:
        section, key = dotted.split(".")
        trimmed.get(section, {}).pop(key, None)
    return trimmed


def same_run(saved: dict[str, Any], config: RunConfig) -> bool:
    """Whether a checkpoint's config tree ``saved`` describes the run ``config`` describes.

    The saved tree is read through the current schema first, so a key added since (with a
    default) does not make it another run; the :data:`RUNTIME_KEYS` may differ.
    """
    try:
        current = validate_config(saved)
    except ConfigError:
        return False
    return without_runtime(to_plain(current)) == without_runtime(to_plain(config))


def runtime_overrides(config: RunConfig, overrides: Sequence[str]) -> RunConfig:
    """``config`` with ``overrides`` that may only name :data:`RUNTIME_KEYS`."""
    for text in overrides:
        key = ".".join(parse_override(text)[0])
        if key not in RUNTIME_KEYS:
            raise ConfigError(
                f"`kaizen resume` changes only where and how a run executes "
                f"({', '.join(RUNTIME_KEYS)}); '{key}' would change the run itself: start a new "
                "one with `kaizen run`"
            )
    return build_config(to_plain(config), overrides)

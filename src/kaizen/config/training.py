"""How a run trains and is evaluated: ``optim:``, ``augment:``, ``train:``, ``eval:`` and the
release gate of updates, ``gate:``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from kaizen.config.section import Section


class OptimConfig(Section):
    """Optimiser and per-task learning-rate schedule (restarted at every task)."""

    name: Literal["lars", "sgd", "adamw"] = "lars"
    lr: float = Field(1.0, gt=0.0, description="Base lr, scaled by batch_size / 256.")
    classifier_lr: float = Field(0.1, gt=0.0)
    weight_decay: float = Field(1e-5, ge=0.0)
    weight_decay_on: Literal["weights", "all"] = Field(
        "weights",
        description="Which feature-extractor parameters weight_decay applies to: weights, "
        "those of rank above 1 (no decay on norms and biases); all, every parameter, as "
        "SLCA's released code decays every group (the slca-* presets).",
    )
    classifier_weight_decay: float = Field(0.0, ge=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    lars_eta: float = Field(0.02, gt=0.0)
    lars_clip: bool = True
    lars_classifier: bool = Field(
        False,
        description="With name=lars, scale the classifier's weight updates by LARS too, as "
        "Kaizen's released code wraps every group (the paper presets); default: plain SGD for "
        "the classifier.",
    )
    warmup_epochs: float = Field(10, ge=0.0)
    warmup_start_lr: float = Field(0.003, ge=0.0)
    min_lr: float = Field(0.0, ge=0.0)
    schedule: Literal["cosine", "step", "constant"] = Field(
        "cosine",
        description="After the warm-up: a half cosine down to min_lr, steps of lr_decay at "
        "the milestones, or the base lr throughout (LUMP's released code builds a scheduler "
        "and never steps it).",
    )
    milestones: list[int] = Field(
        default_factory=list, description="Epochs of the task where the step schedule decays."
    )
    lr_decay: float = Field(0.1, gt=0.0, le=1.0, description="The step schedule's factor.")
    lr_update: Literal["step", "epoch"] = Field(
        "step",
        description="Set the lr at every step (a smooth warm-up and cosine), or once at the "
        "start of each epoch, as Lightning steps the schedulers of Kaizen's released code (the "
        "paper presets; the warm-up then reaches the base lr at epoch warmup_epochs - 1).",
    )
    lr_bounds: Literal["relative", "absolute"] = Field(
        "relative",
        description="relative: every group warms up from warmup_start_lr / lr times its own "
        "base lr and decays to min_lr / lr times it; absolute: every group starts at "
        "warmup_start_lr and decays to min_lr, whatever its base lr (Kaizen's released code).",
    )
    scale_lr_by_batch: bool = True
    clip_grad_norm: float | None = Field(
        None,
        gt=0.0,
        description="Rescale the gradients of all trainable parameters to at most this global "
        "L2 norm before each update; none: no clipping.",
    )


class AugmentConfig(Section):
    """Two-view augmentation for the self-supervised terms (per view where a pair is given),
    the training transform of a supervised learner, and the test-time resize."""

    crop: Literal["random-resized", "resize-then-crop"] = Field(
        "random-resized",
        description="random-resized: a random crop of crop_scale of the image's area and an "
        "aspect ratio in [3/4, 4/3], resized to the input size; resize-then-crop: every image "
        "resized to resize_to x resize_to, then a window of the input size at a uniformly drawn "
        "offset, never enlarged further (SLCA's released code on CUB-200 and Cars-196: "
        "Resize((300, 300)) then RandomCrop(224); random-resized on CIFAR-100 and ImageNet-R).",
    )
    resize_to: int | None = Field(
        None,
        ge=1,
        description="With crop=resize-then-crop (and only then), the side every training image "
        "is resized to before the random window is cut; at least the input size (SLCA's "
        "released code: 300).",
    )
    crop_scale: tuple[float, float] = Field(
        (0.08, 1.0), description="With crop=random-resized, the range of the crop's area share."
    )
    brightness: float = Field(0.4, ge=0.0)
    contrast: float = Field(0.4, ge=0.0)
    saturation: float = Field(0.2, ge=0.0)
    hue: float = Field(0.1, ge=0.0, le=0.5)
    jitter_prob: float = Field(0.8, ge=0.0, le=1.0)
    grayscale_prob: float = Field(0.2, ge=0.0, le=1.0)
    solarize_prob: tuple[float, float] = (0.0, 0.2)
    blur_prob: tuple[float, float] = (0.0, 0.0)
    hflip_prob: float = Field(0.5, ge=0.0, le=1.0)
    crop_interpolation: Literal["bilinear", "bicubic"] = Field(
        "bilinear",
        description="How the training crop resamples: crop=random-resized warps with kornia's "
        "filter of that name, crop=resize-then-crop resizes with Pillow's (antialiased, as "
        "torchvision's Resize on images). Kaizen's and SLCA's released code: bicubic.",
    )
    test_interpolation: Literal["bilinear", "bicubic"] = Field(
        "bilinear",
        description="How test images are resized to input_size / 0.875 before the centre crop "
        "(when the backbone has an input size): bilinear, torch's filter without "
        "antialiasing; bicubic, Pillow's antialiased bicubic, which SLCA's released "
        "Resize(256, interpolation=3) applies.",
    )

    @model_validator(mode="after")
    def _check(self) -> AugmentConfig:
        if self.crop == "resize-then-crop" and self.resize_to is None:
            raise ValueError(
                "crop=resize-then-crop needs augment.resize_to, the side images are resized "
                "to before the crop (SLCA: 300)"
            )
        if self.crop == "random-resized" and self.resize_to is not None:
            raise ValueError(
                "augment.resize_to applies to crop=resize-then-crop only; set "
                "augment.crop=resize-then-crop or augment.resize_to=null"
            )
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
    classes: Literal["all", "seen"] = Field(
        "all",
        description="The classes the classifier's argmax runs over when it is evaluated after "
        "task t: 'all' the stream's classes (Kaizen's released code, which evaluates all 100 "
        "classes from the first task on), 'seen' the classes of tasks 0..t (SLCA's released "
        "code, whose heads of later tasks do not exist yet).",
    )
    knn_k: int = Field(20, ge=1)
    knn_k_cap: Literal["none", "tasks-seen"] = Field(
        "none",
        description="tasks-seen: after task t the kNN uses min(knn_k, t + 1) neighbours, as "
        "LUMP's released main.py passes k=min(knn_k, number of tasks evaluated).",
    )
    knn_temperature: float = Field(0.07, gt=0.0)
    forgetting: Literal["max", "just-learned"] = Field(
        "max",
        description="Forgetting of task j: its best accuracy before the last task minus the "
        "final one (Chaudhry et al. 2018), or its accuracy right after learning it minus the "
        "final one (LUMP's released main.py).",
    )
    linear_epochs: int = Field(100, ge=1)
    linear_lr: float = Field(0.1, gt=0.0)

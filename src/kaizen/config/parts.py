"""Settings of the parts any strategy may compose with: labelled replay (``replay:``), the
classifier's corrections (``classifier:``) and layer freezing (``freeze:``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kaizen.config.section import Section

AlignSampling = Literal["once", "epoch"]
"""When the alignment draws its features: once before its first epoch, or anew every epoch."""
AlignSchedule = Literal["step", "epoch"]
"""When the alignment's cosine learning rate steps: after every batch, or after every epoch."""


class ClassifierConfig(Section):
    """The classifier's corrections at each task's end: alignment from class statistics (SLCA,
    Zhang et al., ICCV 2023), the class-balanced re-fit and weight aligning."""

    align: bool = Field(
        False,
        description="After each task, align the classifier on features sampled from every seen "
        "class's stored mean and covariance; evaluate with it, restore it before the next task.",
    )
    align_epochs: int = Field(5, ge=1)
    align_lr: float = Field(0.01, gt=0.0)
    align_samples_per_class: int = Field(256, ge=1)
    align_temperature: float = Field(0.1, gt=0.0, description="Of the normalised logits.")
    align_weight_decay: float = Field(
        0.0,
        ge=0.0,
        description="Of the alignment's SGD. SLCA's released code uses 5e-4, and SLCA++'s "
        "the benchmark's weight decay: 0 on Stanford Cars and ImageNet-R, 5e-4 on the others.",
    )
    align_sampling: AlignSampling = Field(
        "once",
        description="'once': align_samples_per_class features per class drawn before the first "
        "epoch and reshuffled every epoch; 'epoch': a new draw at every epoch, as SLCA's "
        "released code does.",
    )
    align_batch_size: int = Field(
        128,
        ge=1,
        description="Sampled features per alignment step (SLCA's released code: 256).",
    )
    align_schedule: AlignSchedule = Field(
        "step",
        description="The alignment's cosine decay of align_lr to 0: 'step', stepped after every "
        "batch over all the alignment's steps; 'epoch', stepped after every epoch over "
        "align_epochs (epoch e trains at align_lr (1 + cos(pi e / align_epochs)) / 2), as "
        "SLCA's released code does.",
    )
    align_from_task: int = Field(
        0,
        ge=0,
        description="The first task (0-based) after which the classifier is aligned; earlier "
        "tasks store their statistics and are evaluated with the trained classifier. 0: after "
        "every task; SLCA's released code: 1 (not after the first task).",
    )
    align_statistics: Literal["stored", "replay", "all-data"] = Field(
        "stored",
        description="Earlier classes' statistics as stored when their task ended (SLCA); "
        "'replay': recomputed at every task's end from the strategy's replayed images with the "
        "current backbone, so that they follow the backbone's drift; 'all-data': every seen "
        "class's statistics recomputed at every task's end from all its labelled training "
        "images with the current backbone, the upper bound SLCA's released code offers as an "
        "oracle, which needs every earlier task's data (an update of a run is refused).",
    )

    refit: bool = Field(
        False,
        description="At each task's end, re-fit the classifier, from its trained weights, on "
        "the current backbone's features of the labelled images at hand: the earlier classes' "
        "kept images (the strategy's replay buffer, or one of the replay section's size that "
        "the re-fit keeps itself) and the task's own, every class drawn equally often. The "
        "re-fitted classifier is evaluated and trained on by the next task.",
    )
    refit_epochs: int = Field(
        60, ge=1, description="60 measured above 20 on Fashion-MNIST (docs/classifier.md)."
    )
    refit_lr: float = Field(0.05, gt=0.0, description="Of the re-fit's SGD, decayed to 0.")
    refit_samples_per_class: int = Field(
        256, ge=1, description="Features of every class drawn per re-fit epoch."
    )
    refit_batch_size: int = Field(128, ge=1)
    refit_weight_decay: float = Field(0.0, ge=0.0)
    weight_align: bool = Field(
        False,
        description="Weight aligning (Zhao et al., CVPR 2020): at the end of each task that "
        "brings new classes after the first, scale the new classes' output weights to the "
        "mean norm of the earlier classes' (a classifier over all classes, not per-task heads).",
    )


class FreezeConfig(Section):
    """Progressive task-correlated layer freezing (Yang et al., arXiv 2303.07477)."""

    enabled: bool = Field(False, description="Freeze correlated backbone blocks from task 1 on.")
    measure: Literal["covariance", "subspace"] = Field(
        "covariance",
        description="The correlation ratio of a block at the start of a task: 'covariance', the "
        "alignment of the channel covariances of its pooled output on current-task and buffered "
        "earlier images; 'subspace', the share of its inputs on current-task images that lies in "
        "the subspace of the earlier tasks' inputs (TRGP, Lin et al., ICLR 2022), which needs no "
        "earlier images.",
    )
    selection: Literal["prefix", "ranking"] = Field(
        "prefix",
        description="Which blocks to freeze: 'prefix', the longest run of blocks from the input "
        "whose ratio reaches the threshold; 'ranking', the blocks with the highest ratios that "
        "reach it, anywhere before the last stage. Frozen blocks stay frozen.",
    )
    threshold: float = Field(
        0.8,
        ge=0.0,
        le=1.0,
        description="Freeze the blocks whose correlation ratio reaches it (docs/efficiency.md "
        "measures 0.8, 0.9 and 0.95 with the covariance measure).",
    )
    budget: int | None = Field(
        None,
        ge=0,
        description="Freeze at most this many blocks in all; none: every block before the last "
        "stage.",
    )
    probe_images: int = Field(
        256,
        ge=2,
        description="Current-task images the ratios are measured on (and as many earlier images "
        "for the covariance measure; the subspace measure takes as many at each task's end).",
    )
    max_depth: int | None = Field(
        None,
        ge=0,
        description="Freeze only blocks among the first this many; none: all before the last "
        "stage.",
    )
    energy: float = Field(
        0.97,
        gt=0.0,
        lt=1.0,
        description="Subspace measure: the share of task 0's input energy its block bases hold "
        "(TRGP's 0.97).",
    )
    energy_step: float = Field(
        0.003,
        ge=0.0,
        description="Subspace measure: added to the energy share for each later task, which is "
        "capped at 0.999 (TRGP's 0.003).",
    )
    subspace_columns: int = Field(
        2048,
        ge=1,
        description="Subspace measure: at most this many input columns per block (patches of "
        "its first convolution, or tokens), drawn from the probe images, so that memory and the "
        "SVD stay bounded.",
    )


class ReplayConfig(Section):
    """Labelled replay kept from earlier tasks."""

    fraction_per_class: float | None = Field(0.01, gt=0.0, le=1.0)
    budget: int | None = Field(None, ge=1, description="Total size; overrides the fraction.")
    batch_size: int = Field(32, ge=1)
    selection: Literal["random", "first"] = Field(
        "random",
        description="Which labelled images of a class are kept: a seeded random choice (with "
        "fraction_per_class, round(fraction x n), at least one), or the first by index "
        "(floor(fraction x n)), as Kaizen's released code keeps them.",
    )
    sampling: Literal["with-replacement", "passes"] = Field(
        "with-replacement",
        description="How each step draws its replayed images: with replacement, or in shuffled "
        "passes over the buffer without replacement (min(batch_size, buffer) per step, a new "
        "pass when fewer remain), as the replay loader of Kaizen's released code serves them.",
    )

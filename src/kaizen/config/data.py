"""Where the images come from (``data:``) and how they are cut into tasks (``scenario:``).

``data.name`` is checked against :data:`DATASET_NAMES`, which the data formats fill when they
register (``kaizen/data/formats/``): adding a format adds its names without touching this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from kaizen.config.section import Section


class SyntheticConfig(Section):
    """Shape of the procedural dataset used for tests and smoke runs."""

    num_classes: int = Field(10, ge=2)
    train_per_class: int = Field(64, ge=1)
    test_per_class: int = Field(16, ge=1)
    image_size: int = Field(16, ge=8)
    channels: Literal[1, 3] = 3


DATASET_NAMES: set[str] = set()
"""Every ``data.name`` some data format reads, filled as the formats register."""


def register_dataset_name(name: str) -> None:
    """Make ``name`` a valid ``data.name``."""
    DATASET_NAMES.add(name)


def check_dataset_name(name: str) -> str:
    """``name`` if a data format reads it; ValueError listing the known names otherwise."""
    if name not in DATASET_NAMES:
        known = ", ".join(repr(known) for known in sorted(DATASET_NAMES))
        raise ValueError(f"no data format reads it; choose one of {known}")
    return name


class DataConfig(Section):
    """Where the images come from and how much of them to use."""

    name: str = Field(
        "fashion-mnist", description="The dataset, one of the names the data formats register."
    )
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
    normalize_mean: tuple[float, ...] | None = Field(
        None,
        description="Per-channel mean (in [0, 1] units) the images are normalised with; none: "
        "measured on the training images. Give normalize_std with it.",
    )
    normalize_std: tuple[float, ...] | None = Field(
        None, description="Per-channel standard deviation to go with normalize_mean."
    )

    @model_validator(mode="after")
    def _normalisation_pairs(self) -> DataConfig:
        mean, std = self.normalize_mean, self.normalize_std
        if (mean is None) != (std is None):
            raise ValueError(
                "data.normalize_mean and data.normalize_std go together: set both or neither"
            )
        if mean is not None and std is not None:
            if len(mean) != len(std):
                raise ValueError(
                    f"data.normalize_mean has {len(mean)} channels and data.normalize_std "
                    f"{len(std)}; give one value per image channel in both"
                )
            if min(std) <= 0:
                raise ValueError(f"data.normalize_std must be positive, got {list(std)}")
        return self

    @field_validator("name")
    @classmethod
    def _known_name(cls, name: str) -> str:
        return check_dataset_name(name)


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

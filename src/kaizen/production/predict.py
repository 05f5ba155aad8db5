"""Prediction with a saved model: ``kaizen predict`` and ``kaizen.load_model``."""

from __future__ import annotations

import csv
import glob
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.progress import Progress
from torch import Tensor

from kaizen.data.formats.common import IMAGE_SUFFIXES, decode_to_shape
from kaizen.data.imageset import ImageShape
from kaizen.errors import ConfigError, DataError
from kaizen.production.model import InferenceModel, ModelSpec, load_model_folder
from kaizen.production.versions import resolve_model_folder

_GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class Prediction:
    """The ``k`` most probable classes of one image, most probable first."""

    source: str
    classes: tuple[str, ...]
    probabilities: tuple[float, ...]


def image_paths(sources: Sequence[str | Path]) -> list[Path]:
    """Image files of ``sources``: files, folders (searched recursively) and glob patterns."""
    paths: list[Path] = []
    for source in sources:
        text = str(source)
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found = [path]
        elif _GLOB_CHARACTERS & set(text):
            found = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        else:
            found = []
        if not found:
            raise DataError(f"no images at {text}: give image files, folders or glob patterns")
        paths += found
    return paths


class LoadedModel:
    """A saved model with what it needs to read images: ``predict`` and ``features``.

    Attributes:
        module: the model (uint8 (N, C, H, W) -> logits (N, K)), on ``device``.
        spec: its architecture, preprocessing, classes and metrics.
        folder: where it was read from.
    """

    def __init__(self, module: InferenceModel, spec: ModelSpec, folder: Path) -> None:
        self.module = module
        self.spec = spec
        self.folder = folder
        self.device = torch.device("cpu")

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.class_names

    def to(self, device: str | torch.device) -> LoadedModel:
        self.device = torch.device(device)
        self.module.to(self.device)
        return self

    def read_images(self, paths: Sequence[Path]) -> tuple[Tensor, list[Path], list[str]]:
        """uint8 (N, C, H, W) of the decodable ``paths``, resized to the model's input, those
        paths, and a one-line note for each file that could not be read."""
        channels, height, width = self.spec.input_shape
        shape = ImageShape(channels, height, width, resize=height)
        images, kept, skipped = [], [], []
        for path in paths:
            try:
                images.append(decode_to_shape(path, shape))
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
                skipped.append(f"cannot read {path} ({str(error).splitlines()[0]}); skipped")
                continue
            kept.append(path)
        pixels = np.stack(images) if images else np.zeros((0, channels, height, width), np.uint8)
        return torch.from_numpy(pixels), kept, skipped

    @torch.no_grad()
    def logits(
        self, images: Tensor, batch_size: int = 256, progress: Progress | None = None
    ) -> Tensor:
        """uint8 (N, C, H, W) -> logits (N, K), in batches."""
        task = progress.add_task("predicting", total=len(images)) if progress else None
        outputs = []
        for batch in images.split(batch_size):
            outputs.append(self.module(batch.to(self.device)).float().cpu())
            if progress is not None and task is not None:
                progress.advance(task, len(batch))
        return torch.cat(outputs) if outputs else torch.zeros(0, len(self.class_names))

    @torch.no_grad()
    def features(self, images: Tensor | Sequence[str | Path], batch_size: int = 256) -> Tensor:
        """Backbone features (N, F) of uint8 images (N, C, H, W) or of image files."""
        pixels = images if isinstance(images, Tensor) else self.read_images(image_paths(images))[0]
        return torch.cat(
            [
                self.module.features(b.to(self.device)).float().cpu()
                for b in pixels.split(batch_size)
            ]
        )

    def predict(
        self,
        images: Tensor | Sequence[str | Path],
        top_k: int = 1,
        batch_size: int = 256,
        progress: Progress | None = None,
    ) -> list[Prediction]:
        """The ``top_k`` classes and probabilities of each image (uint8 (N, C, H, W) at the
        model's input size, or image files and folders; unreadable files are left out)."""
        if not 1 <= top_k <= len(self.class_names):
            raise ConfigError(f"--top-k must lie in [1, {len(self.class_names)}], got {top_k}")
        if isinstance(images, Tensor):
            pixels, sources = images, [f"image {i}" for i in range(len(images))]
        else:
            pixels, paths, _ = self.read_images(image_paths(images))
            sources = [str(path) for path in paths]
        probabilities = torch.softmax(self.logits(pixels, batch_size, progress), dim=1)
        values, indices = probabilities.topk(top_k, dim=1)
        names = self.class_names
        return [
            Prediction(source, tuple(names[i] for i in row), tuple(round(v, 6) for v in probs))
            for source, row, probs in zip(sources, indices.tolist(), values.tolist(), strict=True)
        ]


def load_model(path: str | Path) -> LoadedModel:
    """The model of a run directory (its version in service) or of a ``models/v<k>`` folder."""
    folder = resolve_model_folder(Path(path))
    module, spec = load_model_folder(folder)
    return LoadedModel(module, spec, folder)


def write_predictions(predictions: Sequence[Prediction], out: Path) -> None:
    """``out`` as CSV (path, class_1, probability_1, ...) or JSON lines, by its suffix."""
    if out.suffix == ".jsonl":
        lines = [
            json.dumps(
                {
                    "path": p.source,
                    "top": [
                        {"class": c, "probability": v}
                        for c, v in zip(p.classes, p.probabilities, strict=True)
                    ],
                }
            )
            for p in predictions
        ]
        out.write_text("".join(line + "\n" for line in lines))
        return
    if out.suffix != ".csv":
        raise ConfigError(f"--out {out}: write predictions to a .csv or a .jsonl file")
    k = len(predictions[0].classes) if predictions else 1
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        header = ["path"]
        for rank in range(1, k + 1):
            header += [f"class_{rank}", f"probability_{rank}"]
        writer.writerow(header)
        for p in predictions:
            row = [p.source]
            for name, value in zip(p.classes, p.probabilities, strict=True):
                row += [name, f"{value:.6f}"]
            writer.writerow(row)

"""A Vision Transformer trains end to end: at the data's size, resized on the device, frozen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import kaizen
from kaizen.config import AugmentConfig
from kaizen.data.augment import Normalize, augment_for
from kaizen.errors import ConfigError


def _vit(tiny, **model) -> dict:
    tree = tiny("kaizen")
    tree["model"] = {"backbone": "vit_tiny", "patch_size": 4, "classifier_hidden_dim": 32, **model}
    return tree


@pytest.mark.parametrize("model", [{}, {"image_size": 24}], ids=["data-size", "resized"])
def test_a_vit_run_completes_at_the_data_size_and_resized(tiny, tmp_path: Path, model) -> None:
    kaizen.run(_vit(tiny, **model), tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["complete"] and len(results["accuracy_matrix"]["values"]) == 3


@pytest.mark.parametrize("measure", ["covariance", "subspace"])
def test_freezing_a_vit_freezes_its_embedding_and_leading_blocks(
    measure: str, tiny, tmp_path: Path
) -> None:
    tree = _vit(tiny)
    tree["freeze"] = {"enabled": True, "threshold": 0.0, "measure": measure}
    kaizen.run(tree, tmp_path)
    freeze = json.loads((tmp_path / "results.json").read_text())["tasks"][1]["parts"]["freeze"]
    assert freeze["measure"] == measure and all(0.0 <= r <= 1.0 + 1e-9 for r in freeze["ratios"])
    assert freeze["blocks"][:2] == ["embed", "blocks.0"] and len(freeze["blocks"]) == 13
    assert freeze["frozen_depth"] == 12  # all but the last transformer block


def test_views_and_test_images_come_out_at_the_input_size() -> None:
    images = torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8)
    augment = augment_for(AugmentConfig(), images, input_size=24)
    assert augment(images).shape == (10, 3, 24, 24)
    assert augment.normalize(images).shape == (5, 3, 24, 24)
    assert augment_for(AugmentConfig(), images).normalize(images).shape == (5, 3, 16, 16)


def test_test_images_are_resized_then_centre_cropped() -> None:
    normalize = Normalize(torch.zeros(1), torch.ones(1), size=7)  # resize to 8, crop 7
    ramp = torch.arange(4, dtype=torch.uint8).repeat(4, 1)[None, None] * 80  # columns 0..240
    out = normalize(ramp)
    resized = torch.nn.functional.interpolate(ramp.float() / 255, size=(8, 8), mode="bilinear")
    torch.testing.assert_close(out, resized[..., :7, :7])


def test_image_size_not_divisible_by_the_patch_size_is_one_line() -> None:
    from kaizen.config import build_config

    with pytest.raises(ConfigError, match="not a multiple of the patch size 8"):
        build_config({"model": {"backbone": "vit_tiny", "image_size": 30, "patch_size": 8}})

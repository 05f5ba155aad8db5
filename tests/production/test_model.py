"""A saved model's spec (model.json) rebuilds the preprocessing it was trained with."""

from __future__ import annotations

import json

import pytest
import torch

from kaizen.config import build_config
from kaizen.data.augment import Normalize
from kaizen.models.heads import Classifier
from kaizen.production.model import ModelSpec, architecture_of, build_model


def _spec(normalize: Normalize) -> dict:
    """model.json's ``architecture`` of a small ConvNet behind ``normalize``, through JSON."""
    model = build_config({"model": {"backbone": "convnet", "width": 0.25}}, []).model
    classifier = Classifier(8, 3, model.classifier_hidden_dim)
    return json.loads(
        json.dumps(architecture_of(model.model_dump(), (3, 12, 12), classifier, normalize))
    )


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_the_test_resize_filter_is_saved_and_rebuilt(interpolation):
    normalize = Normalize(torch.zeros(3), torch.ones(3), size=16, interpolation=interpolation)
    rebuilt = build_model(ModelSpec(_spec(normalize), ("a", "b", "c"), {})).normalize
    assert (rebuilt.size, rebuilt.interpolation) == (16, interpolation)


def test_a_spec_saved_before_the_filter_was_recorded_resizes_bilinearly():
    architecture = _spec(Normalize(torch.zeros(3), torch.ones(3), size=16))
    del architecture["normalize"]["interpolation"]
    rebuilt = build_model(ModelSpec(architecture, ("a", "b", "c"), {})).normalize
    assert rebuilt.interpolation == "bilinear"

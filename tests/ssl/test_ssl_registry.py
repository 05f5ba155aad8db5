"""Registry: method names, the paper's settings, construction and errors."""

from __future__ import annotations

import dataclasses

import pytest
from torch import nn

from kaizen.errors import ConfigError
from kaizen.ssl.base import SSLSettings
from kaizen.ssl.byol import BYOL
from kaizen.ssl.distill import DISTILL_LOSSES
from kaizen.ssl.mocov2plus import MoCoV2Plus
from kaizen.ssl.registry import SSL_METHODS, build_ssl_method, default_settings
from kaizen.ssl.simclr import SimCLR
from kaizen.ssl.vicreg import VICReg


def test_method_names() -> None:
    assert {
        "simclr": SimCLR,
        "mocov2plus": MoCoV2Plus,
        "byol": BYOL,
        "vicreg": VICReg,
    } == SSL_METHODS


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("simclr", {"proj_hidden_dim": 4096, "proj_output_dim": 256, "temperature": 0.1}),
        (
            "mocov2plus",
            {
                "proj_hidden_dim": 2048,
                "proj_output_dim": 256,
                "temperature": 0.2,
                "queue_size": 65536,
                "tau_base": 0.99,
                "tau_final": 0.999,
            },
        ),
        (
            "byol",
            {
                "proj_hidden_dim": 4096,
                "proj_output_dim": 256,
                "pred_hidden_dim": 4096,
                "tau_base": 0.99,
                "tau_final": 1.0,
            },
        ),
        (
            "vicreg",
            {
                "proj_hidden_dim": 2048,
                "proj_output_dim": 2048,
                "vicreg_sim_weight": 25.0,
                "vicreg_var_weight": 25.0,
                "vicreg_cov_weight": 1.0,
            },
        ),
    ],
)
def test_paper_settings(name: str, expected: dict[str, float]) -> None:
    settings = default_settings(name)
    assert {key: getattr(settings, key) for key in expected} == expected


@pytest.mark.parametrize(
    ("name", "distill_kind", "uses_momentum", "weight"),
    [
        ("simclr", "contrastive", False, 1.0),
        ("mocov2plus", "contrastive", True, 1.0),
        ("byol", "predictive", True, 1.0),
        ("vicreg", "predictive_mse", False, 25.0),
    ],
)
def test_method_class_attributes(
    name: str, distill_kind: str, uses_momentum: bool, weight: float
) -> None:
    cls = SSL_METHODS[name]
    assert cls.name == name
    assert cls.distill_kind == distill_kind and distill_kind in DISTILL_LOSSES
    assert cls.uses_momentum is uses_momentum
    assert cls.default_distill_weight == weight


def small(name: str) -> SSLSettings:
    return dataclasses.replace(
        default_settings(name), proj_hidden_dim=32, proj_output_dim=8, pred_hidden_dim=16
    )


def linear_layers(module: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, nn.Linear)]


def has_batch_norm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.BatchNorm1d) for m in module.modules())


@pytest.mark.parametrize(
    ("name", "layers", "batch_norm"),
    [
        ("simclr", [(10, 32), (32, 8)], False),
        ("mocov2plus", [(10, 32), (32, 8)], False),
        ("byol", [(10, 32), (32, 8)], True),
        ("vicreg", [(10, 32), (32, 32), (32, 8)], True),
    ],
)
def test_build_projector_layout(name: str, layers: list[tuple[int, int]], batch_norm: bool) -> None:
    method = build_ssl_method(name, 10, small(name))
    assert linear_layers(method.projector) == layers
    assert has_batch_norm(method.projector) is batch_norm
    assert method.output_dim == 8


def test_byol_predictor_layout() -> None:
    method = build_ssl_method("byol", 10, small("byol"))
    assert isinstance(method, BYOL)
    assert linear_layers(method.predictor) == [(8, 16), (16, 8)]
    assert has_batch_norm(method.predictor)


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        default_settings("simclr").temperature = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "call", [default_settings, lambda n: build_ssl_method(n, 8, small("byol"))]
)
def test_unknown_method(call) -> None:
    with pytest.raises(ConfigError) as info:
        call("swav")
    message = str(info.value)
    assert "swav" in message and "byol, mocov2plus, simclr, vicreg" in message
    assert "\n" not in message


def test_method_specific_requirements() -> None:
    with pytest.raises(ConfigError, match="queue_size"):
        build_ssl_method("mocov2plus", 8, dataclasses.replace(small("mocov2plus"), queue_size=0))
    with pytest.raises(ConfigError, match="pred_hidden_dim"):
        build_ssl_method("byol", 8, dataclasses.replace(small("byol"), pred_hidden_dim=0))

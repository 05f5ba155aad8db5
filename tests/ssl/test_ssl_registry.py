"""Registry and settings records: method names, the paper's settings, construction."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from torch import nn

from kaizen.config import SSL_SETTINGS, SSLSettings
from kaizen.ssl.barlow import BarlowTwins
from kaizen.ssl.byol import BYOL
from kaizen.ssl.distill import DISTILL_LOSSES
from kaizen.ssl.mocov2plus import MoCoV2Plus
from kaizen.ssl.none import NoSSL
from kaizen.ssl.registry import SSL_METHODS, build_ssl_method
from kaizen.ssl.simclr import SimCLR
from kaizen.ssl.simsiam import SimSiam
from kaizen.ssl.vicreg import VICReg


def test_method_names() -> None:
    assert {
        "simclr": SimCLR,
        "mocov2plus": MoCoV2Plus,
        "byol": BYOL,
        "vicreg": VICReg,
        "simsiam": SimSiam,
        "barlow": BarlowTwins,
        "none": NoSSL,
    } == SSL_METHODS


def test_every_method_has_its_settings_record() -> None:
    assert sorted(SSL_SETTINGS) == sorted(SSL_METHODS)
    for name, record in SSL_SETTINGS.items():
        assert record().method == name


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
                "momentum_buffers": "copy",
                "distill_input": "projection",
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
                "momentum_buffers": "copy",
            },
        ),
        (
            "vicreg",
            {
                "proj_hidden_dim": 2048,
                "proj_output_dim": 2048,
                "sim_weight": 25.0,
                "var_weight": 25.0,
                "cov_weight": 1.0,
                "variance_branches": "mean",
            },
        ),
        (
            "simsiam",
            {
                "proj_hidden_dim": 2048,
                "proj_output_dim": 2048,
                "proj_hidden_layers": 2,
                "proj_output_norm": "batchnorm",
                "pred_hidden_dim": 512,
            },
        ),
        (
            "barlow",
            {
                "proj_hidden_dim": 2048,
                "proj_output_dim": 2048,
                "proj_hidden_layers": 2,
                "proj_output_norm": "none",
                "off_diagonal_weight": 5.1e-3,
                "loss_scale": 1.0,
                "distill_off_diagonal_weight": 5.1e-3,
                "distill_loss_scale": 1.0,
                "std_estimator": "biased-eps",
            },
        ),
    ],
)
def test_paper_settings_are_the_records_defaults_and_its_only_fields(
    name: str, expected: dict[str, float | int | str]
) -> None:
    assert SSL_SETTINGS[name]().model_dump() == {"method": name, **expected}


@pytest.mark.parametrize(
    ("name", "distill_kind", "uses_momentum", "weight"),
    [
        ("simclr", "contrastive", False, 1.0),
        ("mocov2plus", "contrastive", True, 1.0),
        ("byol", "predictive", True, 1.0),
        ("vicreg", "predictive_mse", False, 25.0),
        ("simsiam", "predictive", False, 1.0),
        ("barlow", "decorrelative", False, 1.0),
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
    values = {"proj_hidden_dim": 32, "proj_output_dim": 8, "pred_hidden_dim": 16}
    record = SSL_SETTINGS[name]
    return record(**{key: v for key, v in values.items() if key in record.model_fields})


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
        ("simsiam", [(10, 32), (32, 32), (32, 8)], True),
        ("barlow", [(10, 32), (32, 32), (32, 8)], True),
    ],
)
def test_build_projector_layout(name: str, layers: list[tuple[int, int]], batch_norm: bool) -> None:
    method = build_ssl_method(small(name), 10)
    assert linear_layers(method.projector) == layers
    assert has_batch_norm(method.projector) is batch_norm
    assert method.output_dim == 8


@pytest.mark.parametrize("name", ["byol", "simsiam"])
def test_predictor_layout(name: str) -> None:
    method = build_ssl_method(small(name), 10)
    assert isinstance(method, BYOL | SimSiam)
    assert linear_layers(method.predictor) == [(8, 16), (16, 8)]
    assert has_batch_norm(method.predictor)


def test_simsiam_projector_ends_with_an_affine_free_batch_norm() -> None:
    projector = build_ssl_method(small("simsiam"), 10).projector
    kinds = [type(m) for m in projector]
    assert kinds == [
        *(nn.Linear, nn.BatchNorm1d, nn.ReLU) * 2,
        nn.Linear,
        nn.BatchNorm1d,
    ]
    assert not projector[-1].affine


def test_barlow_projector_has_no_norm_after_its_last_linear() -> None:
    projector = build_ssl_method(small("barlow"), 10).projector
    assert isinstance(projector[-1], nn.Linear)
    assert projector[-1].bias is not None


def test_settings_are_validated_on_assignment() -> None:
    record = SSL_SETTINGS["simclr"]()
    with pytest.raises(ValidationError):
        record.temperature = -1.0


@pytest.mark.parametrize(
    ("name", "key"), [("mocov2plus", "queue_size"), ("byol", "pred_hidden_dim")]
)
def test_method_specific_requirements(name: str, key: str) -> None:
    with pytest.raises(ValidationError, match=key):
        SSL_SETTINGS[name](**{key: 0})


@pytest.mark.parametrize("name", ["simsiam", "barlow"])
def test_lumps_projector_has_one_hidden_layer_and_an_affine_last_batchnorm(name: str) -> None:
    settings = small(name).model_copy(
        update={"proj_hidden_layers": 1, "proj_output_norm": "affine-batchnorm"}
    )
    projector = build_ssl_method(settings, 10).projector
    linears = [layer for layer in projector if isinstance(layer, nn.Linear)]
    assert len(linears) == 2
    assert isinstance(projector[-1], nn.BatchNorm1d) and projector[-1].affine

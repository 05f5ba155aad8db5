"""The SSL methods by name, with the hyper-parameters of the Kaizen paper (split CIFAR-100)."""

from __future__ import annotations

from dataclasses import replace

from kaizen.errors import ConfigError
from kaizen.ssl.base import SSLMethod, SSLSettings
from kaizen.ssl.byol import BYOL
from kaizen.ssl.mocov2plus import MoCoV2Plus
from kaizen.ssl.simclr import SimCLR
from kaizen.ssl.vicreg import VICReg

SSL_METHODS: dict[str, type[SSLMethod]] = {
    cls.name: cls for cls in (SimCLR, MoCoV2Plus, BYOL, VICReg)
}

# Values of the fields a method does not use: no predictor, no queue.
_UNUSED = SSLSettings(
    proj_hidden_dim=2048,
    proj_output_dim=256,
    pred_hidden_dim=0,
    temperature=0.2,
    queue_size=0,
    tau_base=0.99,
    tau_final=1.0,
    vicreg_sim_weight=25.0,
    vicreg_var_weight=25.0,
    vicreg_cov_weight=1.0,
)

_PAPER_SETTINGS: dict[str, SSLSettings] = {
    "simclr": replace(_UNUSED, proj_hidden_dim=4096, proj_output_dim=256, temperature=0.1),
    "mocov2plus": replace(
        _UNUSED,
        proj_hidden_dim=2048,
        proj_output_dim=256,
        temperature=0.2,
        queue_size=65536,
        tau_base=0.99,
        tau_final=0.999,
    ),
    "byol": replace(
        _UNUSED,
        proj_hidden_dim=4096,
        proj_output_dim=256,
        pred_hidden_dim=4096,
        tau_base=0.99,
        tau_final=1.0,
    ),
    "vicreg": replace(
        _UNUSED,
        proj_hidden_dim=2048,
        proj_output_dim=2048,
        vicreg_sim_weight=25.0,
        vicreg_var_weight=25.0,
        vicreg_cov_weight=1.0,
    ),
}


def _check_method(method: str) -> None:
    if method not in SSL_METHODS:
        raise ConfigError(f"unknown SSL method '{method}'; valid: {', '.join(sorted(SSL_METHODS))}")


def default_settings(method: str) -> SSLSettings:
    """The paper's settings of ``method`` ("simclr", "mocov2plus", "byol" or "vicreg")."""
    _check_method(method)
    return _PAPER_SETTINGS[method]


def build_ssl_method(method: str, feature_dim: int, settings: SSLSettings) -> SSLMethod:
    """A new ``method`` on backbone features of size ``feature_dim``.

    Momentum methods still need ``attach_backbone(backbone)`` before training.
    """
    _check_method(method)
    return SSL_METHODS[method](feature_dim, settings)

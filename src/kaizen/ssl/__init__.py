"""Self-supervised methods (SimCLR, MoCoV2+, BYOL, VICReg) and their distillation losses."""

from kaizen.ssl.base import SSLMethod, SSLSettings, momentum_tau
from kaizen.ssl.distill import DISTILL_LOSSES, distill_loss, distill_predictor
from kaizen.ssl.registry import SSL_METHODS, build_ssl_method, default_settings

__all__ = [
    "DISTILL_LOSSES",
    "SSL_METHODS",
    "SSLMethod",
    "SSLSettings",
    "build_ssl_method",
    "default_settings",
    "distill_loss",
    "distill_predictor",
    "momentum_tau",
]

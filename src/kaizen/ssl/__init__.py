"""Self-supervised methods (SimCLR, MoCoV2+, BYOL, VICReg, SimSiam, Barlow Twins) and their
distillation losses."""

from kaizen.ssl.base import SSLMethod, momentum_tau
from kaizen.ssl.distill import DISTILL_LOSSES, distill_loss, distill_predictor
from kaizen.ssl.registry import SSL_METHODS, build_ssl_method

__all__ = [
    "DISTILL_LOSSES",
    "SSL_METHODS",
    "SSLMethod",
    "build_ssl_method",
    "distill_loss",
    "distill_predictor",
    "momentum_tau",
]

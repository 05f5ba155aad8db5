"""The SSL methods by name, each built from its own settings record (``kaizen.config``)."""

from __future__ import annotations

from kaizen.config import SSLSettings
from kaizen.ssl.barlow import BarlowTwins
from kaizen.ssl.base import SSLMethod
from kaizen.ssl.byol import BYOL
from kaizen.ssl.mocov2plus import MoCoV2Plus
from kaizen.ssl.none import NoSSL
from kaizen.ssl.simclr import SimCLR
from kaizen.ssl.simsiam import SimSiam
from kaizen.ssl.vicreg import VICReg

SSL_METHODS: dict[str, type[SSLMethod]] = {
    cls.name: cls for cls in (SimCLR, MoCoV2Plus, BYOL, VICReg, SimSiam, BarlowTwins, NoSSL)
}


def build_ssl_method(settings: SSLSettings, feature_dim: int) -> SSLMethod:
    """A new SSL method of ``settings.method`` on backbone features of size ``feature_dim``.

    Momentum methods still need ``attach_backbone(backbone)`` before training.
    """
    return SSL_METHODS[settings.method](feature_dim, settings)


def views_of(settings: SSLSettings) -> int:
    """How many augmented views of each training image the method of ``settings`` trains on."""
    return SSL_METHODS[settings.method].views

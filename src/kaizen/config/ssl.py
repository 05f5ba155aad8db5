"""The ``ssl:`` section: one settings record per SSL method, tagged by ``ssl.method``."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field

from kaizen.config.section import Section


class SSLSettings(Section):
    """Base of the SSL method records.

    Each method's record holds its own settings only, with the paper's values (Kaizen, split
    CIFAR-100) as defaults; ``method`` is the tag of the ``ssl:`` section's union.
    """

    method: str


class NoSSLSettings(SSLSettings):
    """No self-supervised term: the backbone learns from the classifier's loss alone (with
    ``strategy.end_to_end``), on one augmented view per image."""

    method: Literal["none"] = "none"


class ProjectorSettings(SSLSettings):
    """Base of the self-supervised methods: each has a projector F -> proj_output_dim."""

    proj_hidden_dim: int = Field(ge=1)
    proj_output_dim: int = Field(ge=1)


class MomentumSettings(ProjectorSettings):
    """Settings of a momentum encoder, raised from tau_base to tau_final over each task."""

    tau_base: float = Field(0.99, ge=0.0, le=1.0)
    tau_final: float = Field(1.0, ge=0.0, le=1.0)
    momentum_buffers: Literal["copy", "own"] = Field(
        "copy",
        description="At each momentum update, copy the online encoder's BatchNorm running "
        "statistics into the momentum encoder, or let it keep its own, moved by its own "
        "forward passes (Kaizen's released code averages the parameters only).",
    )


class SimCLRSettings(ProjectorSettings):
    """SimCLR (Chen et al., ICML 2020)."""

    method: Literal["simclr"] = "simclr"
    proj_hidden_dim: int = Field(4096, ge=1)
    proj_output_dim: int = Field(256, ge=1)
    temperature: float = Field(0.1, gt=0.0)


class MoCoV2PlusSettings(MomentumSettings):
    """MoCoV2+ (Chen et al., arXiv 2003.04297, with a symmetric loss)."""

    method: Literal["mocov2plus"] = "mocov2plus"
    proj_hidden_dim: int = Field(2048, ge=1)
    proj_output_dim: int = Field(256, ge=1)
    temperature: float = Field(0.2, gt=0.0)
    queue_size: int = Field(65536, ge=1, description="Negative keys kept per view.")
    distill_input: Literal["projection", "normalized"] = Field(
        "projection",
        description="What the feature-distillation predictor takes: the projection, or the "
        "L2-normalised query the MoCo loss uses (Kaizen's released code).",
    )
    tau_final: float = Field(0.999, ge=0.0, le=1.0)


class BYOLSettings(MomentumSettings):
    """BYOL (Grill et al., NeurIPS 2020)."""

    method: Literal["byol"] = "byol"
    proj_hidden_dim: int = Field(4096, ge=1)
    proj_output_dim: int = Field(256, ge=1)
    pred_hidden_dim: int = Field(4096, ge=1)


class VICRegSettings(ProjectorSettings):
    """VICReg (Bardes et al., ICLR 2022) and the weights of its three terms."""

    method: Literal["vicreg"] = "vicreg"
    proj_hidden_dim: int = Field(2048, ge=1)
    proj_output_dim: int = Field(2048, ge=1)
    sim_weight: float = Field(25.0, ge=0.0, description="Invariance term.")
    var_weight: float = Field(25.0, ge=0.0, description="Variance term.")
    cov_weight: float = Field(1.0, ge=0.0, description="Covariance term.")
    variance_branches: Literal["mean", "sum"] = Field(
        "mean",
        description="Combine the two branches' variance terms by their mean (VICReg's authors) "
        "or their sum (Kaizen's released code).",
    )


ProjectorOutputNorm = Literal["none", "batchnorm", "affine-batchnorm"]
"""What follows a projector's last Linear: nothing, a BatchNorm without affine parameters, or
an affine BatchNorm."""


class ShapedProjectorSettings(ProjectorSettings):
    """A projector whose depth and last normalisation are settings (SimSiam, Barlow Twins):
    LUMP's released code builds both two layers deep, ending in an affine BatchNorm."""

    proj_hidden_layers: int = Field(
        2, ge=1, description="Hidden (Linear -> BatchNorm -> ReLU) layers before the last Linear."
    )
    proj_output_norm: ProjectorOutputNorm = "none"


class SimSiamSettings(ShapedProjectorSettings):
    """SimSiam (Chen & He, CVPR 2021): its predictor's bottleneck is pred_hidden_dim."""

    method: Literal["simsiam"] = "simsiam"
    proj_hidden_dim: int = Field(2048, ge=1)
    proj_output_dim: int = Field(2048, ge=1)
    proj_output_norm: ProjectorOutputNorm = "batchnorm"
    pred_hidden_dim: int = Field(512, ge=1)


class BarlowSettings(ShapedProjectorSettings):
    """Barlow Twins (Zbontar et al., ICML 2021)."""

    method: Literal["barlow"] = "barlow"
    proj_hidden_dim: int = Field(2048, ge=1)
    proj_output_dim: int = Field(2048, ge=1)
    off_diagonal_weight: float = Field(
        5.1e-3, ge=0.0, description="lambda, the weight of the redundancy-reduction term."
    )
    loss_scale: float = Field(1.0, gt=0.0, description="Factor of the whole loss.")
    distill_off_diagonal_weight: float = Field(
        5.1e-3,
        ge=0.0,
        description="lambda of the decorrelative feature distillation (Kaizen's released code: "
        "5e-3).",
    )
    distill_loss_scale: float = Field(
        1.0,
        gt=0.0,
        description="Factor of the decorrelative feature distillation (Kaizen's released "
        "code: 0.1).",
    )
    std_estimator: Literal["biased-eps", "unbiased"] = Field(
        "biased-eps",
        description="How each embedding dimension is standardised over the batch: by the biased "
        "standard deviation with 1e-5 added to the variance (as BatchNorm), or by the unbiased "
        "one without an epsilon (LUMP's released code).",
    )


SSLConfig = Annotated[
    SimCLRSettings
    | MoCoV2PlusSettings
    | BYOLSettings
    | VICRegSettings
    | SimSiamSettings
    | BarlowSettings
    | NoSSLSettings,
    Field(discriminator="method"),
]
"""The ``ssl:`` section: the record of the method ``ssl.method`` names."""

SSL_SETTINGS: dict[str, type[SSLSettings]] = {
    record.model_fields["method"].default: record for record in get_args(get_args(SSLConfig)[0])
}
"""Each SSL method's settings record by ``ssl.method``."""

DEFAULT_SSL_METHOD = MoCoV2PlusSettings().method
"""The method of an ``ssl:`` section that does not name one."""

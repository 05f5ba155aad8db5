"""The whole configuration of a run, :class:`RunConfig`: one record per section."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SerializeAsAny, field_validator, model_validator

from kaizen.config.data import DataConfig, ScenarioConfig
from kaizen.config.model import ModelConfig
from kaizen.config.parts import ClassifierConfig, FreezeConfig, ReplayConfig
from kaizen.config.section import Section
from kaizen.config.ssl import DEFAULT_SSL_METHOD, MoCoV2PlusSettings, SSLConfig
from kaizen.config.strategy import DEFAULT_STRATEGY, StrategySettings, strategy_record
from kaizen.config.training import AugmentConfig, EvalConfig, GateConfig, OptimConfig, TrainConfig


class RunConfig(Section):
    """Everything a continual run needs."""

    name: str = Field(
        "run",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Letters, digits, '.', '_' and '-': it names the default run directory.",
    )
    seed: int = Field(0, ge=0)
    data: DataConfig = DataConfig()
    scenario: ScenarioConfig = ScenarioConfig()
    model: ModelConfig = ModelConfig()
    ssl: SSLConfig = MoCoV2PlusSettings()
    strategy: SerializeAsAny[StrategySettings] = Field(
        default_factory=lambda: strategy_record(DEFAULT_STRATEGY)()
    )
    replay: ReplayConfig = ReplayConfig()
    freeze: FreezeConfig = FreezeConfig()
    classifier: ClassifierConfig = ClassifierConfig()
    optim: OptimConfig = OptimConfig()
    augment: AugmentConfig = AugmentConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    gate: GateConfig = GateConfig()

    @field_validator("ssl", mode="before")
    @classmethod
    def _default_ssl_method(cls, value: Any) -> Any:
        if isinstance(value, dict) and "method" not in value:
            return {**value, "method": DEFAULT_SSL_METHOD}
        return value

    @field_validator("strategy", mode="before")
    @classmethod
    def _strategy_record(cls, value: Any) -> Any:
        if isinstance(value, dict):
            name = value.get("name", DEFAULT_STRATEGY)
            return strategy_record(name).model_validate({**value, "name": name})
        return value

    @model_validator(mode="after")
    def _batchnorm_views_and_sync(self) -> RunConfig:
        if self.model.batchnorm_views == "per-view" and self.train.sync_batchnorm:
            raise ValueError(
                "model.batchnorm_views=per-view and train.sync_batchnorm=true cannot be combined "
                "(synchronised BatchNorm normalises the stacked views together); drop one"
            )
        return self

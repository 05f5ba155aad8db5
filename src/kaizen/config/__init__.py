"""Typed run configuration: validated sections, YAML presets and dotted ``key=value`` overrides.

A run is fully described by one :class:`RunConfig`. Presets are YAML files shipped in
``kaizen/presets``; a user YAML or a preset name plus overrides gives the same object, so the CLI
and the Python API take one path. One module per group of sections; ``overrides`` turns text
into a config and every problem into a one-line :class:`~kaizen.errors.ConfigError`. A
strategy's own settings record lives with its method and registers itself
(:mod:`kaizen.config.strategy`).
"""

from kaizen.config.data import DataConfig, ScenarioConfig, SyntheticConfig
from kaizen.config.model import ModelConfig, check_patch_grid
from kaizen.config.overrides import (
    build_config,
    deep_merge,
    keep_chosen_strategy_keys,
    load_yaml,
    parse_override,
    to_plain,
    validate_config,
)
from kaizen.config.parts import (
    AlignSampling,
    AlignSchedule,
    ClassifierConfig,
    FreezeConfig,
    ReplayConfig,
)
from kaizen.config.run import RunConfig
from kaizen.config.saved import (
    RUNTIME_KEYS,
    UPDATE_KEYS,
    runtime_overrides,
    same_run,
    update_overrides,
    upgrade_layout,
)
from kaizen.config.section import Section
from kaizen.config.ssl import (
    DEFAULT_SSL_METHOD,
    SSL_SETTINGS,
    BarlowSettings,
    BYOLSettings,
    MoCoV2PlusSettings,
    MomentumSettings,
    NoSSLSettings,
    ProjectorSettings,
    ShapedProjectorSettings,
    SimCLRSettings,
    SimSiamSettings,
    SSLConfig,
    SSLSettings,
    VICRegSettings,
)
from kaizen.config.strategy import (
    DEFAULT_STRATEGY,
    STRATEGY_SETTINGS,
    StrategySettings,
    register_strategy_settings,
)
from kaizen.config.training import (
    AugmentConfig,
    EvalConfig,
    GateConfig,
    OptimConfig,
    ProbeName,
    TrainConfig,
)

__all__ = [
    "DEFAULT_SSL_METHOD",
    "DEFAULT_STRATEGY",
    "RUNTIME_KEYS",
    "SSL_SETTINGS",
    "STRATEGY_SETTINGS",
    "UPDATE_KEYS",
    "AlignSampling",
    "AlignSchedule",
    "AugmentConfig",
    "BYOLSettings",
    "BarlowSettings",
    "ClassifierConfig",
    "DataConfig",
    "EvalConfig",
    "FreezeConfig",
    "GateConfig",
    "MoCoV2PlusSettings",
    "ModelConfig",
    "MomentumSettings",
    "NoSSLSettings",
    "OptimConfig",
    "ProbeName",
    "ProjectorSettings",
    "ReplayConfig",
    "RunConfig",
    "SSLConfig",
    "SSLSettings",
    "ScenarioConfig",
    "Section",
    "ShapedProjectorSettings",
    "SimCLRSettings",
    "SimSiamSettings",
    "StrategySettings",
    "SyntheticConfig",
    "TrainConfig",
    "VICRegSettings",
    "build_config",
    "check_patch_grid",
    "deep_merge",
    "keep_chosen_strategy_keys",
    "load_yaml",
    "parse_override",
    "register_strategy_settings",
    "runtime_overrides",
    "same_run",
    "to_plain",
    "update_overrides",
    "upgrade_layout",
    "validate_config",
]

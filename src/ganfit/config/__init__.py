"""The project's configuration: the structured-config schema (dataclasses registered with Hydra's ConfigStore), the
packaged ``conf/`` folder, and composition for every entry point.

Importing this package registers the schema, so a misspelt or unknown key in a preset or on the command line fails at
composition with its name, and a value of the wrong type (``processes=abc``, ``overwrite=maybe``) fails likewise.
"""

from ganfit.config.compose import CONF_DIR, CONF_ENV, ConfigUsageError, compose_config, conf_dir, parse_bool
from ganfit.config.schema import (
    AblationConfig,
    FitJobConfig,
    FittingConfig,
    LearningRates,
    LossWeights,
    ShardingConfig,
    StageConfig,
    register_schema,
)

register_schema()

__all__ = [
    "AblationConfig",
    "CONF_DIR",
    "CONF_ENV",
    "ConfigUsageError",
    "FitJobConfig",
    "FittingConfig",
    "LearningRates",
    "LossWeights",
    "ShardingConfig",
    "StageConfig",
    "compose_config",
    "conf_dir",
    "parse_bool",
    "register_schema",
]

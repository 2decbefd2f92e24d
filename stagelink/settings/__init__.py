"""Configuration: the YAML model, the loader and its errors."""

from stagelink.settings.errors import ConfigError, ConfigProblem
from stagelink.settings.loader import default_config_path, load_config, parse_config
from stagelink.settings.models import AppConfig

__all__ = [
    "AppConfig",
    "ConfigError",
    "ConfigProblem",
    "default_config_path",
    "load_config",
    "parse_config",
]

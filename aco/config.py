"""Re-export of :mod:`aco_langchain.config` under the seed's import path."""

from aco_langchain.config import ACOConfig, load_config
from aco_langchain.errors import ConfigError

__all__ = ["ACOConfig", "ConfigError", "load_config"]

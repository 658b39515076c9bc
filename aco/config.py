"""Re-export of :mod:`aco_langchain.config` under the seed's import path."""

from aco_langchain.config import ACOConfig, ConfigError, load_config

__all__ = ["ACOConfig", "ConfigError", "load_config"]

"""Tests' shorthand for "this config, with these settings changed" (each in its one home).

Example:
    ```python
    configured(cfg, routing={"max_retries": 1, "retry_base_delay_s": 0.0})
    configured(cascade={"enabled": True})           # the defaults, cascade on
    ```
"""

from __future__ import annotations

from typing import Any

from aco_langchain.config import ACOConfig, config_from_dict


def configured(
    config: ACOConfig | dict[str, Any] | None = None, **blocks: dict[str, Any]
) -> ACOConfig:
    """``config`` (default: the defaults) with each block's given fields set, validated."""
    if isinstance(config, dict):
        config = config_from_dict(config)
    cfg = (config or ACOConfig()).model_copy()
    for name, fields in blocks.items():
        block = getattr(cfg, name).model_copy()
        for field, value in fields.items():
            setattr(block, field, value)
        setattr(cfg, name, block)
    return cfg


#: Retries without waiting: the tests' fault paths run in no time.
NO_WAIT = {"retry_base_delay_s": 0.0}

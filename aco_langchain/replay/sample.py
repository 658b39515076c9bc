"""The replay sample shipped in the package: 300 RouterBench prompts (MIT) with five real
models' recorded answers, its config (``examples/replay-config.yaml``) and router bundle.

Usage::

    from aco_langchain.replay.sample import sample_config
    cfg = sample_config()        # five replay tiers, the sample's bundle, absolute paths
"""

from __future__ import annotations

from pathlib import Path

from aco_langchain.config import ACOConfig, load_config
from aco_langchain.errors import ConfigError

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "replay"
SAMPLE_CSV = SAMPLE_DIR / "routerbench_sample.csv"
SAMPLE_CONFIG = SAMPLE_DIR / "replay-config.yaml"
SAMPLE_BUNDLE = SAMPLE_DIR / "router_bundle"


def sample_config() -> ACOConfig:
    """The shipped replay config with its recording and bundle paths made absolute.

    Raises:
        ConfigError: the package was installed without its replay sample.

    Example:
        ```python
        sample_config().tier(5).model    # 'gpt-4-1106-preview'
        ```
    """
    if not SAMPLE_CONFIG.is_file():
        raise ConfigError(
            f"the replay sample is missing from the package ({SAMPLE_DIR}): reinstall "
            "aco-langchain, or pass --config and --data"
        )
    cfg = load_config(SAMPLE_CONFIG)
    return cfg.model_copy(update={"router_model_path": str(SAMPLE_BUNDLE)})


def with_recording(config: ACOConfig, paths: list[str]) -> ACOConfig:
    """``config`` with every replay tier answering from ``paths`` (``aco replay --data``)."""
    models = {
        key: spec.model_copy(update={"recording": list(paths)})
        if spec.provider == "replay"
        else spec
        for key, spec in config.models.items()
    }
    return config.model_copy(update={"models": models})

"""Write a calibrated run policy as the agent's own config fields (the live policy).

``aco replay --runs ... --calibrate --write-config F`` ends here: the ladder becomes
``agent.escalation_ladder``, the caps ``agent.step_caps``, and the verification bar
``agent.require_verified: true`` (a run is handed back only on the verifier's positive
verdict, else the next rung runs). The file is a config.yaml fragment: merge its ``agent:``
block into your config, or load it as it is (every other field keeps its default).

Example:
    ```python
    from aco_langchain.replay.runs import RunPolicy, VerifierSpec
    from aco_langchain.replay.runs_config import agent_settings_for, write_agent_config

    policy = RunPolicy(("Qwen3-Max", "gpt-5.4"), (20, None))
    write_agent_config("aco_agent.yaml", policy, VerifierSpec(0.8, 0.1))
    load_config("aco_agent.yaml").agent.escalation_ladder   # ['Qwen3-Max', 'gpt-5.4']
    ```
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from aco_langchain.config import AgentSettings
from aco_langchain.errors import ConfigError
from aco_langchain.replay.runs import RunPolicy, VerifierSpec


def agent_settings_for(policy: RunPolicy, base: AgentSettings | None = None) -> AgentSettings:
    """The agent settings that run ``policy`` live (other fields from ``base``).

    Args:
        policy: The calibrated ladder and caps.
        base: Settings to start from (defaults when None).

    Returns:
        ``AgentSettings`` with ``escalation_ladder``, ``step_caps`` and ``require_verified``.

    Example:
        ```python
        agent_settings_for(RunPolicy(("a", "b"), (12, None))).step_caps   # {'a': 12}
        ```
    """
    caps = {m: c for m, c in zip(policy.ladder, policy.step_caps, strict=True) if c is not None}
    data = (base or AgentSettings()).model_dump()
    data.update(
        escalation_ladder=list(policy.ladder),
        step_caps=caps,
        # More than one rung: the verifier's verdict decides who answers, so it is required.
        require_verified=len(policy.ladder) > 1,
    )
    return AgentSettings.model_validate(data)


def write_agent_config(
    path: str | os.PathLike[str], policy: RunPolicy, verifier: VerifierSpec
) -> Path:
    """Write ``policy`` as a config.yaml fragment (atomically).

    Args:
        path: The YAML file to write.
        policy: The calibrated policy.
        verifier: The verifier quality it was calibrated for (written as a comment).

    Returns:
        The path written.

    Raises:
        ConfigError: The file cannot be written.

    Example:
        ```python
        write_agent_config("aco_agent.yaml", policy, VerifierSpec(1.0, 0.0))
        ```
    """
    import yaml

    settings = agent_settings_for(policy)
    block: dict[str, Any] = {
        "agent": {
            "escalation_ladder": settings.escalation_ladder,
            "step_caps": settings.step_caps,
            "require_verified": settings.require_verified,
        }
    }
    text = (
        "# Written by `aco replay --runs ... --calibrate --write-config`: the calibrated\n"
        f"# run policy, for a verifier of quality {verifier.label()}.\n"
        + yaml.safe_dump(block, sort_keys=False)
    )
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent or Path("."), suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except OSError as err:
        raise ConfigError(
            f"--write-config {path}: cannot write ({err.strerror}); check the directory"
        ) from err
    return target

"""What a real start opens, opened once and closed: ``aco config validate`` runs these so
that "ok" means ``aco serve`` / ``ACORouterChatModel`` will start with this config.

Field checks (types, ranges, finite numbers, URL schemes, TTL vs deadline) are the config
model's own (:mod:`aco_langchain.config`); here are the checks that need I/O: the ledger
(``$ACO_LEDGER_URL``, else ``ledger.url``, else the default file) and the response cache
(``cache.url``) are opened and closed.

Example:
    ```python
    from aco_langchain.cli.preflight import startup_problems

    startup_problems(load_config("config.yaml"))   # [] when everything opens
    ```
"""

from __future__ import annotations

import logging

from aco_langchain.config import ACOConfig
from aco_langchain.errors import ACOError

logger = logging.getLogger(__name__)


def startup_problems(config: ACOConfig) -> list[str]:
    """Open the ledger and the cache a start would open; one line per failure.

    Args:
        config: the loaded config.

    Returns:
        Problems, each naming the setting and the fix (masked URLs, no secrets); empty
        when both open.

    Example:
        ```python
        startup_problems(config_from_dict({"cache": {"url": "sqlite:////etc/passwd/c.db"}}))
        # ['cache.url sqlite:////etc/passwd/c.db: cannot open the cache file (...)...']
        ```
    """
    from aco_langchain.spend.cache import cache_from_url
    from aco_langchain.spend.ledger import open_ledger

    problems: list[str] = []
    try:
        open_ledger(None, config, shared=False).close()
    except ACOError as err:
        problems.append(str(err))
    except OSError as err:  # a backend that did not wrap its own I/O error
        problems.append(f"ledger: cannot be opened ({err}): fix ledger.url / ACO_LEDGER_URL")
    if config.cache.url:
        try:
            cache_from_url(config.cache.url, ttl_s=config.cache.ttl_s).close()
        except ACOError as err:
            problems.append(str(err))
    return problems


__all__ = ["startup_problems"]

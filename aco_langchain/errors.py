"""Every error aco-langchain raises, under one base: :class:`ACOError`.

Each message is written for the user: it names what is wrong and the fix. Errors that wrap
another keep it as ``__cause__`` (raised ``from``), so nothing about the real failure is lost.

Example:
    ```python
    from aco_langchain import ACORouterChatModel
    from aco_langchain.errors import ACOError, BudgetExceededError

    try:
        ACORouterChatModel().invoke("Summarize the incident report")
    except BudgetExceededError as exc:
        print("budget spent:", exc)
    except ACOError as exc:
        print("aco-langchain could not answer:", exc)
    ```
"""

from __future__ import annotations

from collections.abc import Mapping


class ACOError(Exception):
    """Base class of every error aco-langchain raises; catch it to handle all of ours."""


class ConfigError(ACOError, ValueError):
    """A config problem, worded for the user: names the field and the fix."""


class RoutingError(ACOError, RuntimeError):
    """No tier can serve the request under the given constraints."""


class BudgetExceededError(RoutingError):
    """The run has spent its budget and the policy is ``on_budget_exceeded: raise``."""


class TierUnavailableError(RoutingError):
    """The tier a call needs cannot be called (strict routing, a forced tier, a risk floor)."""


class AllTiersFailedError(ACOError, RuntimeError):
    """Every tier tried for a request failed.

    Attributes:
        failures: each tier's last error, as a short masked line (``{tier: "..."}``).
        exceptions: each tier's last exception object (``{tier: exc}``); the error is raised
            ``from`` the last of them.
    """

    def __init__(
        self,
        failures: Mapping[int, str],
        exceptions: Mapping[int, BaseException] | None = None,
    ) -> None:
        self.failures = dict(failures)
        self.exceptions = dict(exceptions or {})
        lines = "; ".join(f"tier {n}: {why}" for n, why in self.failures.items())
        super().__init__(f"all tiers failed: {lines}")


class LocalModelError(ACOError, RuntimeError):
    """A local-tier problem, worded for the user: says what is wrong and what to run."""


class BundleError(ACOError, ValueError):
    """A router bundle that cannot be trusted or read: missing, tampered, or of another version."""


class DataError(ACOError, ValueError):
    """A data file that cannot be read as outcomes; the message names the file and the fix."""


class TrainError(ACOError, ValueError):
    """Training input that cannot give a router (too few prompts, missing extra...)."""


class PlotError(ACOError, RuntimeError):
    """A plot that cannot be drawn or written (matplotlib missing, unwritable path)."""


__all__ = [
    "ACOError",
    "AllTiersFailedError",
    "BudgetExceededError",
    "BundleError",
    "ConfigError",
    "DataError",
    "LocalModelError",
    "PlotError",
    "RoutingError",
    "TierUnavailableError",
    "TrainError",
]

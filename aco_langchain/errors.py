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
    """Base class of every error aco-langchain raises; catch it to handle all of ours.

    Example:
        ```python
        try:
            llm.invoke("Summarize the incident report")
        except ACOError as exc:   # any error of ours
            print("aco-langchain could not answer:", exc)
        ```
    """


class ConfigError(ACOError, ValueError):
    """A config problem, worded for the user: names the field and the fix.

    Example:
        ```python
        ACOConfig.model_validate({"routing": {"safety_threshold": 2}})
        # ConfigError: routing.safety_threshold must be <= 1 ...
        ```
    """


class RoutingError(ACOError, RuntimeError):
    """No tier can serve the request under the given constraints.

    Example:
        ```python
        llm.invoke("hi", max_cost_usd=0.0)
        # RoutingError: max_cost_usd=0.0 is below the cheapest tier's estimate ...
        ```
    """


class InvalidRequestError(ACOError, ValueError):
    """A call that cannot be routed as given: an empty prompt or message list, an unknown
    per-call option, or an option of the wrong type. The message names what and the fix.

    Example:
        ```python
        llm.invoke("")                     # InvalidRequestError: the prompt is empty ...
        llm.invoke("hi", force_teir=5)     # InvalidRequestError: unknown option 'force_teir'
        ```
    """


class ContextTooLongError(RoutingError):
    """The prompt plus the output cap fits no tier's ``max_context``.

    Attributes:
        needed_tokens: the prompt's token estimate plus the output tokens asked for.
        largest_context: the largest ``max_context`` of the tiers that could take the call.

    Example:
        ```python
        try:
            llm.invoke("x" * 200_000)
        except ContextTooLongError as exc:
            print(exc.needed_tokens, exc.largest_context)
        ```
    """

    def __init__(self, message: str, needed_tokens: int, largest_context: int) -> None:
        self.needed_tokens = needed_tokens
        self.largest_context = largest_context
        super().__init__(message)


class BudgetExceededError(RoutingError):
    """A call does not fit its budget and the policy is ``on_budget_exceeded: raise``.

    Attributes:
        scope: the budget that refused (``run:<key>``, ``user:<id>@2026-12``, ...), or None.
        limit_usd: that budget's limit in USD, when it is a money budget.
        spent_usd: what the scope had spent (settled) when the call was refused.
        held_usd: what calls in flight held against it.

    Example:
        ```python
        try:
            llm.invoke("Plan the migration", aco_run_id="job-7")
        except BudgetExceededError as exc:
            print(exc.scope, exc.limit_usd, exc.spent_usd, exc.held_usd)
        ```
    """

    def __init__(
        self,
        message: str,
        *,
        scope: str | None = None,
        limit_usd: float | None = None,
        spent_usd: float | None = None,
        held_usd: float | None = None,
    ) -> None:
        super().__init__(message)
        self.scope = scope
        self.limit_usd = limit_usd
        self.spent_usd = spent_usd
        self.held_usd = held_usd


class TierUnavailableError(RoutingError):
    """The tier a call needs cannot be called (strict routing, a forced tier, a risk floor).

    Raised instead of answering below a forced tier or a risk floor unless
    ``routing.allow_degrade`` is true.

    Example:
        ```python
        ACORouterChatModel(config=ACOConfig(router="rules")).invoke("hi", force_tier=4)
        # TierUnavailableError: tier 4 ... no OPENAI_API_KEY ...
        ```
    """


class AllTiersFailedError(ACOError, RuntimeError):
    """Every tier tried for a request failed.

    Attributes:
        failures: each tier's last error, as a short masked line (``{tier: "..."}``).
        exceptions: each tier's last exception object (``{tier: exc}``); the error is raised
            ``from`` the last of them.

    Example:
        ```python
        try:
            llm.invoke("hi")
        except AllTiersFailedError as exc:
            print(exc.failures)             # {3: "APIStatusError 500: ...", 4: "..."}
            print(type(exc.__cause__))      # the last tier's exception
        ```
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


class DeadlineExceededError(AllTiersFailedError, TimeoutError):
    """A call's deadline was spent before any tier answered.

    One deadline covers the whole call (every attempt, retry, fallback and cascade step):
    the smallest of ``routing.max_latency_per_call_s``, the model's ``timeout`` and the
    call's ``max_latency_ms``. It is an :class:`AllTiersFailedError`, so code that handles
    "no tier answered" handles this too.

    Attributes:
        deadline_s: the deadline in seconds.
        source: which setting set it (e.g. ``"max_latency_ms=500"``).
        elapsed_s: seconds spent when the call gave up.
        failures: what each tier tried said (``{tier: "..."}``), as in AllTiersFailedError.

    Example:
        ```python
        try:
            llm.invoke("hi", max_latency_ms=500)
        except DeadlineExceededError as exc:
            print(exc.source, exc.failures)   # "max_latency_ms=500" {2: "APITimeoutError: ..."}
        ```
    """

    def __init__(
        self,
        deadline_s: float,
        source: str,
        elapsed_s: float,
        failures: Mapping[int, str],
        exceptions: Mapping[int, BaseException] | None = None,
    ) -> None:
        super().__init__(failures, exceptions)
        self.deadline_s = deadline_s
        self.source = source
        self.elapsed_s = elapsed_s
        tried = (
            "; ".join(f"tier {n}: {why}" for n, why in self.failures.items())
            or "no tier was called"
        )
        self.args = (
            f"deadline of {deadline_s:g}s ({source}) spent after {elapsed_s:.2f}s; tried: "
            f"{tried}. Raise the deadline or choose a faster tier",
        )


class TierReplyError(ACOError, RuntimeError):
    """A tier answered with something that is not an answer (no choices, no content and no
    tool calls, a stream without chunks). It counts as a tier failure: the next tier is tried.

    Attributes:
        tier: the tier that answered.

    Example:
        ```python
        try:
            llm.invoke("hi", force_tier=2)
        except AllTiersFailedError as exc:
            print(exc.exceptions[2])   # TierReplyError: tier 2 gave no usable answer: ...
        ```
    """

    def __init__(self, tier: int, what: str) -> None:
        self.tier = tier
        super().__init__(f"tier {tier} gave no usable answer: {what}")


class UnparsedReplyError(ACOError, RuntimeError):
    """A tier answered (and billed) a reply the client could not parse: a structured answer
    cut by the output cap, a filtered reply, JSON that does not match the schema. Its cost
    is on the ledger (outcome ``unparsed``: the real usage, or the hold's worst case when the
    reply carried none); no other tier is tried (each would be billed for the same), and it
    is not counted as the tier's fault.

    Attributes:
        tier: the tier that answered.
        recorded_usage: was the reply's own usage recorded (else the worst case)?

    Example:
        ```python
        try:
            llm.invoke("List 50 cities", response_format=Cities, max_tokens=20)
        except UnparsedReplyError as exc:
            print(exc)   # tier 2 replied but ... raise max_tokens ...
        ```
    """

    def __init__(self, tier: int, why: str, *, recorded: bool) -> None:
        self.tier = tier
        self.recorded_usage = recorded
        spent = "its usage" if recorded else "the hold's worst case"
        super().__init__(
            f"tier {tier} replied but the reply could not be used: {why}; it was billed and "
            f"is on the ledger ({spent}, outcome unparsed). Raise max_tokens, or simplify "
            "the response_format schema"
        )


class DegradedAnswerWarning(UserWarning):
    """A forced tier was answered by a cheaper one (its budget was spent, or it was
    unavailable): the answer's ``response_metadata["aco"]["degraded_from"]`` names the tier
    asked for. A Python warning, so it shows without any logging configured.

    Example:
        ```python
        import warnings
        warnings.simplefilter("error", DegradedAnswerWarning)   # make it an error instead
        ```
    """


class SettingMovedWarning(DeprecationWarning):
    """A setting was given under an old spelling (a config key or a model argument that now
    lives elsewhere): it still works for one release, and the message names the new spelling
    (``aco_langchain.config_deprecations`` lists them all).

    Example:
        ```python
        import warnings
        warnings.simplefilter("error", SettingMovedWarning)   # find every old spelling
        ```
    """


class StreamInterruptedError(ACOError, RuntimeError):
    """A stream failed after part of the answer was delivered; it is not retried or re-routed
    (a second answer would duplicate the first part). Raised ``from`` the transport error.

    Attributes:
        tier: the tier whose stream broke.
        chunks: how many chunks were delivered.
        chars: how many characters of content were delivered.

    Example:
        ```python
        try:
            for chunk in llm.stream("Write the report"):
                print(chunk.content, end="")
        except StreamInterruptedError as exc:
            print(exc.tier, exc.chunks, exc.chars)
        ```
    """

    def __init__(self, tier: int, chunks: int, chars: int, why: str) -> None:
        self.tier = tier
        self.chunks = chunks
        self.chars = chars
        super().__init__(
            f"tier {tier} stream broke after {chunks} chunk(s), {chars} char(s) delivered: "
            f"{why}. The partial answer was not retried; call again for a full answer"
        )


class LedgerError(ACOError, RuntimeError):
    """The spend ledger cannot be opened or written; the message names the URL and the fix.

    Example:
        ```python
        ACORouterChatModel(config={"ledger": {"url": "sqlite:////read-only/ledger.db"}})
        # LedgerError: cannot open the spend ledger at sqlite:////read-only/ledger.db ...
        ```
    """


class LedgerURLError(LedgerError):
    """A ledger URL that is malformed or names an unknown scheme.

    Example:
        ```python
        open_ledger("mysql://host/db")
        # LedgerURLError: unknown ledger scheme 'mysql' ...
        ```
    """


class LocalModelError(ACOError, RuntimeError):
    """A local-tier problem, worded for the user: says what is wrong and what to run.

    Example:
        ```python
        from aco_langchain.providers import local
        local.start()   # LocalModelError: llama-server is not built: run `aco local-model build`
        ```
    """


class LocalToolCallError(LocalModelError, ValueError):
    """The local tier could not turn its output into a tool call (or the tools cannot be bound).

    Raised for a ``tool_choice`` that names no bound tool, a tool call cut at ``max_tokens``,
    or a server that ignored the constrained-decoding schema; a tool-bound call then falls
    back to the next tier like any other tier failure.

    Example:
        ```python
        local = llm.registry.model(1).bind_tools([search], tool_choice="lookup")
        local.invoke("Find it")   # LocalToolCallError: tool_choice 'lookup' names no bound tool
        ```
    """


class BundleError(ACOError, ValueError):
    """A router bundle that cannot be trusted or read: missing, tampered, or of another version.

    Example:
        ```python
        from aco_langchain.routing.bundle import load_bundle
        load_bundle("router_models/missing")   # BundleError: no router bundle at ...
        ```
    """


class DataError(ACOError, ValueError):
    """A data file that cannot be read as outcomes; the message names the file and the fix.

    Example:
        ```python
        from aco_langchain.routing.training.datasets import load_outcomes
        load_outcomes(["notes.txt"])   # DataError: notes.txt: line 1 is not JSON ...
        ```
    """


class TrainError(ACOError, ValueError):
    """Training input that cannot give a router (too few prompts, missing extra...).

    Example:
        ```python
        from aco_langchain.routing.training.train import train_bundle
        train_bundle(tiny_outcomes)   # TrainError: too few prompts to train a router ...
        ```
    """


class PlotError(ACOError, RuntimeError):
    """A plot that cannot be drawn or written (matplotlib missing, unwritable path)."""


__all__ = [
    "ACOError",
    "AllTiersFailedError",
    "BudgetExceededError",
    "BundleError",
    "ConfigError",
    "ContextTooLongError",
    "DataError",
    "DeadlineExceededError",
    "InvalidRequestError",
    "LedgerError",
    "LedgerURLError",
    "LocalModelError",
    "LocalToolCallError",
    "PlotError",
    "RoutingError",
    "StreamInterruptedError",
    "TierReplyError",
    "TierUnavailableError",
    "UnparsedReplyError",
    "DegradedAnswerWarning",
    "SettingMovedWarning",
    "TrainError",
]


class ReplayMissError(ACOError, LookupError):
    """A replay tier has no recorded answer to the prompt; the tier is unavailable for it.

    Example:
        ```python
        from aco_langchain.providers.replay import ReplayChatModel
        ReplayChatModel(recording=["answers.jsonl"], model="gpt-4o").invoke("new prompt")
        # ReplayMissError: prompt not in the replay recording (...): record it ...
        ```
    """

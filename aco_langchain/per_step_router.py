"""Alias of ``aco_langchain.per_step`` under the seed's module name (``aco.per_step_router``).

Usage::

    from aco_langchain.per_step_router import PerStepRouter
"""

from aco_langchain.per_step import PerStepRouter, StepDecision, classify_action

__all__ = ["PerStepRouter", "StepDecision", "classify_action"]

"""Re-export of :mod:`aco_langchain.agent.per_step` under the seed's import path."""

from aco_langchain.agent.per_step import PerStepRouter, StepDecision

__all__ = ["PerStepRouter", "StepDecision"]

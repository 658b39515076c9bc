"""Re-export of :mod:`aco_langchain.agent.optimizer` under the seed's import path."""

from aco_langchain.agent.optimizer import ACOOptimizer

__all__ = ["ACOOptimizer"]

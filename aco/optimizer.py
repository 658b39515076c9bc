"""Re-export of :mod:`aco_langchain.optimizer` under the seed's import path."""

from aco_langchain.optimizer import ACOOptimizer

__all__ = ["ACOOptimizer"]

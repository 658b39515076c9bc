"""Seed-compatible import path: ``from aco.optimizer import ACOOptimizer`` works as the
deployment guide writes it. Everything lives in ``aco_langchain``; these are re-exports.

Usage::

    from aco.optimizer import ACOOptimizer
    from aco.config import ACOConfig
    from aco.per_step_router import PerStepRouter
"""

"""The ``learning:`` block of config.yaml: calibration on the user's data, online learning.

Kept beside ``config.py`` (which imports it) so the main config module stays small.

Usage::

    from aco_langchain.config import ACOConfig
    ACOConfig().learning.explore_share          # 0.02
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CalibratedKnob(_Strict):
    """The learned router's trade-off knob as ``aco calibrate`` chose it on the user's data:
    used instead of the bundle's operating point for ``routing.quality_target``."""

    lam: float = Field(..., ge=0.0, description="Knob: argmax_t p(t) - lam x cost(t)/ref.")
    lam_next: float | None = Field(None, ge=0.0, description="Knob for the mixed share.")
    mix: float = Field(0.0, ge=0.0, le=1.0, description="Share of prompts using lam_next.")
    target: float = Field(..., gt=0.0, le=1.0, description="Quality share it was chosen for.")


class LearningSettings(_Strict):
    """Learning from the user's own outcomes (``aco calibrate``, online learning)."""

    online: bool = Field(False, description="Adjust routing from observed outcomes.")
    explore_share: float = Field(
        0.02, ge=0.0, le=0.2, description="Max share of calls explored one tier down."
    )
    prior_strength: float = Field(
        20.0, gt=0.0, description="Pseudo-observations the bundle's prediction counts as."
    )
    calibration: CalibratedKnob | None = Field(
        None, description="Written by aco calibrate; None: the bundle's operating point."
    )

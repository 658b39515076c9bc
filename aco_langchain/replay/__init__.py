"""Replay: evaluate and calibrate cost policies on recorded outcomes and agent runs."""

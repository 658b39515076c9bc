"""Replay: real models' answers from recordings, and run-level policies on recorded agent runs."""

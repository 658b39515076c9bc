"""Replay: answers of real models from recordings (RouterBench CSV, replay JSONL)."""

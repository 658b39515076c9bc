"""Training the learned router: datasets (routing JSONL), training, evaluation (AIQ, cost cut)."""

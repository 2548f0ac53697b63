"""Training: batches, the one fit loop, checkpoints."""

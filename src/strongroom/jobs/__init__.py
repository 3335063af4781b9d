"""Processing, training and batch-transform jobs in sandboxes: specs, scheduling, execution,
encrypted logs, metrics, managed spot with checkpoints, guardrails and detective controls."""

"""Health, metrics and logs: what an operator watches while the platform runs."""

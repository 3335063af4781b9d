"""The hash-chained audit log, its verification and export, and the event bus."""

"""The hash-chained audit log, its verification, signing and witness, and the event bus (below the guard)."""

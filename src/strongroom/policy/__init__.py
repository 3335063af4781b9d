"""Cedar policies and the decision engine (below the guard; only the guard calls it)."""

"""Cedar policies, the decision engine, the guard every service goes through, the simulator."""

"""The workshop demo: synthetic data, notebooks, and `strongroom demo`."""

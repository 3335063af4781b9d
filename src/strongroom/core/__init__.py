"""Configuration, the composition root, request context, errors and names."""

"""Models, endpoint configs, endpoints, the sandboxed inference workers and data capture."""

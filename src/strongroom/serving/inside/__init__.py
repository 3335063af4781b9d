"""Code that runs INSIDE an endpoint's sandbox (no network, non-root, no keys)."""

"""Code that runs inside a monitoring job's sandbox."""

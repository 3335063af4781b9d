"""The ``strongroom`` command: a thin Typer + Rich shell over the SDK."""

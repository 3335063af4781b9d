"""Notebooks: JupyterLab in a bubblewrap sandbox, reached only through the platform's HTTPS proxy.

See docs/notebooks.md for the isolation model.
"""

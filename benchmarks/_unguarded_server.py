"""Benchmark control only: the same API app with the guard (authorization + audit) switched off.

Never part of the product: `Platform(enforce=False)` is not reachable from configuration.
Usage: ``_unguarded_server.py HOME [WORKERS]`` (WORKERS > 1: ``serve_workers``, as `up --workers`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from strongroom.api.server import serve, serve_workers
from strongroom.core.config import Config
from strongroom.platform import Platform


def _unguarded(config: Config) -> Platform:
    return Platform(config, enforce=False)


if __name__ == "__main__":
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    config = Config(home=Path(sys.argv[1]))
    if workers > 1:
        serve_workers(config, workers, build=_unguarded)
    else:
        serve(_unguarded(config))

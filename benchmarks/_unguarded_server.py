"""Benchmark control only: the same API app with the guard (authorization + audit) switched off.

Never part of the product: `Platform(enforce=False)` is not reachable from configuration.
"""

from __future__ import annotations

import sys
from pathlib import Path

from strongroom.api.server import serve
from strongroom.core.config import Config
from strongroom.platform import Platform

if __name__ == "__main__":
    serve(Platform(Config(home=Path(sys.argv[1])), enforce=False))

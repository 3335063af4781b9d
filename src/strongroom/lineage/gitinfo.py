"""What the jobs SDK records as a submission's provenance: the working tree's git state as JSON."""

from __future__ import annotations

import os
from typing import Any

from strongroom.lineage.git import capture as capture_commit


def capture(path: str | os.PathLike[str] = ".") -> dict[str, Any] | None:
    """``strongroom.lineage.git.capture`` as a plain dict (``None`` outside a git working tree)."""
    found = capture_commit(path)
    return found.model_dump() if found is not None else None

"""Notebook entities and the instance sizes."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from pydantic import BaseModel

GiB = 1024**3


@dataclass(frozen=True)
class Size:
    """CPU and memory limits of a notebook size."""

    name: str
    cpus: int
    memory_bytes: int

    @property
    def label(self) -> str:
        return f"{self.name} ({self.cpus} CPU, {self.memory_bytes // GiB} GiB)"


# Memory is an address-space limit per process (see docs/sandbox.md): Python with the ML stack
# reserves far more address space than it touches, so the figures are generous.
SIZES = {
    "small": Size("small", 1, 4 * GiB),
    "medium": Size("medium", 2, 8 * GiB),
    "large": Size("large", 4, 16 * GiB),
}


class NotebookStatus(enum.StrEnum):
    PENDING = "Pending"
    IN_SERVICE = "InService"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    FAILED = "Failed"
    DELETING = "Deleting"
    DELETED = "Deleted"


class Notebook(BaseModel):
    id: str
    team: str
    name: str
    owner: str
    role: str = "DataScientist"
    status: NotebookStatus
    desired: str
    size: str
    cpus: int
    memory_bytes: int
    volume_gib: int
    runtime: str
    url_path: str
    reason: str = ""
    provisioned_product_id: str = ""
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None = None
    srn: str = ""


class PresignedUrl(BaseModel):
    """A single-use sign-in URL for a browser; ``url`` is relative to the platform's base URL."""

    url: str
    expires_at: dt.datetime

"""Atomic, hash-verified checkpoints any training script can use (managed spot training).

Layout in the checkpoint directory (``/opt/ml/checkpoints`` by default)::

    checkpoint-000000120.bin        the bytes (e.g. an XGBoost UBJSON booster)
    checkpoint-000000120.json       manifest: step, sha256, size, created (written last)

Each file is written to a temporary name, fsynced, renamed into place, and the directory is
fsynced. The manifest is written only after the data is durable, so a checkpoint without a
manifest is incomplete and ignored; a checkpoint whose bytes do not match the manifest's
sha256 (half-written, truncated, corrupted) is skipped for the previous good one. Nothing
is ever unpickled: a checkpoint is bytes, and the caller decides how to load them.

Usage in a script::

    from strongroom.algorithms import checkpoint
    found = checkpoint.latest(dir)
    state = found.read_bytes() if found else None
    ...
    checkpoint.save(dir, step, state_bytes)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from strongroom.core.errors import IntegrityError, InvalidInput
from strongroom.core.fileio import atomic_write

DEFAULT_DIR = "/opt/ml/checkpoints"
# Exit code of a program that saved a checkpoint after SIGTERM: "interrupted, resume me".
EXIT_INTERRUPTED = 75
_MANIFEST = re.compile(r"(?P<name>[a-z][a-z0-9_-]{0,40})-(?P<step>\d{9})\.json")


def checkpoint_dir() -> Path:
    """The checkpoint directory from ``SM_CHECKPOINT_DIR`` (default ``/opt/ml/checkpoints``)."""
    return Path(os.environ.get("SM_CHECKPOINT_DIR", DEFAULT_DIR))


@dataclass(frozen=True)
class Checkpoint:
    """A complete checkpoint: its step, data file and expected hash."""

    step: int
    path: Path
    sha256: str
    size: int

    def read_bytes(self) -> bytes:
        """The checkpoint's bytes, verified against the manifest.

        Raises:
            IntegrityError: the bytes changed since the checkpoint was written.
        """
        data = self.path.read_bytes()
        if len(data) != self.size or hashlib.sha256(data).hexdigest() != self.sha256:
            raise IntegrityError(f"checkpoint {self.path.name} does not match its recorded sha256")
        return data


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,40}", name):
        raise InvalidInput(f"checkpoint name {name!r} must be lowercase letters, digits, '-' or '_'", field="name")


def save(
    directory: str | os.PathLike[str], step: int, data: bytes, *, name: str = "checkpoint", keep: int = 3
) -> Checkpoint:
    """Durably write checkpoint ``step`` and prune all but the newest ``keep`` complete ones.

    Raises:
        InvalidInput: ``step`` is negative or ``name`` malformed.
    """
    _check_name(name)
    if step < 0 or step > 999_999_999:
        raise InvalidInput(f"checkpoint step must be between 0 and 999999999, got {step}", field="step")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{name}-{step:09d}"
    data_path = folder / f"{stem}.bin"
    digest = hashlib.sha256(data).hexdigest()
    atomic_write(data_path, data)
    manifest = {"step": step, "file": data_path.name, "sha256": digest, "size": len(data)}
    manifest["created"] = datetime.now(UTC).isoformat()
    atomic_write(folder / f"{stem}.json", json.dumps(manifest, sort_keys=True).encode())
    _prune(folder, name, keep)
    return Checkpoint(step=step, path=data_path, sha256=digest, size=len(data))


def _complete(folder: Path, name: str) -> list[Checkpoint]:
    found: list[Checkpoint] = []
    if not folder.is_dir():
        return found
    for entry in folder.iterdir():
        match = _MANIFEST.fullmatch(entry.name)
        if not match or match["name"] != name:
            continue
        try:
            manifest = json.loads(entry.read_text())
            data_path = folder / str(manifest["file"])
            if data_path.parent != folder or data_path.name != f"{entry.stem}.bin":
                continue
            found.append(Checkpoint(int(manifest["step"]), data_path, str(manifest["sha256"]), int(manifest["size"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a manifest we cannot read is not a checkpoint
    return sorted(found, key=lambda c: c.step, reverse=True)


def latest(directory: str | os.PathLike[str], *, name: str = "checkpoint") -> Checkpoint | None:
    """The newest checkpoint whose bytes verify, or ``None``. Corrupt ones are skipped, never loaded."""
    _check_name(name)
    for candidate in _complete(Path(directory), name):
        try:
            candidate.read_bytes()
        except (OSError, IntegrityError):
            continue
        return candidate
    return None


def load(directory: str | os.PathLike[str], *, name: str = "checkpoint") -> tuple[int, bytes] | None:
    """``(step, bytes)`` of the newest good checkpoint, or ``None`` when there is none."""
    found = latest(directory, name=name)
    if found is None:
        return None
    return found.step, found.read_bytes()


def _prune(folder: Path, name: str, keep: int) -> None:
    for old in _complete(folder, name)[max(keep, 1) :]:
        with contextlib.suppress(FileNotFoundError):
            (folder / f"{old.path.stem}.json").unlink()
            old.path.unlink()

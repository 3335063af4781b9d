"""The checkpoint helper: atomic writes, hash verification, corrupt or partial checkpoints skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from strongroom.algorithms import checkpoint
from strongroom.core.errors import IntegrityError, InvalidInput


def test_save_and_load_the_newest(tmp_path: Path) -> None:
    assert checkpoint.load(tmp_path) is None
    for step in (10, 20, 30):
        checkpoint.save(tmp_path, step, f"state at {step}".encode())
    assert checkpoint.load(tmp_path) == (30, b"state at 30")


def test_a_corrupted_newest_checkpoint_is_skipped_for_the_previous_good_one(tmp_path: Path) -> None:
    checkpoint.save(tmp_path, 10, b"good state 10")
    newest = checkpoint.save(tmp_path, 20, b"good state 20")
    newest.path.write_bytes(b"good state 2X")  # same size, different bytes: bit rot or tampering
    assert checkpoint.load(tmp_path) == (10, b"good state 10")
    with pytest.raises(IntegrityError):
        newest.read_bytes()


def test_a_half_written_checkpoint_is_never_loaded(tmp_path: Path) -> None:
    checkpoint.save(tmp_path, 10, b"complete")
    # Killed mid-write: a temp file, and a data file whose manifest was never written.
    (tmp_path / ".checkpoint-000000020.bin.abc.tmp").write_bytes(b"partial")
    (tmp_path / "checkpoint-000000030.bin").write_bytes(b"no manifest yet")
    # A truncated newer checkpoint with a manifest.
    truncated = checkpoint.save(tmp_path, 40, b"the full state of step 40")
    truncated.path.write_bytes(b"the full")
    # A manifest that is not JSON.
    (tmp_path / "checkpoint-000000050.json").write_text("{not json")
    assert checkpoint.load(tmp_path) == (10, b"complete")


def test_old_checkpoints_are_pruned_and_names_are_separate(tmp_path: Path) -> None:
    for step in range(6):
        checkpoint.save(tmp_path, step, b"x", keep=2)
    checkpoint.save(tmp_path, 99, b"other", name="optimizer")
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*.json")) == [
        "checkpoint-000000004.json",
        "checkpoint-000000005.json",
    ]
    assert checkpoint.load(tmp_path, name="optimizer") == (99, b"other")
    assert not list(tmp_path.glob(".*.tmp"))


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        checkpoint.save(tmp_path, -1, b"x")
    with pytest.raises(InvalidInput):
        checkpoint.save(tmp_path, 1, b"x", name="../evil")

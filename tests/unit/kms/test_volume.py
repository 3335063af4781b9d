"""Encrypted volumes with real gocryptfs over FUSE (no platform needed)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.core.errors import Unavailable
from strongroom.kms.volume import EncryptedVolume

KEY = bytes(range(32))


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[EncryptedVolume]:
    created = EncryptedVolume(tmp_path / "vol")
    try:
        yield created
    finally:
        created.unmount()


def test_files_are_ciphertext_below_the_mount_and_survive_a_remount(volume: EncryptedVolume) -> None:
    home = volume.mount(b"wrapped-by-kms", KEY)
    (home / "notes-MARKER.txt").write_text("MARKER " * 100)
    stored = [p for p in volume.cipher.rglob("*") if p.is_file()]
    assert stored and all(b"MARKER" not in p.read_bytes() and "MARKER" not in p.name for p in stored)
    assert volume.wrapped_key() == b"wrapped-by-kms"
    volume.unmount()
    assert not volume.is_mounted() and list(home.iterdir()) == []
    volume.mount(b"ignored: the stored wrapped key stays", KEY)
    assert (home / "notes-MARKER.txt").read_text() == "MARKER " * 100
    assert volume.wrapped_key() == b"wrapped-by-kms"


def test_a_wrong_key_does_not_mount(volume: EncryptedVolume) -> None:
    volume.mount(b"w", KEY)
    volume.unmount()
    with pytest.raises(Unavailable, match="gocryptfs failed"):
        volume.mount(b"w", bytes(32))
    assert not volume.is_mounted()


def test_a_crash_between_storing_the_key_and_initialising_recovers(volume: EncryptedVolume) -> None:
    volume.root.mkdir()
    (volume.root / "volume.key").write_bytes(b"stored-before-the-crash")
    volume.cipher.mkdir()  # gocryptfs -init never ran
    home = volume.mount(b"a-new-wrapped-key", KEY)
    (home / "f").write_text("x")
    assert volume.wrapped_key() == b"stored-before-the-crash"


def test_a_stale_mount_is_replaced_and_remove_leaves_nothing(volume: EncryptedVolume) -> None:
    home = volume.mount(b"w", KEY)
    (home / "f").write_text("x")
    handle = os.open(home / "f", os.O_RDONLY)  # busy, as a killed process's sandbox would leave it
    try:
        volume.mount(b"w", KEY)
    finally:
        os.close(handle)
    assert volume.is_mounted() and (home / "f").read_text() == "x"
    volume.remove()
    assert not volume.root.exists()

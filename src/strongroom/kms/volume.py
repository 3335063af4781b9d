"""Directories encrypted at rest with gocryptfs under a data key the team's KMS key wraps: a
notebook's home volume, a team's git repositories.

On disk, the volume directory holds only ciphertext:

    <volume>/volume.key   the volume's 256-bit data key, wrapped by the team's KMS key
    <volume>/cipher/      gocryptfs's encrypted tree (file contents and names: AES-256-GCM / EME)
    <volume>/home/        the mount point; plaintext exists only through the mounted filesystem

The platform mounts a volume (FUSE, as the platform's user) while it is in use and unmounts it
afterwards. Deleting the team key (crypto-shredding) makes the volume unreadable, like every
other byte of the team.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from strongroom.core.context import RequestContext
from strongroom.core.errors import NotFound, Unavailable
from strongroom.core.fileio import atomic_write
from strongroom.kms.service import EncryptionContext, KmsService

TEAM_KEY = "default"  # the alias of the team key volumes are wrapped under (the Team Environment's)
KEY_FILE = "volume.key"
# The gocryptfs "password" is the 256-bit data key itself (hex), so scrypt's work factor buys
# nothing: the lowest one gocryptfs accepts keeps a mount at milliseconds.
_SCRYPT_LOG_N = "10"
_TIMEOUT = 30.0


def available() -> str | None:
    """Why encrypted volumes cannot work on this host, or ``None`` when they can."""
    if shutil.which("gocryptfs") is None:
        return "gocryptfs is not installed (make setup installs it: Debian packages gocryptfs and fuse3)"
    if shutil.which("fusermount3") is None and shutil.which("fusermount") is None:
        return "fusermount is not installed (Debian package fuse3)"
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse does not exist on this host (encrypted volumes need FUSE)"
    return None


class EncryptedVolume:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.cipher = root / "cipher"
        self.mountpoint = root / "home"
        self.key_file = root / KEY_FILE

    def wrapped_key(self) -> bytes | None:
        """The wrapped data key, or ``None`` for a volume that was never initialised."""
        try:
            return self.key_file.read_bytes()
        except FileNotFoundError:
            return None

    def is_mounted(self) -> bool:
        return os.path.ismount(self.mountpoint)

    def mount(self, wrapped: bytes, key: bytes) -> Path:
        """Mount the volume (initialising it on first use) and return the mount point.

        ``wrapped`` is stored before the volume is initialised, so a crash in between leaves a
        volume whose key is known. A mount left behind by an earlier platform process is
        replaced, never reused.
        """
        problem = available()
        if problem is not None:
            raise Unavailable(f"the encrypted volume {self.root} cannot be mounted: {problem}")
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.unmount()
        self.mountpoint.mkdir(mode=0o700, exist_ok=True)
        if self.wrapped_key() is None:
            atomic_write(self.key_file, wrapped)
        password = key.hex().encode() + b"\n"
        if not (self.cipher / "gocryptfs.conf").exists():
            if self.cipher.exists():
                shutil.rmtree(self.cipher)  # a half-initialised volume holds no data yet
            self.cipher.mkdir(mode=0o700)
            self._gocryptfs(["-init", "-scryptn", _SCRYPT_LOG_N, str(self.cipher)], password)
        self._gocryptfs([str(self.cipher), str(self.mountpoint)], password)
        return self.mountpoint

    def unmount(self) -> None:
        """Unmount if mounted (lazily if busy); waits until the mount point is free."""
        if not self.is_mounted():
            return
        fusermount = shutil.which("fusermount3") or shutil.which("fusermount") or "fusermount"
        result = subprocess.run([fusermount, "-u", str(self.mountpoint)], capture_output=True, check=False)
        if result.returncode != 0:
            subprocess.run([fusermount, "-u", "-z", str(self.mountpoint)], capture_output=True, check=False)
        deadline = time.monotonic() + _TIMEOUT
        while self.is_mounted():
            if time.monotonic() > deadline:
                raise Unavailable(f"the encrypted volume at {self.mountpoint} could not be unmounted")
            time.sleep(0.05)

    def remove(self) -> None:
        """Unmount and delete the volume: ciphertext, wrapped key and mount point."""
        self.unmount()
        shutil.rmtree(self.root, ignore_errors=True)

    def _gocryptfs(self, args: list[str], password: bytes) -> None:
        command = ["gocryptfs", "-q", "-nosyslog", *args]
        # Output to a file, not a pipe: the mount daemon gocryptfs forks would hold a pipe open.
        with tempfile.TemporaryFile() as output:
            try:
                result = subprocess.run(
                    command, input=password, stdout=output, stderr=output, timeout=_TIMEOUT, check=False
                )
            except subprocess.TimeoutExpired as exc:
                raise Unavailable(f"gocryptfs did not answer within {_TIMEOUT:g} s") from exc
            if result.returncode != 0:
                output.seek(0)
                detail = output.read().decode(errors="replace").strip()[-500:]
                raise Unavailable(f"gocryptfs failed (exit {result.returncode}): {detail}")


def mount_for_team(kms: KmsService, team: str, volume: EncryptedVolume, context: EncryptionContext) -> Path:
    """Unwrap (or, on first use, generate) ``volume``'s data key with the team's default key and
    mount it. The platform acts as ``System``; each use is an audited GenerateDataKey or Decrypt
    carrying ``context``."""
    ctx = RequestContext.system()
    wrapped = volume.wrapped_key()
    try:
        if wrapped is None:
            data_key = kms.generate_data_key(ctx, team, TEAM_KEY, context)
        else:
            data_key = kms.decrypt(ctx, team, wrapped, context)
    except NotFound as exc:
        raise NotFound(
            f"team {team} has no key {TEAM_KEY!r} to encrypt {context.get('purpose', 'this volume')} with: "
            f"launch its Team Environment, or create one (strongroom keys create {team} {TEAM_KEY})",
            field="key",
        ) from exc
    return volume.mount(data_key.wrapped, data_key.plaintext)

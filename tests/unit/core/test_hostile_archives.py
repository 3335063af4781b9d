"""A corpus of hostile archives, run against every loader the platform has.

Loaders: the archive reader itself (list, read, extract), the batch-transform/endpoint model loader
(``algorithms.xgboost.archive.read_model``), the explanation model loader
(``explain.load_booster_from_tar``) and the job agent's code unpacking (``extract_archive`` with
``CODE_LIMITS``). Every hostile archive is generated here. The compression bombs (slow to build and
read through on purpose) are in ``tests/integration/test_archive_bombs.py``.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from strongroom.algorithms.xgboost.archive import read_model
from strongroom.core.archive import CODE_LIMITS, MODEL_LIMITS, MiB, extract_archive, list_members, read_member
from strongroom.core.errors import IntegrityError, InvalidInput, PayloadTooLarge
from strongroom.explain import load_booster_from_tar

MODEL = b'{"learner": {}}'  # the loaders refuse before parsing, so any JSON-looking bytes do


def _member(name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info


def _tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return gzip.compress(raw.getvalue())


def _regular(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return _member(name, data), data


HOSTILE: dict[str, bytes] = {
    "dot-dot": _tar(_regular("xgboost-model", MODEL), _regular("../../etc/cron.d/evil")),
    "absolute": _tar(_regular("xgboost-model", MODEL), _regular("/etc/cron.d/evil")),
    "symlink-out": _tar(_regular("xgboost-model", MODEL), (_member("lib", kind=tarfile.SYMTYPE, link="/etc"), b"")),
    # CVE-2025-4517 shape: a link to a folder outside, then a file written through it.
    "symlink-then-file": _tar(
        (_member("a", kind=tarfile.SYMTYPE, link="../" * 40 + "tmp"), b""),
        _regular("a/evil", b"owned"),
        _regular("xgboost-model", MODEL),
    ),
    "hardlink-out": _tar(
        _regular("xgboost-model", MODEL), (_member("h", kind=tarfile.LNKTYPE, link="/etc/shadow"), b"")
    ),
    "device": _tar(_regular("xgboost-model", MODEL), (_member("sda", kind=tarfile.BLKTYPE), b"")),
    "char-device": _tar(_regular("xgboost-model", MODEL), (_member("mem", kind=tarfile.CHRTYPE), b"")),
    "fifo": _tar(_regular("xgboost-model", MODEL), (_member("pipe", kind=tarfile.FIFOTYPE), b"")),
    "duplicate": _tar(_regular("xgboost-model", MODEL), _regular("./xgboost-model", b"{evil}")),
}


def _pax_bomb() -> bytes:
    info, data = _regular("xgboost-model", MODEL)
    info.pax_headers = {"comment": "z" * (4 * MiB)}
    return _tar((info, data))


HOSTILE["pax-header-bomb"] = _pax_bomb()


def _loaders(tmp_path: Path) -> dict[str, Callable[[Path], object]]:
    return {
        "list": lambda p: list_members(p, MODEL_LIMITS),
        "read": lambda p: read_member(p, "xgboost-model", MODEL_LIMITS),
        "extract-code": lambda p: extract_archive(p, tmp_path / "code", CODE_LIMITS),
        "transform-model": read_model,
        "explain-model": load_booster_from_tar,
    }


LOADERS = ["list", "read", "extract-code", "transform-model", "explain-model"]
REFUSED = (InvalidInput, IntegrityError, PayloadTooLarge)


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_every_loader_refuses_every_hostile_archive_and_writes_nothing(tmp_path: Path, case: str, loader: str) -> None:
    path = tmp_path / "hostile.tar.gz"
    path.write_bytes(HOSTILE[case])
    with pytest.raises(REFUSED):
        _loaders(tmp_path)[loader](path)
    assert not (tmp_path / "code").exists() or not any((tmp_path / "code").rglob("*"))
    assert not Path("/tmp/evil").exists()


def test_extraction_writes_checked_files_itself_without_set_uid_bits(tmp_path: Path) -> None:
    script = _member("bin/run.sh", b"#!/bin/sh\n")
    script.mode = 0o4755  # set-uid in the archive
    data = _tar((script, b"#!/bin/sh\n"), _regular("train.py", b"print(1)"))
    (tmp_path / "code.tar.gz").write_bytes(data)
    written = extract_archive(tmp_path / "code.tar.gz", tmp_path / "code", CODE_LIMITS)
    assert sorted(p.relative_to((tmp_path / "code").resolve()).as_posix() for p in written) == [
        "bin/run.sh",
        "train.py",
    ]
    assert (tmp_path / "code" / "bin" / "run.sh").stat().st_mode & 0o7777 == 0o755
    assert (tmp_path / "code" / "train.py").read_bytes() == b"print(1)"

"""Compression bombs against every archive loader: refused at the limit, with flat memory.

The bombs are built by streaming zeros through gzip (a few MiB on disk, up to a gigabyte and more
decompressed); each loader runs in a fresh interpreter whose peak RSS is measured. The smaller
hostile corpus (links, traversal, devices...) is in ``tests/unit/core/test_hostile_archives.py``.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.core.archive import MiB

MODEL = b'{"learner": {}}'


def _zero_bomb(path: Path, members: list[tuple[str, int]]) -> Path:
    """A tar.gz whose members are ``size`` zero bytes each, streamed through gzip 1 MiB at a time."""
    zeros = bytes(MiB)
    with path.open("wb") as out, gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1) as gz:
        for name, size in members:
            info = tarfile.TarInfo(name)
            info.size = size
            gz.write(info.tobuf(format=tarfile.USTAR_FORMAT))
            if name == "xgboost-model":  # a real-looking model first, then the rest
                gz.write(MODEL + bytes(size - len(MODEL)))
            else:
                left = size
                while left:
                    step = min(left, MiB)
                    gz.write(zeros[:step])
                    left -= step
            gz.write(bytes(-size % tarfile.BLOCKSIZE))
        gz.write(bytes(2 * tarfile.BLOCKSIZE))
    return path


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    folder = tmp_path_factory.mktemp("bombs")
    yield {
        # one 10^9-byte zero member: over every per-member limit
        "zero-member": _zero_bomb(folder / "zero.tar.gz", [("zeros.bin", 10**9)]),
        # a valid model next to 600 MiB of padding: over the model archive's total
        "padded-model": _zero_bomb(folder / "padded.tar.gz", [("xgboost-model", 4096), ("padding", 600 * MiB)]),
        # members each under the per-member limit whose sum is over the total: found while streaming
        "many-under-the-limit": _zero_bomb(
            folder / "sum.tar.gz", [(f"part{i}.bin", 250 * MiB) for i in range(5)] + [("xgboost-model", 4096)]
        ),
    }


# Runs every loader on one bomb in a fresh interpreter and reports each outcome with the growth
# of the process's peak RSS since before the first loader (a high-water mark: any loader that
# inflated the bomb in memory shows there).
_PEAK_RSS = """
import json, resource, sys
from pathlib import Path
from strongroom.algorithms.xgboost.archive import read_model
from strongroom.core.archive import CODE_LIMITS, MODEL_LIMITS, extract_archive, read_member
from strongroom.explain import load_booster_from_tar
bomb, scratch = Path(sys.argv[1]), Path(sys.argv[2])
loaders = {
    "read": lambda: read_member(bomb, "xgboost-model", MODEL_LIMITS),
    "extract-code": lambda: extract_archive(bomb, scratch / "code", CODE_LIMITS),
    "extract-library": lambda: extract_archive(bomb, scratch / "library"),
    "transform-model": lambda: read_model(bomb),
    "explain-model": lambda: load_booster_from_tar(bomb),
}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
report = {}
for name, load in loaders.items():
    try:
        load()
        outcome = "accepted"
    except Exception as exc:
        outcome = type(exc).__name__ + ": " + str(exc)
    report[name] = {"outcome": outcome, "growth_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before}
print(json.dumps(report))
"""


@pytest.mark.timeout(240)
@pytest.mark.parametrize("bomb", ["zero-member", "padded-model", "many-under-the-limit"])
def test_compression_bombs_stop_at_the_limit_with_flat_memory(
    bombs: dict[str, Path], tmp_path: Path, bomb: str
) -> None:
    assert bombs[bomb].stat().st_size < 8 * MiB  # up to a gigabyte decompressed, a few MiB on disk
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, str(bombs[bomb]), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=230,
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(report) == {"read", "extract-code", "extract-library", "transform-model", "explain-model"}
    for loader, result in report.items():
        assert "more than" in result["outcome"] or "over the" in result["outcome"], (loader, result)
        assert result["growth_kib"] < 64 * 1024, f"{loader}: peak RSS grew {result['growth_kib']} KiB on {bomb}"
    assert not any(p.is_file() for p in tmp_path.rglob("*"))

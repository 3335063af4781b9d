"""Encrypted put/get throughput vs a durable plain copy of the same file, in the same run.

ours: Strongroom's envelope-encrypted put and get of one object (AES-256-GCM-HKDF stream,
SHA-256 of the plaintext, blob written with fsync and rename), in-process and over HTTPS.
peer: ``shutil.copyfile`` of the same file followed by fsync (what a plain durable copy costs).
Also raw AES-256-GCM and SHA-256 throughput on this machine, for scale.

    .venv/bin/python benchmarks/storage.py            # 1 GiB
    .venv/bin/python benchmarks/storage.py --smoke    # 8 MiB, for CI
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent / "src"))

from strongroom.core.config import Config  # noqa: E402
from strongroom.core.context import Grant, Principal, RequestContext  # noqa: E402
from strongroom.core.launcher import start  # noqa: E402
from strongroom.platform import Platform, initialize  # noqa: E402
from strongroom.sdk.session import Session  # noqa: E402

MIB = 1 << 20


def ctx(user: str, role: str, team: str = "") -> RequestContext:
    return RequestContext(principal=Principal(user=user, token_kind="api", grants=(Grant(role, team),)))


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Best of ``repeat`` runs, in seconds (the machine is shared and noisy)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(MIB):
            yield chunk


def durable_copy(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(chunks: Iterator[bytes], dst: Path) -> None:
    with dst.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    size = 8 * MIB if args.smoke else args.size_mib * MIB
    repeat = 1 if args.smoke else 3
    mb = size / 1e6
    results: dict[str, dict[str, float | str]] = {}

    def report(name: str, ours: float, peer: float, unit: str = "MB/s") -> None:
        print(f"{name}: ours={ours:.0f} {unit} peer={peer:.0f} {unit} ratio={ours / peer:.2f}")
        results[name] = {"ours": round(ours, 1), "peer": round(peer, 1), "unit": unit, "ratio": round(ours / peer, 3)}

    with tempfile.TemporaryDirectory(prefix="sr-bench-", dir=os.environ.get("BENCH_TMP")) as tmp_name:
        tmp = Path(tmp_name)
        src = tmp / "source.bin"
        with src.open("wb") as out:
            for _ in range(size // MIB):
                out.write(os.urandom(MIB))
        copy_s = timed(lambda: durable_copy(src, tmp / "copy.bin"), repeat)
        peer = mb / copy_s

        block = os.urandom(MIB)
        aes = AESGCM(os.urandom(32))
        nonce = os.urandom(12)
        n = max(size // MIB, 8)
        aes_s = timed(lambda: [aes.encrypt(nonce, block, None) for _ in range(n)], repeat)
        sha_s = timed(lambda: [hashlib.sha256(block).digest() for _ in range(n)], repeat)
        report("storage-raw-aes-256-gcm", n * MIB / 1e6 / aes_s, peer)
        report("storage-raw-sha-256", n * MIB / 1e6 / sha_s, peer)

        home = tmp / "home"
        config = Config(home=home, port=0, database_url="")
        token = initialize(config).token.secret
        platform = Platform(config)
        try:
            admin = ctx("admin", "PlatformAdmin")
            platform.identity.create_team(admin, "bench")
            platform.kms.create_key(admin, "bench", "default")
            platform.storage.create_bucket(ctx("dana", "DataScienceAdmin", "bench"), "bench", "bench-data")
            alice = ctx("alice", "DataScientist", "bench")
            put_s = timed(lambda: platform.storage.put_object(alice, "bench-data", "obj", file_chunks(src)), repeat)

            def get() -> None:
                stream = platform.storage.open_object(alice, "bench-data", "obj")
                write_durably(stream.chunks, tmp / "got.bin")

            get_s = timed(get, repeat)
            report("storage-put-inprocess", mb / put_s, peer)
            report("storage-get-inprocess", mb / get_s, peer)
            platform.identity.create_user(admin, "alice")
            platform.identity.add_member(admin, "bench", "alice", "DataScientist")
            alice_token = platform.identity.create_token(admin, "bench", user="alice").secret
        finally:
            platform.close()

        server = start(config)
        try:
            with Session(url=server.url, token=alice_token, ca=server.ca, timeout=600) as session:
                up_s = timed(lambda: session.buckets.put_object("bench-data", "https-obj", src), repeat)
                down_s = timed(lambda: session.buckets.download("bench-data", "https-obj", tmp / "down.bin"), repeat)
            report("storage-put-https", mb / up_s, peer)
            report("storage-get-https", mb / down_s, peer)
        finally:
            server.stop()
        del token

    out = ROOT / "results" / ("storage.smoke.raw.json" if args.smoke else "storage.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {"benchmark": "storage", "size_bytes": size, "repeat": repeat, "cpus": os.cpu_count(), "results": results},
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

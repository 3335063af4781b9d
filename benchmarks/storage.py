"""Encrypted put/get throughput vs a durable plain copy of the same file, in the same run.

ours: Strongroom's envelope-encrypted put and get of one object (AES-256-GCM-HKDF stream,
SHA-256 of the plaintext, blob written with fsync and rename), in-process and over HTTPS.
peer: ``shutil.copyfile`` of the same file followed by fsync (what a plain durable copy costs).
Also raw AES-256-GCM and SHA-256 throughput on this machine, for scale.

    .venv/bin/python benchmarks/storage.py            # 1 GiB
    .venv/bin/python benchmarks/storage.py --smoke    # 8 MiB, for CI

Every figure alternates ours and the durable copy (``_common.alternate``), at least 3 runs each.
"""

from __future__ import annotations

import hashlib
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

from _common import Runs, alternate, figure, parser, repeats, save, version  # noqa: E402

from strongroom.core.config import Config  # noqa: E402
from strongroom.core.context import Grant, Principal, RequestContext  # noqa: E402
from strongroom.core.launcher import start  # noqa: E402
from strongroom.platform import Platform, initialize  # noqa: E402
from strongroom.sdk.session import Session  # noqa: E402

MIB = 1 << 20


def ctx(user: str, role: str, team: str = "") -> RequestContext:
    return RequestContext(principal=Principal(user=user, token_kind="api", grants=(Grant(role, team),)))


def rate(fn: Callable[[], object], megabytes: float) -> Callable[[], float]:
    """A measurement of ``fn`` in MB/s (for ``alternate``)."""

    def measure() -> float:
        started = time.perf_counter()
        fn()
        return megabytes / (time.perf_counter() - started)

    return measure


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
    args_parser = parser(__doc__ or "")
    args_parser.add_argument("--size-mib", type=int, default=1024)
    args = args_parser.parse_args()
    size = 8 * MIB if args.smoke else args.size_mib * MIB
    runs = repeats(args)
    mb = size / 1e6
    figures: list[dict[str, object]] = []
    peer_name = "durable plain copy (copyfile + fsync)"

    def add(name: str, what: str, measured: Runs) -> None:
        figures.append(figure(name, "MB/s", measured, what=what, peer_name=peer_name))

    with tempfile.TemporaryDirectory(prefix="sr-bench-", dir=os.environ.get("BENCH_TMP")) as tmp_name:
        tmp = Path(tmp_name)
        src = tmp / "source.bin"
        with src.open("wb") as out:
            for _ in range(size // MIB):
                out.write(os.urandom(MIB))
        copy = rate(lambda: durable_copy(src, tmp / "copy.bin"), mb)

        block = os.urandom(MIB)
        aes = AESGCM(os.urandom(32))
        nonce = os.urandom(12)
        n = max(size // MIB, 8)
        raw = n * MIB / 1e6
        aes_rate = rate(lambda: [aes.encrypt(nonce, block, None) for _ in range(n)], raw)
        sha_rate = rate(lambda: [hashlib.sha256(block).digest() for _ in range(n)], raw)
        add("storage-raw-aes-256-gcm", "raw AES-256-GCM, in memory (for scale)", alternate(aes_rate, copy, runs))
        add("storage-raw-sha-256", "raw SHA-256, in memory (for scale)", alternate(sha_rate, copy, runs))

        home = tmp / "home"
        config = Config(home=home, port=0, database_url="")
        initialize(config)
        platform = Platform(config)
        try:
            admin = ctx("admin", "PlatformAdmin")
            platform.identity.create_team(admin, "bench")
            platform.kms.create_key(admin, "bench", "default")
            platform.storage.create_bucket(ctx("dana", "DataScienceAdmin", "bench"), "bench", "bench-data")
            alice = ctx("alice", "DataScientist", "bench")
            put = rate(lambda: platform.storage.put_object(alice, "bench-data", "obj", file_chunks(src)), mb)
            put()  # the object exists before the first get

            def get() -> None:
                stream = platform.storage.open_object(alice, "bench-data", "obj")
                write_durably(stream.chunks, tmp / "got.bin")

            add("storage-put-inprocess", f"encrypted put of {size // MIB} MiB, in process", alternate(put, copy, runs))
            add(
                "storage-get-inprocess",
                f"encrypted get of {size // MIB} MiB, in process",
                alternate(rate(get, mb), copy, runs),
            )
            platform.identity.create_user(admin, "alice")
            platform.identity.add_member(admin, "bench", "alice", "DataScientist")
            alice_token = platform.identity.create_token(admin, "bench", user="alice").secret
        finally:
            platform.close()

        server = start(config)
        try:
            with Session(url=server.url, token=alice_token, ca=server.ca, timeout=600) as session:
                up = rate(lambda: session.buckets.put_object("bench-data", "https-obj", src), mb)
                up()
                down = rate(lambda: session.buckets.download("bench-data", "https-obj", tmp / "down.bin"), mb)
                add("storage-put-https", f"encrypted put of {size // MIB} MiB over HTTPS", alternate(up, copy, runs))
                add("storage-get-https", f"encrypted get of {size // MIB} MiB over HTTPS", alternate(down, copy, runs))
        finally:
            server.stop()

    compared = {
        "ours": "envelope encryption (AES-256-GCM-HKDF stream), SHA-256 of the plaintext, blob fsync + rename",
        "peer": peer_name,
        "cryptography": version("cryptography"),
        "sizes": {"bytes": size},
    }
    print(f"summary: {save('storage', figures, args.smoke, compared=compared)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

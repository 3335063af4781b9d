"""Encrypted put/get throughput vs plain durable copies of the same file, in the same run.

ours: Strongroom's envelope-encrypted put and get of one object (AES-256-GCM-HKDF stream,
SHA-256 of the plaintext, blob written with fsync and rename), in-process and over HTTPS.
peers, like for like:

- in process: ``shutil.copyfile`` of the same file followed by fsync (a plain durable copy);
  our in-process get is written to a file and fsynced too;
- over HTTPS: the same file served and stored by the same server stack without Strongroom
  (``_bare_files.py``: uvicorn + httptools + uvloop, TLS 1.3 with the same cipher list, no auth, no encryption at
  rest); a put is fsynced and renamed on the server as ours is, a get is streamed into a file by
  the same client (httpx) without fsync, as the SDK's ``download`` does (ours also checks the
  SHA-256, the peer does not).

Also raw AES-256-GCM and SHA-256 throughput on this machine, for scale. The goal for an HTTPS get
is 300 MB/s (README's "How fast").

    .venv/bin/python benchmarks/storage.py            # 1 GiB
    .venv/bin/python benchmarks/storage.py --smoke    # 8 MiB, for CI

Every figure alternates ours and the durable copy (``_common.alternate``), at least 3 runs each.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
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
HTTPS_GET_GOAL = 300.0  # MB/s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(work: Path) -> tuple[Path, Path]:
    cert, key = work / "peer.pem", work / "peer.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def wait_for(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"the bare file server did not listen on {port}")


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

        served = tmp / "served"
        served.mkdir()
        cert, key = self_signed(tmp)
        port = free_port()
        bare = subprocess.Popen(
            [sys.executable, str(ROOT / "_bare_files.py"), str(served), str(cert), str(key), str(port)]
        )
        server = start(config)
        try:
            wait_for(port)
            with (
                Session(url=server.url, token=alice_token, ca=server.ca, timeout=600) as session,
                httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=str(cert), timeout=600) as client,
            ):

                def bare_put() -> None:
                    with src.open("rb") as handle:
                        client.put("/files/obj", content=iter(lambda: handle.read(MIB), b"")).raise_for_status()

                def bare_get() -> None:
                    with client.stream("GET", "/files/obj") as response, (tmp / "bare.bin").open("wb") as out:
                        response.raise_for_status()
                        for chunk in response.iter_bytes():
                            out.write(chunk)

                up = rate(lambda: session.buckets.put_object("bench-data", "https-obj", src), mb)
                up()
                bare_put()
                down = rate(lambda: session.buckets.download("bench-data", "https-obj", tmp / "down.bin"), mb)
                https_peer = "the same file over the same server stack without Strongroom (_bare_files.py)"
                figures.append(
                    figure(
                        "storage-put-https",
                        "MB/s",
                        alternate(up, rate(bare_put, mb), runs),
                        what=f"encrypted put of {size // MIB} MiB over HTTPS",
                        peer_name=https_peer,
                    )
                )
                figures.append(
                    figure(
                        "storage-get-https",
                        "MB/s",
                        alternate(down, rate(bare_get, mb), runs),
                        what=f"encrypted get of {size // MIB} MiB over HTTPS",
                        peer_name=https_peer,
                        goal_mb_s=HTTPS_GET_GOAL,
                    )
                )
                print(
                    f"  storage-get-https against the {HTTPS_GET_GOAL:.0f} MB/s goal: "
                    f"{figures[-1]['ours'] / HTTPS_GET_GOAL:.2f}x"
                )
        finally:
            server.stop()
            bare.terminate()
            bare.wait(30)

    compared = {
        "ours": "envelope encryption (AES-256-GCM-HKDF stream), SHA-256 of the plaintext, blob fsync + rename",
        "peer": {
            "in process": peer_name,
            "https": "uvicorn + httptools + Starlette serving/storing the plain file (benchmarks/_bare_files.py)",
        },
        "event loop": "uvloop on both sides (as strongroom up)",
        "server get path": "ours: a worker thread decrypts 4 MiB ahead while the event loop sends; the peer reads "
        "the file in 1 MiB chunks on the event loop",
        "durability": "put: fsync + rename on both sides; in-process get: written and fsynced on both sides; "
        "HTTPS get: streamed into a file, no fsync, on both sides",
        "tls": "HTTPS figures: TLS 1.3, ECDHE+AESGCM, same Python ssl, httpx client on both sides; none in process",
        "file format": "one object of random bytes (incompressible); the peer stores it as a plain file",
        "integrity": "ours: every segment's GCM tag on the server and the SHA-256 of every get in the client "
        "(hashed by the writer thread); the peer checks nothing",
        "goal": {"storage-get-https": f">= {HTTPS_GET_GOAL:.0f} MB/s"},
        "cryptography": version("cryptography"),
        "uvicorn": version("uvicorn"),
        "httpx": version("httpx"),
        "sizes": {"bytes": size},
    }
    print(f"summary: {save('storage', figures, args.smoke, compared=compared)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

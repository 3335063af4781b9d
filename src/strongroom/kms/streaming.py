"""Streaming authenticated encryption: Tink's AES-GCM-HKDF streaming AEAD, with ``cryptography``.

The wire format is byte-for-byte the one Google Tink writes for an ``AesGcmHkdfStreamingKey``
with AES256_GCM_HKDF_1MB parameters (HKDF-SHA256, 32-byte derived keys, 1 MiB ciphertext
segments), so a ciphertext we write decrypts with Tink given the same key, and the reverse:

``header || segment_0 || segment_1 || ... || segment_{n-1}``

* header (40 bytes): header length (one byte, 40) || salt (32 random bytes) || nonce prefix
  (7 random bytes);
* per-object key: HKDF-SHA256(ikm = data key, salt = salt, info = associated data, 32 bytes),
  so the associated data (our encryption context) is bound to every segment;
* segment ``i``: AES-256-GCM(per-object key, nonce = prefix || i as 4-byte big-endian ||
  last-segment byte, no associated data); ciphertext segments are 1 MiB (the first one holds
  the header, so it carries 40 bytes less plaintext), the last one may be shorter.

The counter and last-segment flag in the nonce make reordering, swapping, dropping segments
and truncating the tail fail authentication; the random salt makes every object's key fresh,
so nonces never repeat under one key.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.core.errors import IntegrityError, InvalidInput

KEY_SIZE = 32
NONCE_PREFIX_SIZE = 7
TAG_SIZE = 16
HEADER_SIZE = 1 + KEY_SIZE + NONCE_PREFIX_SIZE
SEGMENT_SIZE = 1 << 20
MAX_SEGMENTS = 1 << 32

ReadAt = Callable[[int, int], bytes]


@dataclass(frozen=True)
class Layout:
    """Where plaintext and ciphertext segments lie for one segment size."""

    segment_size: int = SEGMENT_SIZE

    def __post_init__(self) -> None:
        if self.segment_size <= HEADER_SIZE + TAG_SIZE:
            raise ValueError("segment size too small")

    @property
    def plaintext_segment(self) -> int:
        return self.segment_size - TAG_SIZE

    @property
    def first_plaintext_segment(self) -> int:
        return self.segment_size - TAG_SIZE - HEADER_SIZE

    def segment_count(self, plaintext_size: int) -> int:
        """Segments for ``plaintext_size`` bytes (an empty plaintext still has one, empty, segment)."""
        if plaintext_size <= self.first_plaintext_segment:
            return 1
        rest = plaintext_size - self.first_plaintext_segment
        return 1 + -(-rest // self.plaintext_segment)

    def ciphertext_size(self, plaintext_size: int) -> int:
        return HEADER_SIZE + plaintext_size + TAG_SIZE * self.segment_count(plaintext_size)

    def plaintext_size(self, ciphertext_size: int) -> int:
        """Inverse of ``ciphertext_size``; raises ``IntegrityError`` for an impossible length."""
        if ciphertext_size < HEADER_SIZE + TAG_SIZE:
            raise IntegrityError("ciphertext is shorter than a header and one segment: truncated")
        full, rest = divmod(ciphertext_size, self.segment_size)
        if rest == 0:
            segments = full
        elif rest < TAG_SIZE:
            raise IntegrityError("ciphertext ends inside a segment tag: truncated or extended")
        else:
            segments = full + 1
        size = ciphertext_size - HEADER_SIZE - TAG_SIZE * segments
        if self.ciphertext_size(size) != ciphertext_size:
            raise IntegrityError("ciphertext length does not match any plaintext length")
        return size

    def plaintext_start(self, index: int) -> int:
        return 0 if index == 0 else self.first_plaintext_segment + (index - 1) * self.plaintext_segment

    def ciphertext_start(self, index: int) -> int:
        return HEADER_SIZE if index == 0 else index * self.segment_size

    def segment_of(self, plaintext_offset: int) -> int:
        if plaintext_offset < self.first_plaintext_segment:
            return 0
        return 1 + (plaintext_offset - self.first_plaintext_segment) // self.plaintext_segment


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index >= MAX_SEGMENTS:
        raise InvalidInput("object too large for the streaming format (2^32 segments)")
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def _derive(ikm: bytes, salt: bytes, associated_data: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=associated_data).derive(ikm)
    return AESGCM(key)


class StreamingAead:
    """AES-256-GCM-HKDF streaming AEAD over one 32-byte input key (the object's data key)."""

    __slots__ = ("_ikm", "layout")

    def __init__(self, key: bytes, segment_size: int = SEGMENT_SIZE) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError("the streaming AEAD key must be 32 bytes")
        self._ikm = key
        self.layout = Layout(segment_size)

    def __repr__(self) -> str:
        return f"StreamingAead(key=**********, segment_size={self.layout.segment_size})"

    # -- encryption -------------------------------------------------------------------------

    def new_header(self, associated_data: bytes) -> tuple[bytes, AESGCM, bytes]:
        """A fresh header, the per-object cipher it selects, and its nonce prefix."""
        salt = os.urandom(KEY_SIZE)
        prefix = os.urandom(NONCE_PREFIX_SIZE)
        return bytes([HEADER_SIZE]) + salt + prefix, _derive(self._ikm, salt, associated_data), prefix

    def encrypt(self, chunks: Iterable[bytes], associated_data: bytes) -> Iterator[bytes]:
        """Encrypt a plaintext given as chunks of any size; yields the header then each segment.

        Memory stays at about two segments whatever the plaintext size. As in Tink, a segment
        is only known to be the last when the input ends, so one full segment is held back.
        """
        header, cipher, prefix = self.new_header(associated_data)
        yield header
        layout = self.layout
        want = layout.first_plaintext_segment
        buffer = bytearray()
        index = 0
        pending: bytes | None = None  # a full segment that is not yet known to be non-last
        for chunk in chunks:
            if not chunk:
                continue
            view = memoryview(chunk)
            while len(view):
                if pending is not None:
                    yield cipher.encrypt(_nonce(prefix, index, False), pending, None)
                    index += 1
                    pending = None
                    want = layout.plaintext_segment
                take = want - len(buffer)
                if not buffer and len(view) >= want:
                    pending = bytes(view[:want])
                    view = view[want:]
                    continue
                buffer += view[:take]
                view = view[take:]
                if len(buffer) == want:
                    pending = bytes(buffer)
                    buffer.clear()
        last = pending if pending is not None else bytes(buffer)
        yield cipher.encrypt(_nonce(prefix, index, True), last, None)

    def encrypt_bytes(self, plaintext: bytes, associated_data: bytes) -> bytes:
        return b"".join(self.encrypt([plaintext], associated_data))

    # -- decryption -------------------------------------------------------------------------

    def _open_header(self, header: bytes, associated_data: bytes) -> tuple[AESGCM, bytes]:
        if len(header) != HEADER_SIZE or header[0] != HEADER_SIZE:
            raise IntegrityError("ciphertext header is malformed: not this format, or corrupted")
        salt = header[1 : 1 + KEY_SIZE]
        prefix = header[1 + KEY_SIZE :]
        return _derive(self._ikm, salt, associated_data), prefix

    def decrypt_range(
        self,
        read_at: ReadAt,
        ciphertext_size: int,
        associated_data: bytes,
        start: int = 0,
        end: int | None = None,
    ) -> Iterator[bytes]:
        """Yield plaintext bytes ``[start, end)``, reading and checking only the segments needed.

        ``read_at(offset, length)`` returns ciphertext bytes. Raises ``IntegrityError`` when any
        segment fails authentication (wrong key or context, tampering, reordering, truncation).
        """
        layout = self.layout
        size = layout.plaintext_size(ciphertext_size)
        end = size if end is None else min(end, size)
        if start < 0 or start > end:
            raise InvalidInput(f"range {start}-{end} is outside the object (size {size})", field="range")
        cipher, prefix = self._open_header(read_at(0, HEADER_SIZE), associated_data)
        count = layout.segment_count(size)
        first = layout.segment_of(start) if start < size else count - 1
        last_needed = layout.segment_of(end - 1) if end > start else first
        for index in range(first, last_needed + 1):
            offset = layout.ciphertext_start(index)
            length = (layout.first_plaintext_segment if index == 0 else layout.plaintext_segment) + TAG_SIZE
            length = min(length, ciphertext_size - offset)
            data = read_at(offset, length)
            if len(data) != length:
                raise IntegrityError(f"ciphertext segment {index} is truncated")
            try:
                plain = cipher.decrypt(_nonce(prefix, index, index == count - 1), data, None)
            except InvalidTag as exc:
                raise IntegrityError(
                    f"ciphertext segment {index} failed authentication: the data was modified, moved "
                    "to another object or version, truncated, or the key is wrong"
                ) from exc
            seg_start = layout.plaintext_start(index)
            lo = max(start - seg_start, 0)
            hi = min(end - seg_start, len(plain))
            if lo == 0 and hi == len(plain):
                yield plain
            elif hi > lo:
                yield plain[lo:hi]

    def decrypt_bytes(self, ciphertext: bytes, associated_data: bytes) -> bytes:
        view = memoryview(ciphertext)
        return b"".join(self.decrypt_range(lambda o, n: bytes(view[o : o + n]), len(ciphertext), associated_data))


class HashingPipe:
    """Feeds chunks to SHA-256 on a second thread (hashlib releases the GIL on large buffers),
    so hashing the plaintext overlaps with encryption and I/O on the calling thread."""

    def __init__(self, depth: int = 4) -> None:
        self._queue: queue.Queue[bytes | memoryview | None] = queue.Queue(depth)
        self._hash = hashlib.sha256()
        self.size = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._hash.update(chunk)

    def feed(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """Pass ``chunks`` through unchanged while hashing them."""
        try:
            for chunk in chunks:
                self.size += len(chunk)
                self._queue.put(chunk)
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        """End the input (idempotent); the digest is final once the thread drains."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)

    def hexdigest(self) -> str:
        self.close()
        self._thread.join()
        return self._hash.hexdigest()

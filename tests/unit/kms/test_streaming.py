"""The streaming format: Tink interoperability both ways, tamper detection, nonce uniqueness."""

from __future__ import annotations

import io
import os

import pytest
from tink import proto_keyset_format, secret_key_access, streaming_aead
from tink.proto import aes_gcm_hkdf_streaming_pb2, common_pb2, tink_pb2

from strongroom.core.errors import IntegrityError
from strongroom.kms.streaming import HEADER_SIZE, SEGMENT_SIZE, Layout, StreamingAead

MIB = 1 << 20
FIRST = SEGMENT_SIZE - 16 - HEADER_SIZE
SIZES = [0, 1, FIRST - 1, FIRST, FIRST + 1, FIRST + (MIB - 16), 3 * MIB + 12345]


def tink_primitive(raw: bytes) -> streaming_aead.StreamingAead:
    """Tink's own AES256_GCM_HKDF_1MB streaming AEAD over the raw key ``raw``."""
    streaming_aead.register()
    params = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingParams(
        ciphertext_segment_size=SEGMENT_SIZE, derived_key_size=32, hkdf_hash_type=common_pb2.SHA256
    )
    key = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingKey(version=0, key_value=raw, params=params)
    keyset = tink_pb2.Keyset(
        primary_key_id=7,
        key=[
            tink_pb2.Keyset.Key(
                key_data=tink_pb2.KeyData(
                    type_url="type.googleapis.com/google.crypto.tink.AesGcmHkdfStreamingKey",
                    value=key.SerializeToString(),
                    key_material_type=tink_pb2.KeyData.SYMMETRIC,
                ),
                status=tink_pb2.ENABLED,
                key_id=7,
                output_prefix_type=tink_pb2.RAW,
            )
        ],
    )
    handle = proto_keyset_format.parse(keyset.SerializeToString(), secret_key_access.TOKEN)
    return handle.primitive(streaming_aead.StreamingAead)


class _Sink(io.BytesIO):
    def close(self) -> None:  # Tink closes its destination; keep the bytes readable
        self.flush()


@pytest.mark.parametrize("size", SIZES)
def test_tink_decrypts_ours(size: int) -> None:
    raw, plaintext = os.urandom(32), os.urandom(size)
    ciphertext = StreamingAead(raw).encrypt_bytes(plaintext, b"team=risk")
    with tink_primitive(raw).new_decrypting_stream(io.BytesIO(ciphertext), b"team=risk") as stream:
        assert stream.read() == plaintext


@pytest.mark.parametrize("size", SIZES)
def test_we_decrypt_tinks(size: int) -> None:
    raw, plaintext = os.urandom(32), os.urandom(size)
    sink = _Sink()
    with tink_primitive(raw).new_encrypting_stream(sink, b"team=risk") as stream:
        stream.write(plaintext)
    ciphertext = sink.getvalue()
    assert len(ciphertext) == Layout().ciphertext_size(size)
    assert StreamingAead(raw).decrypt_bytes(ciphertext, b"team=risk") == plaintext


def test_chunking_does_not_change_the_format() -> None:
    raw, plaintext = os.urandom(32), os.urandom(2 * MIB + 7)
    aead = StreamingAead(raw)
    pieces = [plaintext[i : i + 4099] for i in range(0, len(plaintext), 4099)]
    ciphertext = b"".join(aead.encrypt(pieces, b"ad"))
    assert aead.decrypt_bytes(ciphertext, b"ad") == plaintext


@pytest.fixture(scope="module")
def sample() -> tuple[bytes, bytes, bytes]:
    raw, plaintext = os.urandom(32), os.urandom(3 * MIB + 100)
    return raw, plaintext, StreamingAead(raw).encrypt_bytes(plaintext, b"ctx")


def _fails(raw: bytes, ciphertext: bytes, ad: bytes = b"ctx") -> str:
    with pytest.raises(IntegrityError) as caught:
        StreamingAead(raw).decrypt_bytes(ciphertext, ad)
    return caught.value.detail


def test_flipped_bit_fails(sample: tuple[bytes, bytes, bytes]) -> None:
    raw, _, ciphertext = sample
    for position in (0, 5, HEADER_SIZE + 3, 2 * MIB + 17, len(ciphertext) - 1):
        tampered = bytearray(ciphertext)
        tampered[position] ^= 0x01
        _fails(raw, bytes(tampered))


def test_swapped_segments_fail(sample: tuple[bytes, bytes, bytes]) -> None:
    raw, _, ciphertext = sample
    one, two = ciphertext[MIB : 2 * MIB], ciphertext[2 * MIB : 3 * MIB]
    swapped = ciphertext[:MIB] + two + one + ciphertext[3 * MIB :]
    assert "segment 1" in _fails(raw, swapped)


def test_truncated_tail_fails_even_on_a_segment_boundary(sample: tuple[bytes, bytes, bytes]) -> None:
    raw, _, ciphertext = sample
    _fails(raw, ciphertext[:-1])
    _fails(raw, ciphertext[: 3 * MIB])  # a whole last segment dropped: the new last one is not marked last
    _fails(raw, ciphertext[:10])


def test_wrong_associated_data_or_key_fails(sample: tuple[bytes, bytes, bytes]) -> None:
    raw, _, ciphertext = sample
    _fails(raw, ciphertext, b"ctx2")
    _fails(os.urandom(32), ciphertext)


def test_range_decrypt_reads_only_the_segments_needed(sample: tuple[bytes, bytes, bytes]) -> None:
    raw, plaintext, ciphertext = sample
    reads: list[int] = []

    def read_at(offset: int, length: int) -> bytes:
        reads.append(offset)
        return ciphertext[offset : offset + length]

    start, end = 2 * MIB + 5, 2 * MIB + 900
    got = b"".join(StreamingAead(raw).decrypt_range(read_at, len(ciphertext), b"ctx", start, end))
    assert got == plaintext[start:end]
    assert reads == [0, 2 * MIB]  # the header, then the one segment holding the range
    across = b"".join(StreamingAead(raw).decrypt_range(read_at, len(ciphertext), b"ctx", FIRST - 10, FIRST + 10))
    assert across == plaintext[FIRST - 10 : FIRST + 10]


def test_nonces_never_repeat_under_one_key() -> None:
    """10^6 encryptions under one data key: every (per-object key salt, nonce prefix) is fresh,
    and within an object the segment counter makes each nonce distinct."""
    aead = StreamingAead(os.urandom(32))
    headers = {aead.new_header(b"")[0] for _ in range(1_000_000)}
    assert len(headers) == 1_000_000
    salts = {h[1:33] for h in headers}
    prefixes = {h[33:] for h in headers}
    assert len(salts) == 1_000_000 and len(prefixes) > 999_000


def test_layout_round_trips() -> None:
    layout = Layout()
    for size in [*SIZES, 10 * MIB, 10 * MIB - 1]:
        assert layout.plaintext_size(layout.ciphertext_size(size)) == size
    with pytest.raises(IntegrityError):
        layout.plaintext_size(HEADER_SIZE + 15)

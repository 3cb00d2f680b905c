"""Fixed-width bit packing of codebook indices: the payload of every neural codec's packets.

Indices are written MSB first at `bits` bits each, padded with zero bits to a whole byte. Codecs
choose a packet size whose bit count is a whole number of bytes (`frames_per_packet`), so
nothing is padded and the bitrate is exactly frames x codebooks x bits.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import CodecError

__all__ = ["pack_codes", "unpack_codes", "frames_per_whole_bytes", "code_bits"]


def code_bits(codebook_size: int) -> int:
    """Bits per index of a codebook: log2 of its size, which must be a power of two."""
    bits = int(codebook_size).bit_length() - 1
    if codebook_size < 2 or 1 << bits != codebook_size:
        raise ValueError(f"codebook size {codebook_size} is not a power of two >= 2")
    return bits


def frames_per_whole_bytes(bits_per_frame: int) -> int:
    """The fewest frames whose bits fill whole bytes (1, 2, 4 or 8)."""
    return 8 // math.gcd(bits_per_frame, 8)


def pack_codes(codes: np.ndarray, bits: int) -> bytes:
    """Non-negative integers < 2**bits, in order, to bytes (MSB first, zero-padded)."""
    values = np.asarray(codes, dtype=np.int64).ravel()
    if values.size and (values.min() < 0 or values.max() >= 1 << bits):
        raise CodecError(f"code out of range for {bits}-bit packing")
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
    bitarray = ((values[:, None] >> shifts) & 1).astype(np.uint8).ravel()
    return np.packbits(bitarray).tobytes()


def unpack_codes(data: bytes, bits: int, count: int) -> np.ndarray:
    """The first `count` `bits`-bit integers of `data`; CodecError if it is too short."""
    if len(data) * 8 < count * bits:
        raise CodecError(f"packet of {len(data)} bytes is too short for {count} codes of {bits} bits")
    bitarray = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[: count * bits].reshape(count, bits)
    weights = 1 << np.arange(bits - 1, -1, -1, dtype=np.int64)
    return bitarray.astype(np.int64) @ weights

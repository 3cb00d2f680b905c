"""Packets of neural codecs: fixed-width codes of a group of frames per packet, and concealment.

A packet holds `frames_per_packet` frames, each frame's codes (one per codebook) in codebook
order, bit-packed at the codebook's bit width (bitpack.py). Lost packets (None) are concealed
by repeating the codes of the last packet received; frames before the first packet received
have no codes to repeat and decode as silence (their samples are zeroed).
"""

from __future__ import annotations

import numpy as np

from ..errors import CodecError
from .bitpack import pack_codes, unpack_codes

__all__ = ["codes_to_packets", "packets_to_codes", "silence_mask", "check_header"]


def check_header(header: dict, mine: dict, backend: str) -> None:
    """Refuse a stream whose codebooks, packet grouping or weights differ from this decoder's."""
    differing = sorted(key for key, value in mine.items() if header.get(key) != value)
    if differing:
        theirs = ", ".join(f"{key}={str(header.get(key))[:20]}" for key in differing)
        ours = ", ".join(f"{key}={mine[key]}" for key in differing)
        raise CodecError(f"{backend}: stream was written with {theirs}; this decoder is configured with {ours}")


def codes_to_packets(codes: np.ndarray, bits: int, frames_per_packet: int) -> list[bytes]:
    """(n_q, frames) codes, frames a multiple of frames_per_packet, to packets."""
    n_q, frames = codes.shape
    if frames % frames_per_packet:
        raise CodecError(f"{frames} frames do not fill whole packets of {frames_per_packet}")
    frame_major = codes.T.reshape(frames // frames_per_packet, frames_per_packet * n_q)
    return [pack_codes(group, bits) for group in frame_major]


def packets_to_codes(packets: list[bytes | None], n_q: int, bits: int, frames_per_packet: int):
    """(codes (n_q, frames), leading) where lost packets repeat the previous packet's codes and
    `leading` counts the frames before the first packet received (their codes are zeros)."""
    count = n_q * frames_per_packet
    expected = (count * bits + 7) // 8
    groups, last, leading = [], None, 0
    for index, packet in enumerate(packets):
        if packet is not None:
            if len(packet) != expected:
                raise CodecError(f"packet {index} has {len(packet)} bytes; expected {expected}")
            last = unpack_codes(packet, bits, count)
        elif last is None:
            leading += frames_per_packet
        groups.append(last if last is not None else np.zeros(count, np.int64))
    if not groups:
        raise CodecError("bitstream holds no packets")
    codes = np.stack(groups).reshape(-1, n_q).T
    return np.ascontiguousarray(codes), leading


def silence_mask(total_samples: int, leading_frames: int, hop: int) -> np.ndarray:
    """1.0 everywhere except the samples of the leading lost frames."""
    mask = np.ones(total_samples, np.float32)
    mask[: leading_frames * hop] = 0.0
    return mask

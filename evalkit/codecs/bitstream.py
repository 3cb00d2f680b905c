"""The container every codec's bytes travel in: magic, version, header, packets, checksum.

Layout (all integers big-endian)::

    b"EVKB"  u8 format version  u8 len(backend)  backend (ascii)
    u16 len(header)  header (compact JSON: what the decoder needs besides the packets)
    u32 packet count, then per packet: varint length, payload bytes
    u32 CRC-32 of everything before it

Only the packet payloads count as the codec's bitrate; the rest is reported as container
overhead. Never pickle: a foreign, truncated or corrupt stream raises CodecError.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field

from ..errors import CodecError

__all__ = ["Bitstream", "MAGIC", "FORMAT_VERSION"]

MAGIC = b"EVKB"
FORMAT_VERSION = 1
_MAX_PACKET = 1 << 24
_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


@dataclass(frozen=True)
class Bitstream:
    """A codec's header and packets; `packets[i]` is None when the packet was lost."""

    backend: str
    header: dict
    packets: list[bytes | None] = field(default_factory=list)

    @property
    def payload_bytes(self) -> int:
        return sum(len(p) for p in self.packets if p is not None)

    def to_bytes(self) -> bytes:
        packets = [p for p in self.packets if p is not None]
        if len(packets) < len(self.packets):
            raise CodecError(f"{self.backend}: a bitstream with lost packets cannot be serialised")
        name = self.backend.encode("ascii")
        header = json.dumps(self.header, separators=(",", ":"), sort_keys=True).encode()
        if len(name) > 255 or len(header) > 0xFFFF:
            raise CodecError(f"{self.backend}: backend name or header too large for the container")
        if any(len(p) > _MAX_PACKET for p in packets):
            raise CodecError(f"{self.backend}: a packet is larger than the container's {_MAX_PACKET} bytes")
        out = bytearray(MAGIC)
        out += struct.pack(">BB", FORMAT_VERSION, len(name)) + name
        out += struct.pack(">H", len(header)) + header
        out += struct.pack(">I", len(packets))
        for packet in packets:
            out += _varint(len(packet)) + packet
        out += struct.pack(">I", zlib.crc32(out))
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes, backend: str) -> Bitstream:
        """Parse and verify a stream written by `backend`; any defect raises CodecError.

        Every length and count is checked against the bytes actually present before it is used,
        so a crafted stream cannot make the parser allocate or loop beyond its own size.
        """
        reader = _Reader(data, backend)
        if len(data) < len(MAGIC) + 10:
            raise CodecError(f"{backend}: bitstream is empty or truncated ({len(data)} bytes)")
        if reader.take(4) != MAGIC:
            raise CodecError(f"{backend}: not an evalkit bitstream (bad magic)")
        (crc,) = struct.unpack(">I", data[-4:])
        if zlib.crc32(data[:-4]) != crc:
            raise CodecError(f"{backend}: bitstream is corrupt or truncated (checksum mismatch)")
        version, name_len = struct.unpack(">BB", reader.take(2))
        if version != FORMAT_VERSION:
            raise CodecError(
                f"{backend}: bitstream format version {version} is not supported (expected {FORMAT_VERSION})"
            )
        name = reader.take(name_len).decode("ascii", "replace")
        if name != backend:
            raise CodecError(f"{backend}: bitstream was written by codec backend {name!r}")
        (header_len,) = struct.unpack(">H", reader.take(2))
        header = _parse_header(reader.take(header_len), backend)
        (count,) = struct.unpack(">I", reader.take(4))
        if count > reader.remaining:  # every packet needs at least its one-byte length
            raise CodecError(
                f"{backend}: bitstream declares {count} packets but holds only {reader.remaining} bytes for them"
            )
        packets: list[bytes | None] = [reader.take(reader.varint()) for _ in range(count)]
        if reader.remaining:
            raise CodecError(f"{backend}: bitstream has {reader.remaining} unexpected trailing bytes")
        return cls(backend, header, packets)


def _parse_header(raw: bytes, backend: str) -> dict:
    """The header must be one JSON object; anything else (a list, a number, deep nesting) is refused."""
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError):
        raise CodecError(f"{backend}: bitstream header is not valid JSON") from None
    if not isinstance(header, dict):
        kind = _JSON_KINDS.get(type(header), type(header).__name__)
        raise CodecError(f"{backend}: bitstream header is a JSON {kind}, not an object")
    return header


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class _Reader:
    def __init__(self, data: bytes, backend: str):
        self.data, self.backend, self.pos = data, backend, 0

    @property
    def remaining(self) -> int:
        """Bytes left before the checksum."""
        return len(self.data) - 4 - self.pos

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data) - 4:
            raise CodecError(f"{self.backend}: bitstream is truncated (needs {end} bytes, has {len(self.data) - 4})")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def varint(self) -> int:
        """A packet length: at most four bytes, minimally encoded, no larger than _MAX_PACKET."""
        value = 0
        for shift in range(0, 28, 7):
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if byte == 0 and shift:
                    raise CodecError(f"{self.backend}: bitstream has a malformed packet length (not minimal)")
                break
        else:
            raise CodecError(f"{self.backend}: bitstream has a malformed packet length (more than four bytes)")
        if value > _MAX_PACKET:
            raise CodecError(f"{self.backend}: bitstream declares an impossible packet size {value}")
        return value

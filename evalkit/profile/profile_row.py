"""The profiles table's row as a dataclass: the one list of its columns (the ORM builds them from it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .resource_use import Cost

__all__ = ["Profile"]


@dataclass(frozen=True)
class Profile(Cost):
    """One row of the profiles table: the cost measurement (Cost's fields) and the rest; field names are its
    column names, and `X | None` marks a nullable column. A string field's metadata gives its column's
    length; `bigint` marks a count that can pass 2**31 (parameter counts)."""

    codec: str  # card name, config hash and codec version: the key, shared with the loss curves' table
    codec_hash: str
    codec_version: str
    backend: str = field(metadata={"length": 100})
    family: str = field(metadata={"length": 100})
    sample_rate: int
    nominal_bitrate: float | None
    params_encoder: int | None = field(metadata={"bigint": True})  # neural codecs only (torch_modules); None for DSP
    params_decoder: int | None = field(metadata={"bigint": True})
    macs_encoder_per_s: float | None  # multiply-accumulates per second of audio
    macs_decoder_per_s: float | None
    frame_samples: int
    declared_delay: int  # lookahead, samples at the codec rate
    measured_delay: int | None
    declared_latency_ms: float  # frame + lookahead
    measured_latency_ms: float | None  # frame + measured delay
    latency_ok: bool | None  # None: output silent, not measurable
    streaming: bool
    concealment: str = field(metadata={"length": 32})
    packages: dict = field(default_factory=dict)

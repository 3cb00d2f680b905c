"""The codec contract: `encode(Audio) -> bytes`, `decode(bytes) -> Audio`, and `CodecInfo`.

A backend subclasses `Codec` and implements two methods on plain arrays at its native rate:

* `_encode(samples) -> (header, packets)`: samples are float32 (channels, frames), already
  zero-padded at the end by `lookahead` samples and up to a whole frame, so the encoder
  flushes everything the decoder must output; the header holds what the decoder needs besides the packets.
* `_decode(header, packets) -> samples`: `packets[i]` is None for a lost packet (the backend
  conceals it or raises CodecError). The output may be longer than the input; the base class
  trims it to `frames + lookahead`, so decoded audio lags the input by exactly
  `info.lookahead_samples`.

Everything the decoder needs travels in the bytes; the decoder object is built from the same
parameters as the encoder, as a real receiver would be configured.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..audio import Audio, require_channels
from ..errors import AudioError, CodecError
from ..registry import Registry
from .bitstream import Bitstream

__all__ = ["Codec", "CodecInfo", "BACKENDS", "register_backend"]

BACKENDS: Registry[type["Codec"]] = Registry("codec backend", "evalkit.codecs")


def register_backend(name: str):
    """Class decorator: register a Codec subclass under `name` and record the name on it."""

    def decorator(cls: type[Codec]) -> type[Codec]:
        cls.backend = name
        BACKENDS.add(name, cls)
        return cls

    return decorator


@dataclass(frozen=True)
class CodecInfo:
    """What a configured codec declares about itself; the harness checks it by measurement."""

    name: str  # backend name
    version: str  # library and version that produce the bits, e.g. "libopus 1.5.2"
    family: str  # codec family shown in tables, e.g. "opus", "amr-wb", "anchor"
    sample_rate: int  # native rate; the harness resamples other rates to and from it
    frame_samples: int  # samples per packet
    lookahead_samples: int  # delay of decoded output behind the input, in samples
    nominal_bitrate: float | None  # bits per second of packet payload; None if not defined
    channels: int = 1
    bitrate_tolerance: float = 0.10  # relative tolerance of measured vs nominal bitrate
    waveform_matching: bool = True  # False for parametric coders: delay is measured on envelopes
    streaming: bool = True  # False when encoding needs the whole signal (e.g. zero-phase filters)
    concealment: str = "codec"  # lost packets: "codec" (its own PLC), "repeat" or "zero"
    needs: tuple[str, ...] = ()  # what it needs to run: packages, tools, "gpu", weights

    @property
    def algorithmic_latency_ms(self) -> float:
        return 1000.0 * (self.frame_samples + self.lookahead_samples) / self.sample_rate

    @property
    def frame_ms(self) -> float:
        return 1000.0 * self.frame_samples / self.sample_rate


class Codec(ABC):
    """Base class of every codec backend."""

    backend: ClassVar[str] = ""
    install_hint: ClassVar[str] = ""  # shown when `unavailable()` says the library is missing

    @classmethod
    def unavailable(cls) -> str | None:
        """None when the backend can run here, else a reason with an install hint."""
        return None

    @property
    @abstractmethod
    def info(self) -> CodecInfo: ...

    @abstractmethod
    def _encode(self, samples: np.ndarray) -> tuple[dict, list[bytes]]: ...

    @abstractmethod
    def _decode(self, header: dict, packets: list[bytes | None]) -> np.ndarray: ...

    # -- the contract -----------------------------------------------------------------

    def encode(self, audio: Audio) -> bytes:
        return self.encode_packets(audio).to_bytes()

    def decode(self, data: bytes) -> Audio:
        return self.decode_packets(Bitstream.from_bytes(bytes(data), self.backend))

    def encode_packets(self, audio: Audio) -> Bitstream:
        """Encode to a Bitstream whose packets can be dropped to simulate loss."""
        info = self.info
        name = audio.id or "audio"
        if audio.sample_rate != info.sample_rate:
            raise AudioError(
                f"{name}: sample rate {audio.sample_rate} Hz; codec {info.name} takes {info.sample_rate} Hz "
                "(evalkit.harness.roundtrip resamples for you)"
            )
        require_channels(audio, info.channels, f"codec {info.name}")
        try:
            header, packets = self._encode(self._padded(audio.samples))
        except CodecError:
            raise
        except Exception as err:  # a library failure names the item instead of crashing the run
            raise CodecError(f"{name}: {info.name} failed to encode ({type(err).__name__}: {err})") from err
        return Bitstream(self.backend, {"frames": audio.frames, **header}, list(packets))

    def decode_packets(self, stream: Bitstream) -> Audio:
        """Decode a Bitstream (lost packets are None) to audio lagging the input by the lookahead."""
        info = self.info
        frames = stream.header.get("frames")
        if not isinstance(frames, int) or frames <= 0:
            raise CodecError(f"{info.name}: bitstream header has no valid frame count")
        try:
            samples = np.asarray(self._decode(stream.header, stream.packets), dtype=np.float32)
        except CodecError:
            raise
        except Exception as err:
            raise CodecError(f"{info.name}: failed to decode ({type(err).__name__}: {err})") from err
        if samples.ndim == 1:
            samples = samples[np.newaxis, :]
        if samples.size == 0 or not np.all(np.isfinite(samples)):
            raise CodecError(f"{info.name}: decoder returned no audio or non-finite samples")
        want = frames + info.lookahead_samples
        samples = samples[:, :want]
        if samples.shape[1] < want:
            samples = np.pad(samples, ((0, 0), (0, want - samples.shape[1])))
        return Audio(samples, info.sample_rate)

    def _padded(self, samples: np.ndarray) -> np.ndarray:
        frame = self.info.frame_samples
        total = samples.shape[1] + self.info.lookahead_samples
        total = frame * math.ceil(total / frame)
        return np.pad(samples, ((0, 0), (0, total - samples.shape[1])))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.backend}>"

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
parameters as the encoder, as a real receiver would be configured. The stream names that
configuration (`Codec.config`: the constructor's parameters, defaults included), and a decoder
configured otherwise refuses it with a `StreamConfigError` naming both.

The header's frame count and the packet count are checked against each other and against the
codec's frame size before anything is decoded, so a crafted stream cannot make the decoder
produce (or allocate) more audio than its packets can carry.
"""

from __future__ import annotations

import inspect
import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..audio import Audio, require_channels
from ..errors import AudioError, CodecError, failure_line
from ..registry import Registry
from .bitstream import Bitstream

__all__ = ["Codec", "CodecInfo", "BACKENDS", "register_backend", "StreamConfigError", "check_packet_sizes"]

BACKENDS: Registry[type[Codec]] = Registry(
    "codec backend",
    "evalkit.codecs",
    has_builtins=True,
    accepts=lambda target: isinstance(target, type) and issubclass(target, Codec),
    expected="a Codec subclass or a module that registers backends",
)


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

    def __post_init__(self) -> None:
        # A plug-in's mistake here would otherwise become a huge allocation, a division by zero
        # or a stored latency/bitrate nobody measured.
        for key in ("sample_rate", "frame_samples", "channels"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise CodecError(f"codec {self.name}: CodecInfo.{key} is {value!r}; it must be a positive integer")
        lookahead = self.lookahead_samples
        if isinstance(lookahead, bool) or not isinstance(lookahead, int) or not 0 <= lookahead <= 60 * self.sample_rate:
            raise CodecError(
                f"codec {self.name}: CodecInfo.lookahead_samples is {lookahead!r}; it must be a whole number "
                "of samples from 0 to one minute"
            )
        bitrate = self.nominal_bitrate
        if bitrate is not None and not (isinstance(bitrate, (int, float)) and 0 < bitrate < 1e9):
            raise CodecError(
                f"codec {self.name}: CodecInfo.nominal_bitrate is {bitrate!r}; give bits per second "
                "(above 0, below 1 Gbit/s) or None"
            )

    @property
    def algorithmic_latency_ms(self) -> float:
        return 1000.0 * (self.frame_samples + self.lookahead_samples) / self.sample_rate

    @property
    def frame_ms(self) -> float:
        return 1000.0 * self.frame_samples / self.sample_rate


class StreamConfigError(CodecError):
    """A stream was written by a codec configured differently from the one asked to decode it."""

    def __init__(self, message: str, stream_config: dict):
        super().__init__(message)
        self.stream_config = stream_config


def check_packet_sizes(packets: list[bytes | None], smallest: int, largest: int, backend: str) -> None:
    """Refuse a packet outside [smallest, largest] bytes before it reaches a decoder library."""
    for index, packet in enumerate(packets):
        if packet is not None and not smallest <= len(packet) <= largest:
            span = f"{largest}" if smallest == largest else f"{smallest} to {largest}"
            raise CodecError(f"{backend}: packet {index} has {len(packet)} bytes; this stream's packets have {span}")


class Codec(ABC):
    """Base class of every codec backend."""

    backend: ClassVar[str] = ""
    install_hint: ClassVar[str] = ""  # shown when `unavailable()` says the library is missing
    # Constructor parameters that stay out of the stream's configuration: local file paths
    # (the weights' sha256, which does travel, pins what they hold).
    local_params: ClassVar[tuple[str, ...]] = ()
    # Packets a stream may carry beyond those its samples need (encoders' flush packets).
    flush_packets: ClassVar[int] = 4
    _config: dict  # set by __new__: the configuration this codec's streams name

    def __new__(cls, *args, **kwargs):
        codec = super().__new__(cls)
        codec._config = cls.stream_config(*args, **kwargs)
        return codec

    @classmethod
    def stream_config(cls, *args, **kwargs) -> dict:
        """The configuration a codec built with these arguments has (defaults included, as JSON
        values): what its streams name, and what a decoder must match."""
        try:
            bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
        except TypeError:
            return {}  # __init__ refuses these arguments with its own message
        bound.apply_defaults()
        params = {k: v for k, v in list(bound.arguments.items())[1:] if k not in cls.local_params}
        return json.loads(json.dumps(params, sort_keys=True, default=str))

    @property
    def config(self) -> dict:
        return getattr(self, "_config", {})

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
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CodecError(f"{self.backend}: decode takes bytes, got {type(data).__name__}")
        return self.decode_packets(Bitstream.from_bytes(bytes(data), self.backend))

    def encode_packets(self, audio: Audio) -> Bitstream:
        """Encode to a Bitstream whose packets can be dropped to simulate loss."""
        if not isinstance(audio, Audio):
            raise AudioError(
                f"{self.backend}: encode takes evalkit.Audio(samples, sample_rate), got {type(audio).__name__}"
            )
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
        # SystemExit too: a library that calls sys.exit() fails this item, not the whole run
        except (Exception, SystemExit) as err:  # a library failure names the item instead of crashing the run
            raise CodecError(f"{name}: {info.name} failed to encode ({failure_line(err)})") from err
        _check_encoded(info.name, header, packets)
        return Bitstream(self.backend, {"frames": audio.frames, "config": self.config, **header}, list(packets))

    def decode_packets(self, stream: Bitstream) -> Audio:
        """Decode a Bitstream (lost packets are None) to audio lagging the input by the lookahead."""
        info = self.info
        self._check_config(stream.header)
        frames = self._checked_frames(stream, info)
        try:
            samples = _float_samples(info.name, self._decode(stream.header, stream.packets))
        except CodecError:
            raise
        except (Exception, SystemExit) as err:
            raise CodecError(f"{info.name}: failed to decode ({failure_line(err)})") from err
        if samples.ndim == 1:
            samples = samples[np.newaxis, :]
        if samples.size == 0 or not np.all(np.isfinite(samples)):
            raise CodecError(f"{info.name}: decoder returned no audio or non-finite samples")
        _check_decoded(info, samples, frames)
        want = frames + info.lookahead_samples
        samples = samples[:, :want]
        if samples.shape[1] < want:
            samples = np.pad(samples, ((0, 0), (0, want - samples.shape[1])))
        return Audio(samples, info.sample_rate)

    def _check_config(self, header: dict) -> None:
        if not isinstance(header, dict):
            raise CodecError(f"{self.backend}: bitstream header is a {type(header).__name__}, not a mapping")
        theirs, mine = header.get("config"), self.config
        if not isinstance(theirs, dict):
            raise CodecError(
                f"{self.backend}: bitstream does not name its codec configuration "
                "(written by an older evalkit or damaged); encode the audio again"
            )
        if theirs != mine:
            raise StreamConfigError(
                f"{self.backend}: stream was encoded with {_differences(theirs, mine)}, but this decoder is "
                f"configured with {_differences(mine, theirs)}; decode it with the codec card that wrote it",
                theirs,
            )

    def _checked_frames(self, stream: Bitstream, info: CodecInfo) -> int:
        """The header's frame count, if the packets can carry it and it needs about that many packets."""
        frames, count = stream.header.get("frames"), len(stream.packets)
        if isinstance(frames, bool) or not isinstance(frames, int) or frames <= 0:
            raise CodecError(f"{info.name}: bitstream header has no valid frame count")
        if frames > count * info.frame_samples:
            raise CodecError(
                f"{info.name}: bitstream declares {frames} samples but its {count} packets "
                f"carry at most {count * info.frame_samples}"
            )
        needed = -(-(frames + info.lookahead_samples) // info.frame_samples)
        if count > needed + self.flush_packets:
            raise CodecError(f"{info.name}: bitstream holds {count} packets, but its {frames} samples need {needed}")
        return frames

    def _padded(self, samples: np.ndarray) -> np.ndarray:
        frame = self.info.frame_samples
        total = samples.shape[1] + self.info.lookahead_samples
        total = frame * math.ceil(total / frame)
        return np.pad(samples, ((0, 0), (0, total - samples.shape[1])))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.backend}>"


def _check_encoded(codec: str, header, packets) -> None:
    """An encoder's output as the container takes it: a mapping and a sequence of bytes."""
    if not isinstance(header, dict):
        raise CodecError(f"{codec}: _encode returned a {type(header).__name__} header; return (dict, list of bytes)")
    if isinstance(packets, (str, bytes, bytearray)) or not isinstance(packets, (list, tuple)):
        raise CodecError(f"{codec}: _encode returned packets as {type(packets).__name__}; return a list of bytes")
    for index, packet in enumerate(packets):
        if not isinstance(packet, (bytes, bytearray)):
            raise CodecError(
                f"{codec}: _encode returned packet {index} as {type(packet).__name__}, not bytes (use .tobytes())"
            )


def _float_samples(codec: str, decoded) -> np.ndarray:
    """The decoder's output as float32; integer PCM is refused, it is 32768 times too loud as floats."""
    raw = np.asarray(decoded)
    if raw.dtype.kind != "f":
        raise CodecError(
            f"{codec}: _decode returned {raw.dtype} samples; return floats in [-1, 1] (integer PCM: divide by 32768)"
        )
    return raw.astype(np.float32)


def _check_decoded(info: CodecInfo, samples: np.ndarray, frames: int) -> None:
    """Refuse decoded audio the base class would otherwise pad into a made-up signal."""
    if samples.ndim != 2 or samples.shape[0] != info.channels:
        raise CodecError(
            f"{info.name}: decoder returned samples of shape {samples.shape}; "
            f"the codec declares {info.channels} channel(s): (channels, frames) or (frames,)"
        )
    if samples.shape[1] < frames - info.frame_samples:  # padding more than a frame would invent audio
        raise CodecError(
            f"{info.name}: decoder returned {samples.shape[1]} samples for a {frames}-sample input "
            f"at {info.sample_rate} Hz (wrong sample rate or lost output?)"
        )


def _differences(ours: dict, other: dict, limit: int = 6) -> str:
    """The settings of `ours` that `other` does not share, as short key=value pairs."""
    keys = [k for k in sorted(set(ours) | set(other), key=str) if ours.get(k, _ABSENT) != other.get(k, _ABSENT)]
    shown = [f"{k}={_short(ours.get(k, _ABSENT))}" for k in keys[:limit]]
    return ", ".join(shown + ([f"... ({len(keys) - limit} more)"] if len(keys) > limit else [])) or "the same settings"


def _short(value) -> str:
    text = "(none)" if value is _ABSENT else json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


_ABSENT = object()

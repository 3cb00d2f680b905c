"""The harness side of the codec contract: resample, encode to bytes, decode, measure, align."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .alignment import estimate_lag
from .audio import MIN_COST_SECONDS, Audio, align, check_content, resample, too_long_to_score
from .audio import downmix as downmix_audio
from .codecs import Codec, CodecInfo
from .errors import AudioError

__all__ = ["RoundTrip", "roundtrip", "measure_delay", "delay_tolerance"]


@dataclass(frozen=True)
class RoundTrip:
    """One item through one codec: aligned output plus what was measured on the way."""

    decoded: Audio  # at the input's rate and length, aligned sample-exactly with it
    data: bytes  # the full bitstream
    payload_bytes: int  # codec packets only
    duration: float  # seconds of input audio
    declared_delay: int  # samples at the codec rate
    measured_delay: int | None  # samples at the codec rate; None when not measurable (see measure_delay)
    delay_tolerance: int  # samples
    encode_seconds: float
    decode_seconds: float

    @property
    def overhead_bytes(self) -> int:
        return len(self.data) - self.payload_bytes

    @property
    def bitrate(self) -> float:
        """Measured payload bitrate in bit/s: what the codec itself spends."""
        return 8.0 * self.payload_bytes / self.duration

    @property
    def total_bitrate(self) -> float:
        """Bit/s including evalkit's container (header, packet lengths, checksum)."""
        return 8.0 * len(self.data) / self.duration

    @property
    def delay_ok(self) -> bool | None:
        if self.measured_delay is None:
            return None
        return abs(self.measured_delay - self.declared_delay) <= self.delay_tolerance


def roundtrip(codec: Codec, audio: Audio, downmix: bool = False, measure: bool = True) -> RoundTrip:
    """Encode and decode `audio` at any rate; the output matches the input's rate and length.

    Multichannel input is an error unless the codec takes that many channels or `downmix`
    is set (then the channels are averaged first). `measure=False` leaves the delay check to
    the caller (measured_delay None), which aligns the output with the input anyway.
    """
    if not isinstance(audio, Audio):
        raise AudioError(f"roundtrip takes evalkit.Audio(samples, sample_rate), got {type(audio).__name__}")
    if long := too_long_to_score(audio, audio.id or "audio"):  # the codec and the delay check would hold it all
        raise AudioError(long)
    info = codec.info
    source = downmix_audio(audio) if downmix and info.channels == 1 else audio
    native = resample(source, info.sample_rate)
    start = time.perf_counter()
    data, payload_bytes = _encode(codec, native)
    middle = time.perf_counter()
    decoded = codec.decode(data)
    end = time.perf_counter()
    # Judged on the input as given: resampling a constant adds edge transients that are no signal.
    measurable = measure and check_content(source, MIN_COST_SECONDS).problem is None
    measured = measure_delay(native, decoded, info.lookahead_samples, info.waveform_matching) if measurable else None
    aligned = align(decoded, info.lookahead_samples, native.frames)
    back = align(resample(aligned, source.sample_rate), 0, source.frames)
    return RoundTrip(
        decoded=Audio(back.samples, source.sample_rate, audio.id),
        data=data,
        payload_bytes=payload_bytes,
        duration=source.duration,
        declared_delay=info.lookahead_samples,
        measured_delay=measured,
        delay_tolerance=delay_tolerance(info),
        encode_seconds=middle - start,
        decode_seconds=end - middle,
    )


def delay_tolerance(info: CodecInfo, sample_rate: int | None = None) -> int:
    """One sample for waveform coders; for vocoders, whose timing is only defined to within
    their frame, half a frame and at least 5 ms. In samples at the codec's rate, or at
    `sample_rate` (rounded up) for audio resampled back to it."""
    samples = 1 if info.waveform_matching else max(info.sample_rate // 200, info.frame_samples // 2)
    return samples if sample_rate is None else -(-samples * sample_rate // info.sample_rate)


def measure_delay(ref: Audio, decoded: Audio, expected: int, waveform: bool = True) -> int | None:
    """Lag of decoded behind ref in samples (waveform cross-correlation, or envelopes for
    vocoders), by the same estimator that aligns every scored pair.

    None ("not measurable") where the signal cannot support a measurement: a silent output, or
    an input that is too short, constant or near-silent (check_content).
    """
    if check_content(ref).problem:
        return None
    search = max(expected * 2, ref.sample_rate // 20)
    found = estimate_lag(ref, decoded, search, "waveform" if waveform else "envelope")
    return None if found is None else found.lag


def _encode(codec: Codec, native: Audio) -> tuple[bytes, int]:
    """The bitstream and its payload size, counted as it is written (parsed back only for a
    codec that replaced `encode` itself)."""
    if type(codec).encode is Codec.encode:
        stream = codec.encode_packets(native)
        return stream.to_bytes(), stream.payload_bytes
    from .codecs.bitstream import Bitstream

    data = codec.encode(native)
    return data, Bitstream.from_bytes(data, codec.backend).payload_bytes

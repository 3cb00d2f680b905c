"""Algorithmic latency: declared (frame + lookahead) and checked by measuring the output delay.

A streaming codec must collect one frame before it can encode it, and its decoded output lags
the input by the lookahead on top, so the algorithmic latency is frame + lookahead. The frame
is a design fact; the lookahead is checked by cross-correlating decoded speech with the input
(`evalkit.harness.measure_delay`: high-passed waveforms, or envelopes for parametric coders),
and a difference beyond the harness's tolerance is flagged. Transmission, jitter buffering and
compute time are not part of it (they depend on the network and the device).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..audio import Audio
from ..harness import roundtrip

__all__ = ["Latency", "measure_latency"]


@dataclass(frozen=True)
class Latency:
    sample_rate: int
    frame_samples: int
    declared_delay: int  # lookahead: decoded output lags the input by this many samples
    measured_delay: int | None  # None when the decoded output is silent
    tolerance: int  # samples
    streaming: bool  # frame in, frame out (False: encoding needs the whole signal)

    @property
    def declared_ms(self) -> float:
        return 1000.0 * (self.frame_samples + self.declared_delay) / self.sample_rate

    @property
    def measured_ms(self) -> float | None:
        if self.measured_delay is None:
            return None
        return 1000.0 * (self.frame_samples + self.measured_delay) / self.sample_rate

    @property
    def ok(self) -> bool | None:
        """True when the measurement confirms the declaration, False on a mismatch, None if unmeasurable."""
        if self.measured_delay is None:
            return None
        return abs(self.measured_delay - self.declared_delay) <= self.tolerance


def measure_latency(codec, audio: Audio) -> Latency:
    """Round-trip `audio` (any rate; speech works best) and compare the output delay with the declaration."""
    info = codec.info
    run = roundtrip(codec, audio, downmix=True)
    return Latency(
        info.sample_rate,
        info.frame_samples,
        run.declared_delay,
        run.measured_delay,
        run.delay_tolerance,
        info.streaming,
    )

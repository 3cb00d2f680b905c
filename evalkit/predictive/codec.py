"""The `predictive` codec backend: LPCNet-style features coded by closed-loop prediction, the LPCNet vocoder.

Encoder: the features of evalkit.lpcnet (18 Bark cepstra, pitch period and correlation per 10 ms
frame); the cepstra coded closed loop (coder.py: the recurrent predictor, residuals with dynamic
bit allocation, residual.py), the pitch with the LPCNet quantizer's fields (pitch.py), all
range-coded per 40 ms packet with the card's allocation's trained models. The allocation (two
thresholds and a frame step) is the rate knob: a card names one of the weights' allocations.

Decoder: the same closed loop rebuilds the cepstra bit for bit; the LPCNet weights' vocoder
turns the features into speech. Latency as lpcnet's: 40 ms packets, 5 ms feature lookahead.

Header: allocation, both weights' sha256 prefixes; the packet count must match the length.
Lost packets: the cepstra of their frames are the predictor's extrapolation (zero residual) and
the pitch repeats the last packet's; before the first packet received the output is silent. The
predictor's state then differs from the encoder's, so the error can linger after a loss.
"""

from __future__ import annotations

import importlib.util
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from ..codecs.base import Codec, CodecInfo
from ..codecs.entropy import constriction_missing, constriction_version
from ..errors import CodecError, ConfigError
from ..neural.weights import pinned_path
from .coder import PACKET_FRAMES, CepstralCoder, ClosedLoop, Packet
from .model import PredictiveBundle, load_bundle
from .predictor import NB_CEPSTRA
from .residual import ResidualQuantizer

__all__ = ["PredictiveCodec", "lpcnet_missing"]

FRAME = 160  # samples per 10 ms feature frame at 16 kHz
PACKET_SAMPLES = PACKET_FRAMES * FRAME


def lpcnet_missing() -> str | None:
    if importlib.util.find_spec("evalkit.lpcnet") is None:
        return "needs the LPCNet-style codec (evalkit.lpcnet: features, pitch quantizer, vocoder), not in this install"
    return None


@lru_cache(maxsize=4)
def _bundle(path: Path, sha256: str) -> PredictiveBundle:
    try:
        return load_bundle(path)
    except ValueError as err:
        raise ConfigError(str(err)) from None


class PredictiveCodec(Codec):
    """Feature-domain predictive coding at a trained allocation, 16 kHz, 40 ms packets, variable bitrate."""

    concealment = "codec"

    def __init__(self, weights: str, sha256: str, allocation: str, vocoder: str, vocoder_sha256: str):
        from ..lpcnet.codec import load_pinned
        from ..lpcnet.features import LOOKAHEAD, NB_BANDS, RATE

        if NB_BANDS != NB_CEPSTRA:
            raise ConfigError(f"predictive: the LPCNet features have {NB_BANDS} cepstra, the predictor {NB_CEPSTRA}")
        self.sha256, self.vocoder_sha256 = sha256.lower(), vocoder_sha256.lower()
        bundle = _bundle(pinned_path(weights, sha256, "predictive"), self.sha256)
        try:
            self.entry, allocation_, models = bundle.allocation(allocation)
        except KeyError:
            raise ConfigError(
                f"predictive: {Path(weights).name} has no allocation {allocation!r}; "
                f"it has {', '.join(bundle.allocation_names())}"
            ) from None
        except (ValueError, TypeError) as err:
            raise ConfigError(f"predictive: {Path(weights).name}, allocation {allocation!r}: {err}") from None
        if not models.has_pitch:
            raise ConfigError(f"predictive: allocation {allocation!r} has no pitch models (trained without --pitch)")
        lpcnet = load_pinned(pinned_path(vocoder, vocoder_sha256, "predictive vocoder"), self.vocoder_sha256)
        from ..lpcnet.quantizer import PacketQuantizer
        from .pitch import PitchCoder

        self.allocation, self.rate, self.lookahead = allocation, RATE, LOOKAHEAD
        self.pitch = PitchCoder(PacketQuantizer(lpcnet.codebooks()))
        self.lpcnet_weights = lpcnet
        try:
            self.coder = CepstralCoder(
                bundle.predictor_arrays(), ResidualQuantizer(bundle.codebooks(), allocation_), models
            )
            ClosedLoop(bundle.predictor_arrays(), allocation_.frame_step).predictor.predict()  # shapes agree
        except (KeyError, ValueError, IndexError, TypeError) as err:  # a scalar or a short array: the wrong shape
            raise ConfigError(
                f"predictive: {Path(weights).name} is not a complete predictive bundle ({err}); "
                "train one with python -m evalkit.predictive.train"
            ) from None

    @cached_property
    def vocoder(self):
        """Built on first use: listing the codecs builds every card and must not compile numba kernels."""
        from ..lpcnet.codec import vocoder_from

        return vocoder_from(self.lpcnet_weights)

    @classmethod
    def unavailable(cls) -> str | None:
        return constriction_missing() or lpcnet_missing()

    @property
    def info(self) -> CodecInfo:
        return CodecInfo(
            name=self.backend,  # the results store keeps 64 characters of version
            version=f"predictive {self.sha256[:10]} vocoder {self.vocoder_sha256[:10]} {constriction_version()}",
            family="neural-predictive",
            sample_rate=self.rate,
            frame_samples=PACKET_SAMPLES,
            lookahead_samples=self.lookahead,
            nominal_bitrate=float(self.entry["bitrate"]),
            bitrate_tolerance=0.35,
            waveform_matching=False,
            concealment=self.concealment,
            needs=("constriction", "weights"),
        )

    def _header(self) -> dict:
        return {"allocation": self.allocation, "weights": self.sha256[:16], "vocoder": self.vocoder_sha256[:16]}

    # -- encoder ---------------------------------------------------------------------------

    def _encode(self, samples):
        packets, _ = self.encode_features(self.features(samples[0]))
        return self._header(), packets

    def features(self, samples: np.ndarray) -> np.ndarray:
        from ..lpcnet.features import features

        feats = features(samples)
        return feats[: len(feats) - len(feats) % PACKET_FRAMES]

    def encode_features(self, feats: np.ndarray) -> tuple[list[bytes], np.ndarray]:
        """(packets, the cepstra as the decoder will rebuild them) of features (frames, 20)."""
        codes, reconstruction = self.coder.analyse(feats[:, :NB_CEPSTRA])
        pitch = self.pitch.fields_per_packet(feats)
        return [self.coder.packet_bytes(Packet(p, c)) for p, c in zip(pitch, codes)], reconstruction

    # -- decoder ---------------------------------------------------------------------------

    def _decode(self, header, packets):
        mine = self._header()
        if any(header.get(key) != value for key, value in mine.items()):
            raise CodecError(f"predictive: stream was written with {header}, this decoder is configured as {mine}")
        expected = -(-(header["frames"] + self.lookahead) // PACKET_SAMPLES)
        if len(packets) != expected:
            raise CodecError(
                f"predictive: stream declares {header['frames']} samples ({expected} packets) "
                f"but holds {len(packets)} packets"
            )
        feats, leading = self.decode_features(packets)
        speech = self.vocoder.decode(feats)
        speech[: leading * PACKET_SAMPLES] = 0.0
        return np.concatenate([np.zeros(self.lookahead, np.float32), speech])

    def decode_features(self, packets: list[bytes | None]) -> tuple[np.ndarray, int]:
        """(features (frames, 20), packets lost before the first one received)."""
        parsed = [None if p is None else self.coder.read_packet(p, with_pitch=True) for p in packets]
        if all(p is None for p in parsed):
            raise CodecError("predictive: every packet was lost")
        ceps = self.coder.synthesise([None if p is None else p.codes for p in parsed])
        leading = next(i for i, p in enumerate(parsed) if p is not None)
        pitch, last = [], None
        for packet in parsed:
            last = self.pitch.features(packet.pitch) if packet is not None else last
            pitch.append(last if last is not None else np.tile([[100.0, 0.0]], (PACKET_FRAMES, 1)))
        return np.concatenate([ceps, np.concatenate(pitch)], axis=1), leading

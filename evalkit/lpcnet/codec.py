"""The `lpcnet` codec backend: LPCNet features, the 1.6 kbit/s quantizer and the framewise vocoder.

Bitstream: one packet per 40 ms (four 10 ms frames). `quantized: true` (the default): the
quantizer's 64-bit packets, exactly 1600 bit/s. `quantized: false`: the 20 features of each
frame as float16, 160 bytes a packet (32 kbit/s), the unquantized upper bound. The header
carries the mode and the first 16 hex digits of the weights' sha256; a decoder configured
otherwise refuses the stream, as it does any packet whose size is not the mode's or a packet
count that does not match the declared length.

Latency: the features look 80 samples (5 ms) past their frame and everything after them is
causal, so the output lags the input by 80 samples (lookahead) and the algorithmic latency is
one packet plus that: 45 ms. Concealment "repeat": a lost packet's bits are decoded again from
the last packet received (the quantizer's frame-0 state moves on with them); before the first
packet received the output is silent.

Decoder postfilter (`postfilter: true`, the default; postfilter.py): the formant postfilter of
low-rate LPC codecs sharpens the synthesis before de-emphasis. It changes no bit of the stream;
the stream's configuration and the codec version name it.

`lpcnet-personal` (PersonalLPCNetCodec): the same stream with one more byte at the head of the
first packet, the speaker group chosen by the speaker encoder from the whole input (so it
declares streaming: false) or fixed by the card's `group`; the decoder then uses that group's
vocoder. The byte is payload and counts in the bitrate. If the first packet is lost the group
is unknown and the generic vocoder decodes the stream.

No torch is needed to encode or decode (numpy and numba, imported when a codec is built);
torch is only used for MAC counting.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from ..codecs.base import Codec, CodecInfo
from ..errors import CodecError, ConfigError, failure_line
from ..neural.weights import pinned_path
from .features import FRAME, LOOKAHEAD, NB_BANDS, NB_FEATURES, RATE, features
from .pitch import MAX_PERIOD, MIN_PERIOD
from .postfilter import Postfilter
from .quantizer import ENCODER_VERSION, PACKET_BYTES, PACKET_FRAMES, PacketQuantizer
from .weights import LPCNetWeights, load_weights

__all__ = ["LPCNetCodec", "PersonalLPCNetCodec", "load_pinned", "conceal", "vocoder_from"]

PACKET_SAMPLES = PACKET_FRAMES * FRAME
UNQUANTIZED_BYTES = PACKET_FRAMES * NB_FEATURES * 2  # float16


@lru_cache(maxsize=8)
def load_pinned(path: Path, sha256: str) -> LPCNetWeights:
    try:
        return load_weights(path)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def vocoder_from(weights: LPCNetWeights, prefix: str = "vocoder."):
    """The numba vocoder of the weights under `prefix` (vocoder., group0.vocoder., ...)."""
    from .inference import Vocoder

    config = weights.config.get("vocoder_config", {})
    if not isinstance(config, dict):
        raise ConfigError(f"LPCNet weights: vocoder_config must be a mapping, got {type(config).__name__}")
    subframe = config.get("subframe", 40)
    if isinstance(subframe, bool) or not isinstance(subframe, int) or subframe <= 0 or FRAME % subframe:
        raise ConfigError(f"LPCNet weights: vocoder_config.subframe must divide {FRAME} samples, got {subframe!r}")
    try:
        vocoder = Vocoder(weights.section(prefix), subframe=subframe)
    except KeyError as err:
        raise ConfigError(f"LPCNet weights lack the vocoder tensor {prefix}{err.args[0]}") from None
    try:  # two frames through every layer: tensors of the wrong shapes fail here, named, not mid-stream
        vocoder.decode(np.tile([0.0] * NB_BANDS + [100.0, 0.5], (2, 1)))
    except Exception as err:  # noqa: BLE001 - numpy and numba say "shapes" many ways
        raise ConfigError(
            f"LPCNet weights: the vocoder tensors {prefix}* do not fit together ({failure_line(err)})"
        ) from None
    return vocoder


def conceal(packets: list[bytes | None]) -> tuple[list[bytes], int]:
    """(packets with each loss replaced by the last packet received, packets lost before the first one)."""
    out, last, leading = [], None, 0
    for packet in packets:
        if packet is None and last is None:
            leading += 1
            continue
        last = packet if packet is not None else last
        out.append(last)
    return out, leading


class LPCNetCodec(Codec):
    """LPCNet-style codec at 1.6 kbit/s (or unquantized features), 16 kHz, 40 ms packets."""

    concealment = "repeat"

    def __init__(self, weights: str, sha256: str, quantized: bool = True, postfilter: bool = True):
        path = pinned_path(weights, sha256, self.backend or "lpcnet")
        self.sha256, self.quantized = sha256.lower(), bool(quantized)
        if not isinstance(postfilter, bool):
            raise ConfigError(f"{self.backend or 'lpcnet'}: postfilter must be true or false, got {postfilter!r}")
        self.postfilter = Postfilter() if postfilter else None
        self.weights = load_pinned(path, self.sha256)
        if self.weights.config.get("vocoder") != "framewise":
            raise ConfigError(
                f"{path}: vocoder {self.weights.config.get('vocoder')!r} is not supported by this backend"
            )
        self.quantizer = PacketQuantizer(self.weights.codebooks()) if self.quantized else None

    @cached_property
    def vocoder(self):
        """Built on first use: listing the codecs builds every card and must not compile numba kernels."""
        return vocoder_from(self.weights)

    @property
    def info(self) -> CodecInfo:
        return CodecInfo(
            name=self.backend,
            version=f"evalkit-lpcnet{self._encoder_version()} weights {self.sha256[:12]}{self._postfilter_version()}",
            family="neural-lpcnet",
            sample_rate=RATE,
            frame_samples=PACKET_SAMPLES,
            lookahead_samples=LOOKAHEAD,
            nominal_bitrate=8.0 * self.packet_bytes * RATE / PACKET_SAMPLES,
            waveform_matching=False,
            concealment=self.concealment,
            needs=("weights",),
        )

    def _encoder_version(self) -> str:
        """The quantizer's search, in the version string: the same weights give other packets with it."""
        return f" {ENCODER_VERSION}" if self.quantized else ""

    def _postfilter_version(self) -> str:
        """The postfilter's settings, in the version string: cached decodes and stored results name them."""
        pf = self.postfilter
        return "" if pf is None else f" pf {pf.numerator:g}/{pf.denominator:g}/{pf.tilt:g}"

    @property
    def packet_bytes(self) -> int:
        return PACKET_BYTES if self.quantized else UNQUANTIZED_BYTES

    def _header(self) -> dict:
        return {"mode": "1k6" if self.quantized else "unquantized", "weights": self.sha256[:16]}

    # -- encoder ---------------------------------------------------------------------------

    def _encode(self, samples):
        feats = features(samples[0])
        return self._header(), self.feature_packets(feats)

    def feature_packets(self, feats: np.ndarray) -> list[bytes]:
        if self.quantizer is not None:
            return self.quantizer.encode(feats)
        frames = feats.astype("<f2").reshape(-1, PACKET_FRAMES * NB_FEATURES)
        return [row.tobytes() for row in frames]

    # -- decoder ---------------------------------------------------------------------------

    def _decode(self, header, packets):
        self.check_stream(header, packets)
        feats, leading = self.packet_features(packets)
        return self.synthesise(feats, leading)

    def check_stream(self, header: dict, packets: list) -> None:
        """CodecError unless the stream is this configuration's and its length is consistent."""
        mine = self._header()
        if not isinstance(header, dict) or any(header.get(key) != value for key, value in mine.items()):
            raise CodecError(f"{self.backend}: stream was written with {header}, this decoder is configured as {mine}")
        expected = -(-(header["frames"] + LOOKAHEAD) // PACKET_SAMPLES)
        if len(packets) != expected:
            raise CodecError(
                f"{self.backend}: stream declares {header['frames']} samples ({expected} packets) "
                f"but holds {len(packets)} packets"
            )

    def packet_features(self, packets: list[bytes | None]) -> tuple[np.ndarray, int]:
        """(features of every packet, concealed; frames lost before the first packet received)."""
        for index, packet in enumerate(packets):
            if packet is not None and len(packet) != self.packet_bytes:
                raise CodecError(
                    f"{self.backend}: packet {index} has {len(packet)} bytes; expected {self.packet_bytes}"
                )
        received, leading = conceal(packets)
        if not received:
            raise CodecError(f"{self.backend}: every packet was lost")
        feats = self.quantizer.decode(received) if self.quantizer else self._unquantized(received)
        return feats, leading * PACKET_FRAMES

    def _unquantized(self, packets: list[bytes]) -> np.ndarray:
        feats = np.frombuffer(b"".join(packets), dtype="<f2").astype(np.float64).reshape(-1, NB_FEATURES)
        if not np.all(np.isfinite(feats)):
            raise CodecError(f"{self.backend}: packets hold non-finite features")
        feats[:, -2] = np.clip(feats[:, -2], MIN_PERIOD, MAX_PERIOD)
        feats[:, -1] = np.clip(feats[:, -1], 0.0, 1.0)
        return feats

    def synthesise(self, feats: np.ndarray, leading_frames: int, vocoder=None) -> np.ndarray:
        """Speech for the received frames, after `leading_frames` of silence, delayed by the lookahead."""
        speech = (vocoder or self.vocoder).decode(feats, postfilter=self.postfilter)
        return np.concatenate([np.zeros(LOOKAHEAD + leading_frames * FRAME, np.float32), speech])

    def torch_modules(self) -> dict:
        """The vocoder as a torch module over one second of features (MAC counting)."""
        import torch

        from .framewise import FramewiseVocoder, VocoderConfig

        model = FramewiseVocoder(VocoderConfig.from_dict(self.weights.config["vocoder_config"]))
        model.load_state_dict(self.weights.vocoder_state(), strict=True)
        frames = RATE // FRAME
        feats = torch.zeros(1, frames, NB_FEATURES)
        feats[..., -2] = 100.0
        example = (feats, torch.zeros(1, frames, 16), torch.ones(1, frames), torch.zeros(1, RATE))
        return {"decoder": (model, example, 1.0)}


def _speaker_groups(path: Path, bundle: LPCNetWeights) -> int:
    """The config's group count, once the file holds a vocoder and a centroid for each group: else the
    encoder could name a group the decoder refuses, or decoding build vocoders that are not there."""
    groups = bundle.config.get("groups", 0)
    vocoders = len({key.split(".")[0] for key in bundle.arrays if key.startswith("group") and ".vocoder." in key})
    centroids = bundle.arrays.get("speaker.centroids")
    rows = len(centroids) if centroids is not None and centroids.ndim == 2 else None
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ConfigError(f"{path}: no speaker groups in this file (groups: {groups!r})")
    if groups != vocoders or rows not in (None, groups):
        raise ConfigError(
            f"{path}: its config names {groups} speaker groups, but it holds {vocoders} group vocoders "
            f"and {rows} speaker centroids"
        )
    return groups


class PersonalLPCNetCodec(LPCNetCodec):
    """LPCNet at 1.6 kbit/s with per-speaker-group vocoders; the group index travels in the first packet."""

    def __init__(
        self,
        weights: str,
        sha256: str,
        personal: str,
        personal_sha256: str,
        group: int | None = None,
        postfilter: bool = True,
    ):
        super().__init__(weights, sha256, quantized=True, postfilter=postfilter)
        path = pinned_path(personal, personal_sha256, "lpcnet-personal")
        self.personal_sha256 = personal_sha256.lower()
        self.bundle = bundle = load_pinned(path, self.personal_sha256)
        self.groups = _speaker_groups(path, bundle)
        if group is not None and (not isinstance(group, int) or not 0 <= group < self.groups):
            raise ConfigError(f"lpcnet-personal: group must be an integer from 0 to {self.groups - 1}, got {group!r}")
        self.forced_group = group

    @cached_property
    def encoder(self):
        from .speaker import SpeakerEncoder

        return SpeakerEncoder(self.bundle.section("speaker."))

    @cached_property
    def group_vocoders(self) -> list:
        return [vocoder_from(self.bundle, f"group{i}.vocoder.") for i in range(self.groups)]

    @property
    def info(self) -> CodecInfo:
        from dataclasses import replace

        return replace(
            super().info,
            version=f"evalkit-lpcnet{self._encoder_version()} {self.sha256[:12]} g {self.personal_sha256[:12]}"
            f"{self._postfilter_version()}",
            streaming=self.forced_group is not None,
        )

    def _header(self) -> dict:
        return {**super()._header(), "personal": self.personal_sha256[:16]}

    def _encode(self, samples):
        header, packets = super()._encode(samples)
        group = self.forced_group if self.forced_group is not None else self.encoder.group(samples[0])
        return header, [bytes([group]) + packets[0], *packets[1:]]

    def _decode(self, header, packets):
        self.check_stream(header, packets)
        packets, group = list(packets), None
        if packets[0] is not None:
            if len(packets[0]) != PACKET_BYTES + 1:
                raise CodecError(
                    f"{self.backend}: first packet has {len(packets[0])} bytes; expected {PACKET_BYTES + 1}"
                )
            group, packets[0] = packets[0][0], packets[0][1:]
            if group >= self.groups:
                raise CodecError(f"{self.backend}: stream names speaker group {group}; this codec has {self.groups}")
        feats, leading = self.packet_features(packets)
        return self.synthesise(feats, leading, self.group_vocoders[group] if group is not None else None)

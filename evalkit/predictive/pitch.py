"""Pitch of the predictive codec: the LPCNet 1.6 kbit/s quantizer's three pitch fields per 40 ms packet.

The period (6 bits: the packet's mean log period), its modulation (3 bits: slope over the four
frames) and the pitch correlation (2 bits), with the codebooks of an LPCNet weights file, as the
`lpcnet` codec sends them; here they are range-coded with the other symbols (coder.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .coder import PACKET_FRAMES, PITCH_FIELDS

__all__ = ["PitchCoder"]


class PitchCoder:
    """Pitch fields of features per packet, and the period and correlation they decode to."""

    def __init__(self, quantizer):
        from ..lpcnet.features import NB_BANDS
        from ..lpcnet.quantizer import FIELDS

        widths = dict(FIELDS)
        for name, size in PITCH_FIELDS:
            if 1 << widths[name] != size:
                raise ValueError(f"the LPCNet quantizer's {name} field has {widths[name]} bits, expected {size}")
        self.quantizer, self.bands = quantizer, NB_BANDS
        self._filler = {name: 0 for name, _ in FIELDS}  # cepstral fields: decoded and dropped

    @classmethod
    def from_weights(cls, path: Path) -> PitchCoder:
        from ..lpcnet.quantizer import PacketQuantizer
        from ..lpcnet.weights import load_weights

        return cls(PacketQuantizer(load_weights(Path(path)).codebooks()))

    def fields_per_packet(self, feats: np.ndarray) -> list[dict]:
        """The pitch field values of each packet of features (frames, 20), frames a multiple of 4."""
        feats = np.asarray(feats, np.float64)
        out = []
        for start in range(0, len(feats) - PACKET_FRAMES + 1, PACKET_FRAMES):
            frames = feats[start : start + PACKET_FRAMES]
            fields = self.quantizer._pitch_fields(frames[:, self.bands], frames[:, self.bands + 1])
            out.append({name: int(fields[name]) for name, _ in PITCH_FIELDS})
        return out

    def features(self, fields: dict) -> np.ndarray:
        """(4, 2): period and correlation of the packet's four frames."""
        frames, _ = self.quantizer.decode_packet({**self._filler, **fields}, None)
        return frames[:, self.bands : self.bands + 2]

"""Closed-loop predictive coding of cepstra, packet by packet, with range-coded symbols.

Per 40 ms packet (four 10 ms frames) the bytes hold, range-coded (evalkit.codecs.entropy) with
models trained on the training set: the packet's pitch fields (when a pitch coder is used: the
LPCNet quantizer's period, modulation and correlation indices), then per frame the c0 flag, the
c0 index, the VQ flag and one or two VQ indices (residual.py). The flags' models are conditioned
on the previous frame's flag within the packet, so every packet decodes on its own.

Closed loop: each frame's prediction comes from the frames as the decoder reconstructs them
(prediction + quantized residual), so encoder and decoder hold the same predictor state; the
decoder repeats the encoder's arithmetic and gets its reconstruction bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..codecs.entropy import RangeReader, RangeWriter, SymbolModel
from ..errors import CodecError
from .predictor import NB_CEPSTRA, Predictor
from .residual import FrameCode, ResidualQuantizer

__all__ = [
    "PACKET_FRAMES",
    "PITCH_FIELDS",
    "MODEL_SIZES",
    "ModelSet",
    "Packet",
    "ClosedLoop",
    "CepstralCoder",
    "FLAG_CONTEXTS",
]

PACKET_FRAMES = 4
PITCH_FIELDS = (("period", 64), ("modulation", 8), ("correlation", 4))  # the LPCNet quantizer's pitch fields
FLAG_CONTEXTS = 3  # previous frame's flag 0 or 1, or 2 at a packet's first frame
MODEL_SIZES = {
    "c0_flag": (FLAG_CONTEXTS, 2),
    "c0_fine": 256,
    "c0_coarse": 16,
    "vq_flag": (FLAG_CONTEXTS, 2),
    "vq1": 1024,
    "vq2": 1024,
    "vq_small": 512,
    **dict(PITCH_FIELDS),
}
MAX_PACKET_BYTES = 4 * (len(PITCH_FIELDS) + 5 * PACKET_FRAMES)  # no trained symbol costs 32 bits


@dataclass(frozen=True)
class Packet:
    """One packet's content: pitch field values (or None) and the four frames' codes."""

    pitch: dict | None
    codes: tuple[FrameCode, ...]


class ModelSet:
    """The symbol models of one allocation, from counts by name (MODEL_SIZES; flags per context)."""

    def __init__(self, counts: dict[str, np.ndarray]):
        missing = [name for name in MODEL_SIZES if name not in counts and name not in dict(PITCH_FIELDS)]
        if missing:
            raise ValueError(f"entropy models missing: {missing}")
        self.counts = {name: np.asarray(value, np.int64) for name, value in counts.items()}
        for name, value in self.counts.items():
            expected = MODEL_SIZES[name]
            if value.shape != (expected if isinstance(expected, tuple) else (expected,)):
                raise ValueError(f"entropy model {name} has shape {value.shape}, expected {expected}")
        self.models = {
            name: (
                [SymbolModel(row, f"{name}[{i}]") for i, row in enumerate(value)]
                if value.ndim == 2
                else SymbolModel(value, name)
            )
            for name, value in self.counts.items()
        }
        self.has_pitch = all(name in self.models for name, _ in PITCH_FIELDS)

    def __getitem__(self, name: str):
        return self.models[name]

    @staticmethod
    def count(packets: list[Packet]) -> dict[str, np.ndarray]:
        """Symbol counts of packets (training): the input of ModelSet."""
        counts = {name: np.zeros(size, np.int64) for name, size in MODEL_SIZES.items()}
        for packet in packets:
            for symbol, name, context in _symbols(packet):
                target = counts[name] if context is None else counts[name][context]
                target[symbol] += 1
        if not any(packet.pitch for packet in packets):
            for name, _ in PITCH_FIELDS:
                counts.pop(name)
        return counts


def _symbols(packet: Packet):
    """(symbol, model name, flag context or None) in coding order."""
    if packet.pitch is not None:
        for name, _ in PITCH_FIELDS:
            yield packet.pitch[name], name, None
    previous = (FLAG_CONTEXTS - 1, FLAG_CONTEXTS - 1)
    for code in packet.codes:
        yield code.c0_fine, "c0_flag", previous[0]
        yield code.c0, "c0_fine" if code.c0_fine else "c0_coarse", None
        yield code.vq_fine, "vq_flag", previous[1]
        if code.vq_fine:
            yield code.vq1, "vq1", None
            yield code.vq2, "vq2", None
        else:
            yield code.vq1, "vq_small", None
        previous = (code.c0_fine, code.vq_fine)


class ClosedLoop:
    """The predictor loop both ends run: per coded frame, a prediction, a quantized residual from
    `residual(prediction)`, the reconstruction fed back. With frame step 2 the prediction looks two
    frames ahead (the first one predicted, fed back tentatively), and the skipped frame is the
    midpoint of the reconstructed frames around it; the state then consumes both."""

    def __init__(self, predictor_arrays: dict, frame_step: int):
        if frame_step not in (1, 2):
            raise ValueError(f"frame step must be 1 or 2, got {frame_step}")
        self.predictor, self.step = Predictor(predictor_arrays), frame_step
        self.last = self.predictor.mean.copy()

    def frames(self, residual) -> list[np.ndarray]:
        """The reconstructed frames up to and including the next coded one."""
        predictor = self.predictor
        if self.step == 1:
            prediction = predictor.predict()
            frame = prediction + residual(prediction)
            predictor.update(frame)
            out = [frame]
        else:
            saved = predictor.snapshot()
            predictor.update(predictor.predict())
            prediction = predictor.predict()
            frame = prediction + residual(prediction)
            predictor.restore(saved)
            middle = 0.5 * (self.last + frame)
            predictor.update(middle)
            predictor.update(frame)
            out = [middle, frame]
        self.last = frame
        return out


class CepstralCoder:
    """Encodes cepstra (frames, 18) to packets and back, both ends running the same closed loop."""

    def __init__(self, predictor_arrays: dict, quantizer: ResidualQuantizer, models: ModelSet):
        self.predictor_arrays, self.quantizer, self.models = predictor_arrays, quantizer, models
        self.frame_step = quantizer.allocation.frame_step
        self.coded_per_packet = PACKET_FRAMES // self.frame_step

    # -- encoder ---------------------------------------------------------------------------

    def analyse(self, ceps: np.ndarray) -> tuple[list[tuple[FrameCode, ...]], np.ndarray]:
        """(codes per packet, reconstruction (frames, 18)) of cepstra whose frame count fills whole packets."""
        ceps = np.asarray(ceps, np.float64)
        if ceps.ndim != 2 or ceps.shape[1] != NB_CEPSTRA or len(ceps) % PACKET_FRAMES:
            raise CodecError(f"predictive: cepstra of shape {ceps.shape} do not fill whole packets of {PACKET_FRAMES}")
        loop, codes, out = ClosedLoop(self.predictor_arrays, self.frame_step), [], []

        for coded in range(self.frame_step - 1, len(ceps), self.frame_step):

            def residual(prediction, target=ceps[coded]):
                code, quantized = self.quantizer.quantize(target - prediction)
                codes.append(code)
                return quantized

            out += loop.frames(residual)
        per = self.coded_per_packet
        return [tuple(codes[i : i + per]) for i in range(0, len(codes), per)], np.array(out)

    def packet_bytes(self, packet: Packet) -> bytes:
        return self.writer(packet).to_bytes()

    def writer(self, packet: Packet) -> RangeWriter:
        writer = RangeWriter()
        for symbol, name, context in _symbols(packet):
            model = self.models[name]
            writer.write(symbol, model if context is None else model[context])
        return writer

    # -- decoder ---------------------------------------------------------------------------

    def read_packet(self, data: bytes, with_pitch: bool) -> Packet:
        if len(data) > MAX_PACKET_BYTES:
            raise CodecError(f"predictive: packet of {len(data)} bytes is longer than any packet can be")
        reader = RangeReader(data)
        pitch = {name: reader.read(self.models[name]) for name, _ in PITCH_FIELDS} if with_pitch else None
        codes, previous = [], (FLAG_CONTEXTS - 1, FLAG_CONTEXTS - 1)
        for _ in range(self.coded_per_packet):
            c0_fine = reader.read(self.models["c0_flag"][previous[0]])
            c0 = reader.read(self.models["c0_fine" if c0_fine else "c0_coarse"])
            vq_fine = reader.read(self.models["vq_flag"][previous[1]])
            if vq_fine:
                code = FrameCode(c0_fine, c0, 1, reader.read(self.models["vq1"]), reader.read(self.models["vq2"]))
            else:
                code = FrameCode(c0_fine, c0, 0, reader.read(self.models["vq_small"]))
            codes.append(code)
            previous = (c0_fine, vq_fine)
        return Packet(pitch, tuple(codes))

    def synthesise(self, codes: list[tuple[FrameCode, ...] | None]) -> np.ndarray:
        """Cepstra (4 x packets, 18) from each packet's codes; a lost packet (None) is the prediction alone."""
        loop, out = ClosedLoop(self.predictor_arrays, self.frame_step), []
        zero = np.zeros(NB_CEPSTRA)
        for packet in codes:
            for index in range(self.coded_per_packet):
                code = None if packet is None else packet[index]
                out += loop.frames(lambda _, code=code: zero if code is None else self.quantizer.reconstruct(code))
        return np.array(out).reshape(-1, NB_CEPSTRA)

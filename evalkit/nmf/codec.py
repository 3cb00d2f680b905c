"""The `nmf` codec backend: block magnitude spectra coded as low-rank activations, phase by Griffin–Lim.

Encoder, per 32 ms block (one packet): the block's magnitude spectrum (spectra.py), its
activations on the card's basis (NMF, fitted with the basis fixed; or PCA coefficients of the
log spectrum), one scalar quantizer per component and the components' symbols range-coded with
models trained on the training set (model.py, evalkit.codecs.entropy). The bitrate is what the
packets weigh: it varies with the signal (silence is cheap).

Decoder: the magnitudes from the decoded activations, and a phase found by streaming
Griffin–Lim: no bits are spent on phase; the price is quality (a phasey, reverberant sound, as
the magnitude alone does not pin down a waveform) and decoder work (`iterations` passes of
4 FFTs and 4 inverse FFTs per block). The output lags the input by 384 samples (24 ms); the
algorithmic latency is a block plus that, 56 ms. It does not follow the input waveform
(waveform_matching: false).

Header: basis, rank, step and the weights' sha256 prefix; a decoder configured otherwise refuses
the stream. The packet count must match the declared length. Lost packets repeat the last
packet received (concealment "repeat"); before the first one the output is silent.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..codecs.base import Codec, CodecInfo
from ..codecs.entropy import RangeReader, RangeWriter, constriction_missing, constriction_version
from ..errors import CodecError, ConfigError
from ..neural.weights import pinned_path
from .model import Bundle, config_key, load_bundle
from .spectra import BINS, BLOCK, LAG, RATE, StreamingGriffinLim, block_magnitudes

__all__ = ["NMFCodec", "load_pinned"]

MAX_SYMBOL_BYTES = 4  # no symbol of a trained model costs more than 32 bits: bounds a packet's size


@lru_cache(maxsize=4)
def load_pinned(path: Path, sha256: str) -> Bundle:
    try:
        return load_bundle(path)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _configuration(path: Path, bundle: Bundle, basis: str, rank: int, step_db: float) -> dict:
    """The bundle's entry for (basis, rank, step); ConfigError naming the file when it has none."""
    try:
        held = [(c["basis"], c["rank"], c["step_db"], float(c["bitrate"])) for c in bundle.configurations()]
    except (TypeError, KeyError, ValueError):
        raise ConfigError(
            f"{path}: configurations must be a list of {{basis, rank, step_db, bitrate}} mappings"
        ) from None
    for index, entry in enumerate(held):
        if entry[:3] == (basis, rank, step_db):
            return bundle.configurations()[index]
    listed = ", ".join(f"{b} rank {r} step {s}" for b, r, s, _ in held)
    raise ConfigError(f"nmf: {path.name} holds no {basis} rank {rank} step {step_db} dB; it holds: {listed}")


def _check_arrays(path: Path, bundle: Bundle, basis: str, rank: int, step_db: float) -> None:
    """ConfigError naming the array when the file's model for this configuration is not the shape the
    codec computes with (a basis over other bins, levels beyond the entropy model's counts, ...)."""
    arrays, model, quantizer = bundle.arrays, config_key(basis, rank), config_key(basis, rank, step_db)
    shapes = {f"{model}.basis": (rank, BINS), f"{quantizer}.low": (rank,), f"{quantizer}.levels": (rank,)}
    if basis == "pca":
        shapes[f"{model}.mean"] = (BINS,)
    for key, shape in shapes.items():
        if key in arrays and arrays[key].shape != shape:
            raise ConfigError(f"{path}: array {key} has shape {arrays[key].shape}, expected {shape}")
    levels, counts = arrays.get(f"{quantizer}.levels"), arrays.get(f"{quantizer}.counts")
    if levels is not None and counts is not None:
        if counts.ndim != 2 or counts.shape[0] != rank or levels.min() < 1 or levels.max() > counts.shape[1]:
            raise ConfigError(
                f"{path}: {quantizer}.levels must lie from 1 to the {counts.shape[-1]} columns of {quantizer}.counts"
            )
    divergence = bundle.config.get("nmf_divergence", {})
    values = [divergence.get(k, 1.0) for k in ("beta", "power")] if isinstance(divergence, dict) else [None]
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values) or values[-1] <= 0:
        raise ConfigError(f"{path}: nmf_divergence must map beta to a number and power to a positive number")


class NMFCodec(Codec):
    """Low-rank (NMF or PCA) magnitude codec, 16 kHz, 32 ms packets, variable bitrate."""

    concealment = "repeat"

    def __init__(
        self, weights: str, sha256: str, basis: str = "nmf", rank: int = 16, step_db: float = 6.0, iterations: int = 16
    ):
        path = pinned_path(weights, sha256, "nmf")
        self.sha256 = sha256.lower()
        bundle = load_pinned(path, self.sha256)
        if basis not in ("nmf", "pca"):
            raise ConfigError(f"nmf: basis must be 'nmf' or 'pca', got {basis!r}")
        if not isinstance(iterations, int) or not 0 <= iterations <= 200:
            raise ConfigError(f"nmf: iterations must be an integer from 0 to 200, got {iterations!r}")
        self.configuration = _configuration(path, bundle, basis, rank, step_db)
        _check_arrays(path, bundle, basis, rank, step_db)
        self.basis, self.rank, self.step_db, self.iterations = basis, rank, float(step_db), iterations
        self.bundle = bundle
        self.model = bundle.model(basis, rank)
        self.quantizer = bundle.quantizer(basis, rank, step_db)

    @classmethod
    def unavailable(cls) -> str | None:
        return constriction_missing()

    @property
    def info(self) -> CodecInfo:
        return CodecInfo(
            name=self.backend,
            version=f"evalkit-nmf weights {self.sha256[:12]}, {constriction_version()}",
            family="nmf" if self.basis == "nmf" else "nmf-pca",
            sample_rate=RATE,
            frame_samples=BLOCK,
            lookahead_samples=LAG,
            nominal_bitrate=float(self.configuration["bitrate"]),
            bitrate_tolerance=0.5,
            waveform_matching=False,
            concealment=self.concealment,
            needs=("constriction", "weights"),
        )

    def configuration_table(self) -> list[dict]:
        """Every configuration of the weights with the bitrate and distortion measured in training."""
        return self.bundle.configurations()

    def _header(self) -> dict:
        return {"basis": self.basis, "rank": self.rank, "step": self.step_db, "weights": self.sha256[:16]}

    # -- encoder ---------------------------------------------------------------------------

    def _encode(self, samples):
        return self._header(), self.packets(self.symbols(samples[0]))

    def symbols(self, samples: np.ndarray) -> np.ndarray:
        """(blocks, rank) quantizer symbols of mono samples (a whole number of blocks)."""
        activations = self.model.analyse(block_magnitudes(samples))
        if not np.all(np.isfinite(activations)):  # weights whose divergence overflows: say so, not "symbol -2**63"
            raise CodecError(
                f"nmf: the weights' {self.basis} model gives non-finite activations (see its nmf_divergence)"
            )
        return self.quantizer.symbols(activations)

    def packets(self, symbols: np.ndarray) -> list[bytes]:
        out = []
        for row in symbols:
            writer = RangeWriter()
            writer.write_all(row, self.quantizer.models)
            out.append(writer.to_bytes())
        return out

    # -- decoder ---------------------------------------------------------------------------

    def _decode(self, header, packets):
        mine = self._header()
        if any(header.get(key) != value for key, value in mine.items()):
            raise CodecError(f"nmf: stream was written with {header}, this decoder is configured as {mine}")
        expected = -(-(header["frames"] + LAG) // BLOCK)
        if len(packets) != expected:
            raise CodecError(
                f"nmf: stream declares {header['frames']} samples ({expected} packets) but holds {len(packets)} packets"
            )
        magnitudes = self.magnitudes(packets)
        synth = StreamingGriffinLim(self.iterations)
        return np.concatenate([synth.block(m) for m in magnitudes])

    def magnitudes(self, packets: list[bytes | None]) -> np.ndarray:
        """(blocks, 257) decoded block magnitudes; a lost packet repeats the last one received."""
        out, last = [], None
        for index, packet in enumerate(packets):
            if packet is not None:
                last = self._packet_magnitude(index, packet)
            out.append(np.zeros(BINS) if last is None else last)
        return np.array(out)

    def _packet_magnitude(self, index: int, packet: bytes) -> np.ndarray:
        if len(packet) > MAX_SYMBOL_BYTES * self.rank:
            raise CodecError(f"nmf: packet {index} has {len(packet)} bytes, more than {self.rank} symbols can take")
        symbols = RangeReader(packet).read_many(self.quantizer.models)
        return self.model.synthesise(self.quantizer.values(np.array(symbols)))[0]

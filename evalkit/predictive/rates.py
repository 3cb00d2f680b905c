"""Entropy models and measured rates of the predictive codec's allocations (its rate sweep).

    nice -n 19 python -m evalkit.predictive.rates --features FEATURES.npz --bundle results/predictive/model.npz \
        --out results/predictive/predictive-16k-v1.npz [--pitch LPCNET_WEIGHTS.npz]

An allocation is named by its frame step and the share of frames it codes fine (`s1-fine30`:
every frame coded, thresholds at the 70th percentile of the predictor's one-step residual
magnitudes (|r0| and the c1-c17 L1 norm) on training items, so about 30 % of frames fine;
`s2-...`: every other frame coded, the others interpolated). For each, the exact codec (coder.py, numpy) encodes training items closed loop; the symbol
counts become its entropy models. Then other training items are coded with those models and
measured: bytes per second (what the packets weigh), the models' information content and the
empirical entropy of the symbols (per model), and the spectral distortion of the reconstructed
cepstra (dB RMS over the 18 bands). With `--pitch`, the pitch fields of the LPCNet quantizer in
that weights file are coded too (and modelled); without it, the figures are for cepstra alone.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..codecs.entropy import empirical_entropy_bits
from .coder import PACKET_FRAMES, CepstralCoder, ModelSet, Packet, _symbols
from .model import PredictiveBundle, load_bundle, save_bundle
from .predictor import NB_CEPSTRA, Predictor
from .residual import Allocation, ResidualQuantizer
from .train import load_features, split_items

__all__ = ["ALLOCATIONS", "allocation_thresholds", "spectral_distortion_db", "measure", "main"]

# (frame step, per cent of frames coded fine): the rate sweep, down to coarse quantizers only on
# every other frame (s2-fine0: about 0.8 kbit/s, but 15 dB of cepstral distortion, the coarse c0
# quantizer cannot follow onsets, so no card uses it).
ALLOCATIONS = ((1, 10), (1, 20), (1, 35), (1, 60), (1, 100), (2, 0), (2, 5), (2, 15), (2, 40), (2, 100))
FRAME_SECONDS = 0.01


def _whole_packets(x: np.ndarray) -> np.ndarray:
    return x[: len(x) - len(x) % PACKET_FRAMES]


def open_loop_residuals(predictor_arrays: dict, items: list[np.ndarray]) -> np.ndarray:
    """Residuals of the predictor fed the clean previous frames (numpy path)."""
    out = []
    for x in items:
        predictor = Predictor(predictor_arrays)
        for frame in x[:, :NB_CEPSTRA].astype(np.float64):
            out.append(frame - predictor.predict())
            predictor.update(frame)
    return np.array(out)


def allocation_thresholds(residuals: np.ndarray, share: float, frame_step: int = 1) -> Allocation:
    """Thresholds that send `share` (0..100) per cent of these residuals to the fine quantizers."""
    if share >= 100:
        return Allocation(-1.0, -1.0, frame_step)
    if share <= 0:
        return Allocation(float("inf"), float("inf"), frame_step)
    q = 1 - share / 100
    return Allocation(
        float(np.quantile(np.abs(residuals[:, 0]), q)),
        float(np.quantile(np.abs(residuals[:, 1:]).sum(axis=1), q)),
        frame_step,
    )


def spectral_distortion_db(reference: np.ndarray, decoded: np.ndarray) -> float:
    """RMS over frames of the band log-energy error in dB (the cepstra's DCT is orthonormal)."""
    diff = np.asarray(reference, np.float64) - np.asarray(decoded, np.float64)
    return float(np.sqrt(np.mean(np.sum(diff**2, axis=1) / NB_CEPSTRA)) * 10)


def code_items(coder: CepstralCoder, items: list[np.ndarray], pitch=None) -> tuple[list[Packet], list[np.ndarray]]:
    """(packets, reconstructions) of items (each cut to whole packets); `pitch(features)` gives field values per packet."""
    packets, reconstructions = [], []
    for x in items:
        x = _whole_packets(x)
        codes, decoded = coder.analyse(x[:, :NB_CEPSTRA])
        fields = pitch(x) if pitch is not None else [None] * len(codes)
        packets += [Packet(f, c) for f, c in zip(fields, codes)]
        reconstructions.append(decoded)
    return packets, reconstructions


def measure(coder: CepstralCoder, items: list[np.ndarray], pitch=None) -> dict:
    """Bytes, model information and empirical entropy (bit/s), and spectral distortion on items."""
    packets, decoded = code_items(coder, items, pitch)
    seconds = len(packets) * PACKET_FRAMES * FRAME_SECONDS
    total_bytes, model_bits, streams = 0, 0.0, {}
    for packet in packets:
        writer = coder.writer(packet)
        total_bytes += len(writer.to_bytes())
        model_bits += writer.model_bits
        for symbol, name, context in _symbols(packet):
            streams.setdefault((name, context), []).append(symbol)
    empirical = sum(empirical_entropy_bits(values) for values in streams.values())
    reference = np.concatenate([_whole_packets(x)[:, :NB_CEPSTRA] for x in items])
    return {
        "bitrate": round(8 * total_bytes / seconds, 1),
        "model_bitrate": round(model_bits / seconds, 1),
        "empirical_entropy_bitrate": round(empirical / seconds, 1),
        "spectral_distortion_db": round(spectral_distortion_db(reference, np.concatenate(decoded)), 3),
        "fine_c0": round(float(np.mean([c.c0_fine for p in packets for c in p.codes])), 3),
        "fine_vq": round(float(np.mean([c.vq_fine for p in packets for c in p.codes])), 3),
    }


def add_allocations(
    bundle: PredictiveBundle, train_items: list, measure_items: list, pitch=None, log=print, allocations=ALLOCATIONS
) -> PredictiveBundle:
    """The bundle with an entropy model set and measured figures per allocation."""
    predictor, books = bundle.predictor_arrays(), bundle.codebooks()
    residuals = open_loop_residuals(predictor, train_items[:100])
    arrays = {k: v for k, v in bundle.arrays.items() if not k.startswith("entropy.")}
    entries = []
    for step, share in allocations:
        allocation = allocation_thresholds(residuals, share, step)
        quantizer = ResidualQuantizer(books, allocation)
        counting = CepstralCoder(predictor, quantizer, ModelSet(_empty_counts()))
        packets, _ = code_items(counting, train_items, pitch)
        counts = ModelSet.count(packets)
        name = f"s{step}-fine{share}"
        arrays.update({f"entropy.{name}.{model}": value for model, value in counts.items()})
        figures = measure(CepstralCoder(predictor, quantizer, ModelSet(counts)), measure_items, pitch)
        entry = {
            "name": name,
            "frame_step": step,
            "share": share,
            "c0_threshold": _finite(allocation.c0_threshold),
            "vq_threshold": _finite(allocation.vq_threshold),
            "pitch": pitch is not None,
            **figures,
        }
        log(json.dumps(entry))
        entries.append(entry)
    return PredictiveBundle({**bundle.config, "allocations": entries}, arrays)


def _finite(value: float) -> float:
    return 1e9 if not np.isfinite(value) else round(value, 6)


def _empty_counts() -> dict:
    from .coder import MODEL_SIZES, PITCH_FIELDS

    return {name: np.zeros(size, np.int64) for name, size in MODEL_SIZES.items() if name not in dict(PITCH_FIELDS)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument(
        "--bundle", type=Path, required=True, help="the predictor and codebooks from evalkit.predictive.train"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--pitch", type=Path, default=None, help="LPCNet weights whose quantizer codes the pitch")
    parser.add_argument("--items", type=int, default=400, help="training items whose symbols are counted")
    parser.add_argument("--measure-items", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    train_items, _ = split_items(load_features(args.features), args.seed)
    order = np.random.default_rng(args.seed + 1).permutation(len(train_items))
    counted = [train_items[i] for i in order[: args.items]]
    measured = [train_items[i] for i in order[args.items : args.items + args.measure_items]]
    pitch = None
    if args.pitch is not None:
        from .pitch import PitchCoder

        pitch = PitchCoder.from_weights(args.pitch).fields_per_packet
    bundle = add_allocations(load_bundle(args.bundle), counted, measured, pitch)
    path = save_bundle(args.out, bundle)
    from ..cache import file_digest

    print(f"wrote {path}: {path.stat().st_size / 1e3:.0f} kB, sha256 {file_digest(path)}")


if __name__ == "__main__":
    main()

"""Train the low-rank codec's bundle: NMF and PCA bases, quantizers and entropy models, measured bitrates.

    nice -n 19 python -m evalkit.nmf.train --data results/training-set/manifest-no-demo-speakers.jsonl \
        --out results/nmf/nmf-16k-v1.npz

Items are drawn at random (seeded) up to `--minutes` of audio, resampled to 16 kHz, scaled to
-26 LUFS and cut into block magnitude spectra (cached in OUT's folder by the manifest's hash and
the settings). Each basis is saved as soon as it is learnt, so a rerun resumes where it stopped.
The held-out demo corpus is refused as training data. Each configuration's bitrate is measured
by coding a sample of training blocks as packets (bytes, not entropy estimates).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from ..cache import file_digest
from ..datasets import load_dataset
from ..neural.data import at_loudness, check_holdout
from .basis import learn_nmf, learn_pca, log_spectral_distance
from .model import LowRankModel, Quantizer, config_key, save_bundle
from .spectra import BLOCK, RATE, block_magnitudes

__all__ = ["training_blocks", "train_bundle", "main"]

TARGET_LUFS = -26.0
RANKS = (8, 16, 32)
STEPS_DB = {"nmf": (3.0, 6.0, 9.0), "pca": (1.0, 2.0, 4.0)}  # NMF: dB of activation; PCA: dB RMS over bins
NMF_DIVERGENCE = {"beta": 0.0, "power": 1.0}  # Itakura–Saito on magnitudes: see docs/neural.md
LEARN_BLOCKS = 30000  # blocks the bases are learnt on (16 min); the quantizers see every block
RATE_SAMPLE = 4000  # blocks coded to measure each configuration's bitrate


def item_blocks(item) -> np.ndarray | None:
    x = at_loudness(item, RATE, TARGET_LUFS)
    if x is None:
        return None
    x = np.concatenate([x, np.zeros(-len(x) % BLOCK)])
    return block_magnitudes(x)


def training_blocks(manifest: Path, holdout: Path | None, minutes: float, seed: int, cache_dir: Path, log=print):
    """(blocks, 257) magnitudes of a seeded random subset of the manifest's items, cached."""
    key = hashlib.sha256(f"{file_digest(manifest)}:{minutes}:{seed}".encode()).hexdigest()[:16]
    cache = cache_dir / f"blocks-{key}.npy"
    if cache.is_file():
        return np.load(cache)
    items = load_dataset(manifest)
    if holdout is not None:
        check_holdout(items, load_dataset(holdout))
    order = np.random.default_rng(seed).permutation(len(items))
    blocks, seconds, start = [], 0.0, time.monotonic()
    for count, index in enumerate(order):
        found = item_blocks(items[index])
        if found is not None:
            blocks.append(found)
            seconds += len(found) * BLOCK / RATE
        if count % 200 == 0:
            log(f"blocks: {count} items, {seconds / 60:.1f} min, {time.monotonic() - start:.0f} s")
        if seconds >= 60 * minutes:
            break
    out = np.concatenate(blocks).astype(np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(cache, out)
    return out


def _learnt(path: Path, learn):
    """A basis from its cache file, or learnt and cached (resume point)."""
    if path.is_file():
        with np.load(path) as data:
            return {key: data[key] for key in data.files}
    arrays = learn()
    np.savez(path, **arrays)
    return arrays


def train_bundle(blocks: np.ndarray, work: Path, iterations: int, seed: int, log=print) -> tuple[dict, dict, list]:
    """(models, quantizers, configurations) for every rank and step."""
    rng = np.random.default_rng(seed)
    learn_set = blocks[rng.permutation(len(blocks))[:LEARN_BLOCKS]].astype(np.float64)
    rate_set = blocks[rng.permutation(len(blocks))[:RATE_SAMPLE]].astype(np.float64)
    beta, power = NMF_DIVERGENCE["beta"], NMF_DIVERGENCE["power"]
    models, quantizers, configurations = {}, {}, []
    for rank in RANKS:
        nmf = _learnt(
            work / f"nmf-r{rank}.npz",
            lambda rank=rank: {"basis": learn_nmf(learn_set**power, rank, iterations, seed, beta, log)},
        )
        pca = _learnt(
            work / f"pca-r{rank}.npz", lambda rank=rank: dict(zip(("mean", "basis"), learn_pca(learn_set, rank)))
        )
        for kind, arrays in (("nmf", nmf), ("pca", pca)):
            model = LowRankModel(
                kind,
                arrays["basis"].astype(np.float32).astype(np.float64),
                arrays["mean"].astype(np.float32).astype(np.float64) if "mean" in arrays else None,
                beta,
                power,
            )
            models[config_key(kind, rank)] = model
            values = model.analyse(blocks.astype(np.float64))
            lsd = log_spectral_distance(blocks, model.synthesise(values))
            log(f"{kind} rank {rank}: log-spectral distance of the unquantised fit {lsd:.2f} dB")
            for step in STEPS_DB[kind]:
                quantizer = Quantizer.train(kind, step, values)
                quantizers[config_key(kind, rank, step)] = quantizer
                configurations.append(_measure(model, quantizer, rate_set, rank, step, lsd, log))
    return models, quantizers, configurations


def _measure(model, quantizer, blocks, rank, step, lsd, log) -> dict:
    """The configuration's bitrate from coded packets, its model entropy and distortion on `blocks`."""
    from ..codecs.entropy import RangeWriter

    values = model.analyse(blocks)
    symbols = quantizer.symbols(values)
    total_bytes, model_bits = 0, 0.0
    for row in symbols:
        writer = RangeWriter()
        writer.write_all(row, quantizer.models)
        total_bytes += len(writer.to_bytes())
        model_bits += writer.model_bits
    per_second = RATE / BLOCK / len(blocks)
    quantized = log_spectral_distance(blocks, model.synthesise(quantizer.values(symbols)))
    row = {
        "basis": model.kind,
        "rank": rank,
        "step_db": step,
        "bitrate": round(8 * total_bytes * per_second, 1),
        "model_bitrate": round(model_bits * per_second, 1),
        "lsd_fit_db": round(lsd, 3),
        "lsd_quantized_db": round(quantized, 3),
    }
    log(json.dumps(row))
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("results/training-set/manifest-no-demo-speakers.jsonl"))
    parser.add_argument("--holdout", type=Path, default=Path("data/demo/manifest.jsonl"))
    parser.add_argument("--out", type=Path, default=Path("results/nmf/nmf-16k-v1.npz"))
    parser.add_argument("--minutes", type=float, default=40.0, help="audio drawn from the training set")
    parser.add_argument("--iterations", type=int, default=200, help="NMF multiplicative-update iterations")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    log = lambda message: print(message, flush=True)  # noqa: E731
    start = time.monotonic()
    blocks = training_blocks(args.data, args.holdout, args.minutes, args.seed, args.out.parent, log)
    log(f"{len(blocks)} blocks ({len(blocks) * BLOCK / RATE / 60:.1f} min)")
    models, quantizers, configurations = train_bundle(blocks, args.out.parent, args.iterations, args.seed, log)
    notes = {
        "data": args.data.name,
        "minutes": round(len(blocks) * BLOCK / RATE / 60, 1),
        "seed": args.seed,
        "nmf_iterations": args.iterations,
        "seconds": round(time.monotonic() - start),
    }
    config = {"configurations": configurations, "nmf_divergence": NMF_DIVERGENCE, "notes": notes}
    path = save_bundle(args.out, config, models, quantizers)
    log(f"wrote {path}: {path.stat().st_size / 1e3:.0f} kB, sha256 {file_digest(path)}")


if __name__ == "__main__":
    main()

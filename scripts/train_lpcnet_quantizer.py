"""Train the LPCNet 1.6 kbit/s quantizer's codebooks by k-means on a training set's features.

    python scripts/train_lpcnet_quantizer.py [--data results/training-set/manifest-no-demo-speakers.jsonl]
        [--out results/lpcnet/quantizer.npz] [--features-only] [--minutes M]

Every item is loaded at 16 kHz, scaled to -26 LUFS (as the vocoder's training crops are, give or
take their random gain) and analysed with evalkit.lpcnet.features; the features are cached in
OUT's folder (features-<manifest hash>.npz) so a rerun only repeats the k-means. The held-out
demo corpus is refused as training data (evalkit.neural.data.check_holdout). Seeded.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evalkit.audio import loudness, resample, to_mono  # noqa: E402
from evalkit.datasets import load_dataset  # noqa: E402
from evalkit.lpcnet.features import RATE, features  # noqa: E402
from evalkit.lpcnet.quantizer import train_codebooks  # noqa: E402
from evalkit.lpcnet.weights import save_weights  # noqa: E402
from evalkit.neural.data import check_holdout  # noqa: E402

TARGET_LUFS = -26.0


def item_features(item) -> np.ndarray | None:
    audio = to_mono(resample(item.load(), RATE))
    level = loudness(audio)
    if not np.isfinite(level):
        return None
    return features(audio.samples[0] * 10 ** ((TARGET_LUFS - level) / 20))


def cached_features(
    manifest: Path, cache_dir: Path, minutes: float | None = None, seed: int = 0
) -> dict[str, np.ndarray]:
    """Features of every item of the manifest (or of items drawn at random, seeded, up to `minutes`
    of audio), computed once and cached by the manifest's hash (and the draw)."""
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()[:16]
    draw = "" if minutes is None else f"-{minutes:g}min-seed{seed}"
    cache = cache_dir / f"features-{digest}{draw}.npz"
    if cache.is_file():
        with np.load(cache) as data:
            return {key: data[key] for key in data.files}
    items = load_dataset(manifest)
    check_holdout(items, load_dataset(ROOT / "data" / "demo" / "manifest.jsonl"))
    order = range(len(items)) if minutes is None else np.random.default_rng(seed).permutation(len(items))
    out, frames, start = {}, 0, time.monotonic()
    for count, index in enumerate(order):
        item = items[index]
        feats = item_features(item)
        if feats is not None:
            out[item.id] = feats
            frames += len(feats)
        if count % 200 == 0:
            print(
                f"features: {count}/{len(items)} items, {frames / 6000:.1f} min, {time.monotonic() - start:.0f} s",
                flush=True,
            )
        if minutes is not None and frames >= 6000 * minutes:  # 100 frames per second
            break
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", type=Path, default=ROOT / "results" / "training-set" / "manifest-no-demo-speakers.jsonl"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "lpcnet" / "quantizer.npz")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--features-only",
        action="store_true",
        help="stop after caching the features (the predictive codec's training input)",
    )
    parser.add_argument(
        "--minutes", type=float, default=None, help="features of items drawn at random up to this much audio"
    )
    args = parser.parse_args(argv)
    feats = cached_features(args.data, args.out.parent, args.minutes, args.seed)
    if args.features_only:
        return
    start = time.monotonic()
    books = train_codebooks(list(feats.values()), seed=args.seed, log=lambda m: print(m, flush=True))
    notes = {
        "data": args.data.name,
        "items": len(feats),
        "frames": int(sum(len(f) for f in feats.values())),
        "seed": args.seed,
        "seconds": round(time.monotonic() - start),
    }
    path = save_weights(args.out, codebooks=books, notes=notes)
    print(f"wrote {path} ({notes})")


if __name__ == "__main__":
    main()

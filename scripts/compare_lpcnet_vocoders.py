"""Compare LPCNet vocoders on held-out speech from unquantized features: the framewise design against
the reference sample-rate LPCNet, at equal training time.

    python scripts/compare_lpcnet_vocoders.py results/train/a/checkpoint.pt results/train/b/checkpoint.pt ...

Each argument is a training checkpoint (evalkit train's run_dir/checkpoint.pt) or an exported
weights file; its vocoder decodes the features of the demo items (data/demo, speakers unseen in
training) and ViSQOL speech and WARP-Q score the result against the input. Prints one line per
vocoder: training steps and minutes, then mean scores over the items.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evalkit.audio import Audio, align, resample, to_mono  # noqa: E402
from evalkit.datasets import load_dataset  # noqa: E402
from evalkit.lpcnet.features import RATE, features  # noqa: E402
from evalkit.metrics import evaluate  # noqa: E402
from evalkit.text_tables import format_table  # noqa: E402


def load_decoder(path: Path):
    """(decode(features) -> samples, description) for a checkpoint or an exported weights file."""
    import torch

    from evalkit.lpcnet.inference import Vocoder
    from evalkit.lpcnet.samplerate import SampleRateConfig, SampleRateDecoder
    from evalkit.lpcnet.weights import load_weights

    if path.suffix == ".npz":
        weights = load_weights(path)
        state, info = weights.section("vocoder."), weights.config.get("notes", {})
        kind, sizes = weights.config.get("vocoder", "framewise"), weights.config["vocoder_config"]
    else:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        state = {k: v.float().numpy() for k, v in checkpoint["model"].items()}
        kind = "samplerate" if "gru_a.weight_ih_l0" in state else "framewise"
        sizes, info = None, {"steps": checkpoint["step"], "minutes": round(checkpoint["elapsed"] / 60, 1)}
    if kind == "samplerate":
        config = SampleRateConfig(
            cond=state["frame_net.fc1.weight"].shape[0],
            embed=state["frame_net.embedding.weight"].shape[1],
            sample_embed=state["embed_sig.weight"].shape[1],
            gru_a=state["gru_a.weight_hh_l0"].shape[1],
            gru_b=state["gru_b.weight_hh_l0"].shape[1],
        )
        return SampleRateDecoder(state, config).decode, kind, info
    subframe = (sizes or {}).get("subframe") or state["subframe_net.out2.weight"].shape[0]
    return Vocoder(state, subframe=int(subframe)).decode, kind, info


def score(decode, items) -> dict[str, float]:
    totals: dict[str, list[float]] = {"visqol_speech": [], "warpq": []}
    for item in items:
        ref = to_mono(resample(item.load(), RATE))
        out = Audio(decode(features(ref.samples[0]))[None, : ref.frames], RATE)
        out = align(out, 0, ref.frames)
        for metric in totals:
            results = [r for r in evaluate(metric, ref, out) if r.status == "ok"]
            totals[metric] += [r.value for r in results]
    return {k: float(np.mean(v)) for k, v in totals.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("weights", type=Path, nargs="+")
    parser.add_argument("--items", type=int, default=6, help="demo items to score (every fourth, from the first)")
    args = parser.parse_args(argv)
    items = load_dataset(ROOT / "data" / "demo" / "manifest.jsonl")[::4][: args.items]
    rows = []
    for path in args.weights:
        decode, kind, info = load_decoder(path)
        scores = score(decode, items)
        rows.append(
            [
                str(path),
                kind,
                info.get("steps", "-"),
                info.get("minutes", "-"),
                f"{scores['visqol_speech']:.3f}",
                f"{scores['warpq']:.3f}",
            ]
        )
    print(format_table(["weights", "vocoder", "steps", "train_min", "visqol_speech", "warpq (lower better)"], rows))


if __name__ == "__main__":
    main()

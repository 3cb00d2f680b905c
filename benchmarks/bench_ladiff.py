"""LaDiffCodec: quality against network evaluations, against its own discrete codec, content fidelity, speed.

On the first ITEMS demo utterances (EVALKIT_BENCH_ITEMS=22 for the whole held-out corpus), at
1.5 and 3 kbit/s:

1. ViSQOL speech and PESQ-WB of ladiff decoded with 5, 10, 25, 50 and 100 network evaluations,
   midway from the condition (the card's midway_t) and by DDIM from noise (nan: the metrics'
   alignment check found the output unrelated to the input on every item), beside the same codes
   decoded directly by the RVQ model (`rvq-v2-*`) and by the condition path alone (midway_t = 0).
2. Content fidelity: phone error rate and phoneme hallucinations per minute (the `phoneme` metric)
   of ladiff, rvq-v2 and Codec2 at the nearest bitrates.
3. Decode real-time factor on one thread against the number of evaluations, as a ratio to the
   RVQ decoder timed in the same run, and MACs per second of audio.
"""

from __future__ import annotations

import os
import time

import numpy as np

from evalkit.audio import resample
from evalkit.cards import find_card
from evalkit.datasets import load_dataset
from evalkit.demo_pipeline import DEMO_MANIFEST
from evalkit.harness import roundtrip
from evalkit.metrics import evaluate
from evalkit.text_tables import format_table

ITEMS = int(os.environ.get("EVALKIT_BENCH_ITEMS", "6"))
EVALUATIONS = (5, 10, 25, 50, 100)
RATES = {"1.5": ("rvq-v2-1k5", "ladiff-1k5", "codec2-1600"), "3": ("rvq-v2-3k", "ladiff-3k", "codec2-3200")}
QUALITY = ("visqol_speech", "pesq_wb")


def _variant(card_name: str, **params):
    card = find_card(card_name)
    return type(card.build())(**{**card.params, **params})


def _scores(codec, items, metrics) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for item in items:
        audio = item.load()
        decoded = roundtrip(codec, audio).decoded
        for name in metrics:
            for row in evaluate(name, audio, decoded, item.text):
                values.setdefault(row.metric, []).append(row.value if row.status == "ok" else np.nan)
    # a metric that failed on every item (e.g. output the alignment check cannot match to the input) is nan
    return {
        k: float(np.mean(ok)) if (ok := [x for x in v if np.isfinite(x)]) else float("nan") for k, v in values.items()
    }


def _decode_seconds(codec, audio) -> float:
    data = codec.encode(resample(audio, codec.info.sample_rate))
    start = time.process_time()  # CPU time of this process: less sensitive to a busy machine
    codec.decode(data)
    return time.process_time() - start


def quality_table(items) -> list[list[str]]:
    rows = []
    for kbps, (rvq, ladiff, _) in RATES.items():
        scores = _scores(find_card(rvq).build(), items, QUALITY)
        rows.append([kbps, rvq, "direct", "-", *(f"{scores[m]:.2f}" for m in QUALITY)])
        scores = _scores(_variant(ladiff, midway_t=0, steps=0), items, QUALITY)
        rows.append([kbps, ladiff, "condition path", "0", *(f"{scores[m]:.2f}" for m in QUALITY)])
        midway = find_card(ladiff).params.get("midway_t") or 100
        # from noise, the predicted clean latent is clamped (latents are scaled to unit SD): unclamped, the first
        # steps near t = T, where abar_t is tiny, blow it up by orders of magnitude
        from_noise = {"midway_t": None, "sampler": "ddim", "clip": 3.0}
        for mode, params in ((f"midway t={midway}", {"midway_t": midway}), ("ddim from noise, clip 3", from_noise)):
            for n in EVALUATIONS:
                scores = _scores(_variant(ladiff, steps=n, **params), items, QUALITY)
                rows.append(
                    [kbps, ladiff, mode, str(min(n, params["midway_t"] or n)), *(f"{scores[m]:.2f}" for m in QUALITY)]
                )
    return rows


def content_table(items) -> list[list[str]]:
    rows = []
    for kbps, names in RATES.items():
        for name in names:
            scores = _scores(find_card(name).build(), items, ("phoneme",))
            rows.append([kbps, name, f"{scores['per']:.3f}", f"{scores['hallucinations_per_min']:.2f}"])
    return rows


def speed_table(audio) -> list[list[str]]:
    from bench_neural import complexity_row

    rows = []
    for kbps, (rvq, ladiff, _) in RATES.items():
        base = _decode_seconds(find_card(rvq).build(), audio)
        rows.append([kbps, rvq, "-", f"{base / audio.duration:.4f}", "1.0", *complexity_row(find_card(rvq).build())])
        for n in EVALUATIONS:
            codec = _variant(ladiff, steps=n)
            seconds = _decode_seconds(codec, audio)
            rows.append(
                [
                    kbps,
                    ladiff,
                    str(min(n, codec.midway_t or n)),
                    f"{seconds / audio.duration:.4f}",
                    f"{seconds / base:.0f}",
                    *complexity_row(codec),
                ]
            )
    return rows


def main() -> None:
    import torch
    from bench_codecs import speech

    torch.set_num_threads(1)
    items = load_dataset(DEMO_MANIFEST)[:ITEMS]
    minutes = sum(float(item.extra.get("duration", 0.0)) for item in items) / 60
    print(f"{len(items)} demo items ({minutes:.1f} min), held out from training; means over items")
    print(format_table(["kbit/s", "codec", "decoding", "evaluations", *QUALITY], quality_table(items)))
    print(format_table(["kbit/s", "codec", "per", "hallucinations_per_min"], content_table(items)))
    audio = speech(5.0)
    print(
        f"decode on one thread, {audio.duration:.0f} s of speech (CPU seconds); x_rvq = time / the RVQ decoder's "
        "in this run; MACs per second of audio (the decoder: all evaluations + the autoencoder decoder)"
    )
    print(
        format_table(
            ["kbit/s", "codec", "evaluations", "dec_rtf", "x_rvq", "enc_MMAC/s", "dec_MMAC/s", "params_M"],
            speed_table(audio),
        )
    )


if __name__ == "__main__":
    main()

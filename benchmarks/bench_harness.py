"""Scoring throughput, parallel efficiency, rerun cost and peak memory of the harness.

Fixed set: 40 items (the demo corpus, cycled) x 4 codecs x PESQ-WB, STOI and ViSQOL speech.
Parallel efficiency = harness throughput / (cores x single-process raw metric throughput),
both measured in this run, so the ratio is meaningful on a shared, noisy machine.
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import time
from pathlib import Path

from evalkit.cards import find_card
from evalkit.datasets import load_dataset
from evalkit.demo import DEMO_MANIFEST
from evalkit.experiment import experiment_from_dict
from evalkit.harness import roundtrip
from evalkit.metrics import evaluate
from evalkit.runner import run_experiment

ITEMS = 40
CODECS = ["opus-12k", "amr-wb-12k65", "g722-64k", "codec2-3200"]
METRICS = ["pesq_wb", "stoi", "visqol_speech"]
RAW_ITEMS = 20  # items of the fixed set scored in-process for the raw baseline, one codec each


def cycled_manifest(folder: Path) -> Path:
    items = load_dataset(DEMO_MANIFEST)
    lines = [json.dumps({"id": f"{i:02d}-{items[i % len(items)].id}", "path": str(items[i % len(items)].path)})
             for i in range(ITEMS)]
    path = folder / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def raw_throughput(manifest: Path) -> float:
    """Scores per second of the metrics alone, in this process, on already decoded pairs drawn
    from the same fixed set (same durations), one codec per item in turn."""
    pairs = []
    for i, item in enumerate(load_dataset(manifest)[:RAW_ITEMS]):
        ref = item.load()
        pairs.append((ref, roundtrip(find_card(CODECS[i % len(CODECS)]).build(), ref).decoded))
    for name in METRICS:  # warm: model loading and JIT compilation are not throughput
        evaluate(name, *pairs[0])
    start = time.perf_counter()
    for ref, deg in pairs:
        for name in METRICS:
            evaluate(name, ref, deg)
    return len(pairs) * len(METRICS) / (time.perf_counter() - start)


def main() -> None:
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        manifest = cycled_manifest(folder)
        raw = raw_throughput(manifest)
        exp = experiment_from_dict({
            "name": "bench", "dataset": str(manifest), "codecs": CODECS, "metrics": METRICS,
            "workers": cores, "database": f"sqlite:///{folder / 'db.sqlite'}", "cache": str(folder / "cache"),
        })
        start = time.perf_counter()
        run_experiment(exp, progress=False)
        first = time.perf_counter() - start
        start = time.perf_counter()
        run_experiment(exp, progress=False)
        rerun = time.perf_counter() - start
    scores = ITEMS * len(CODECS) * len(METRICS)
    harness = scores / first
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{ITEMS} items x {len(CODECS)} codecs x {', '.join(METRICS)} = {scores} scores on {cores} cores")
    print(f"raw metric throughput, one process:  {raw:.2f} scores/s (baseline)")
    print(f"harness throughput, {cores} workers:      {harness:.2f} scores/s  ({first:.1f} s, codecs and start-up included)")
    print(f"parallel efficiency:                 {harness / (cores * raw):.2f}  (target >= 0.85)")
    print(f"unchanged rerun / first run:         {rerun / first:.3f}  ({rerun:.2f} s; target <= 0.05)")
    print(f"peak memory: driver {peak_self:.0f} MB, largest worker {peak_workers:.0f} MB")

"""Scoring throughput, parallel efficiency, rerun cost and peak memory of the harness.

Fixed set: 40 items (the demo corpus, cycled) x 4 codecs x PESQ-WB, STOI and ViSQOL speech.
The baseline is one process calling the libraries directly, no harness, measured in this run
(so the ratios mean something on a shared, noisy machine), timed apart for the metrics and
for the codec round trips that produce what they score:

* harness / (cores x raw metric throughput): the codecs' own work counts against the harness;
* parallel efficiency = harness / (cores x raw throughput of the same work, round trip and
  metrics): what the pool, the database writer and the cache cost.
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import threading
import time
from dataclasses import dataclass
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
RAW_ITEMS = ITEMS  # the baseline round-trips and scores every item once, the codecs taking turns


def cycled_manifest(folder: Path) -> Path:
    items = load_dataset(DEMO_MANIFEST)
    lines = [json.dumps({"id": f"{i:02d}-{items[i % len(items)].id}", "path": str(items[i % len(items)].path)})
             for i in range(ITEMS)]
    path = folder / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Baseline:
    """One process, direct calls: seconds spent in codec round trips and in metrics."""

    scores: int
    roundtrip_seconds: float
    metric_seconds: float

    @property
    def metric_throughput(self) -> float:
        return self.scores / self.metric_seconds

    @property
    def throughput(self) -> float:
        return self.scores / (self.metric_seconds + self.roundtrip_seconds)


def raw_baseline(manifest: Path) -> Baseline:
    """Round trip and score items of the fixed set in this process, one codec per item in turn
    (same durations and codecs as the harness run)."""
    items = load_dataset(manifest)[:RAW_ITEMS]
    codecs = [find_card(CODECS[i % len(CODECS)]).build() for i in range(len(items))]
    first = items[0].load()  # warm: model loading and JIT compilation are not throughput
    for name in METRICS:
        evaluate(name, first, roundtrip(codecs[0], first).decoded)
    trips = metrics = 0.0
    for item, codec in zip(items, codecs):
        ref = item.load()
        start = time.perf_counter()
        decoded = roundtrip(codec, ref).decoded
        middle = time.perf_counter()
        for name in METRICS:
            evaluate(name, ref, decoded)
        trips, metrics = trips + middle - start, metrics + time.perf_counter() - middle
    return Baseline(len(items) * len(METRICS), trips, metrics)


class WorkerPeak:
    """Largest peak resident memory (VmHWM) among this process's descendants, sampled while
    the run goes on: pool workers are children of the fork server, so RUSAGE_CHILDREN never
    counts them. A peak never falls, so a sample late in a worker's life is its peak."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak_mb = interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "WorkerPeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            for pid in _descendants(os.getpid()):
                self.peak_mb = max(self.peak_mb, _vm_hwm_mb(pid))


def _descendants(pid: int) -> list[int]:
    found = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids = [int(k) for k in children.read_text().split()]
        except OSError:  # the task ended meanwhile
            continue
        for kid in kids:
            found += [kid, *_descendants(kid)]
    return found


def _vm_hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main() -> None:
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        manifest = cycled_manifest(folder)
        raw = raw_baseline(manifest)
        exp = experiment_from_dict({
            "name": "bench", "dataset": str(manifest), "codecs": CODECS, "metrics": METRICS,
            "workers": cores, "database": f"sqlite:///{folder / 'db.sqlite'}", "cache": str(folder / "cache"),
        })
        start = time.perf_counter()
        with WorkerPeak() as workers:
            run_experiment(exp, progress=False)
        first = time.perf_counter() - start
        start = time.perf_counter()
        run_experiment(exp, progress=False)
        rerun = time.perf_counter() - start
    scores = ITEMS * len(CODECS) * len(METRICS)
    harness = scores / first
    codec_share = raw.roundtrip_seconds / raw.metric_seconds
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{ITEMS} items x {len(CODECS)} codecs x {', '.join(METRICS)} = {scores} scores on {cores} cores")
    print(f"raw, one process, metrics only:      {raw.metric_throughput:.2f} scores/s")
    print(f"raw, one process, round trip + metrics: {raw.throughput:.2f} scores/s  (round trips = {codec_share:.2f} x metric time)")
    print(f"harness throughput, {cores} workers:      {harness:.2f} scores/s  ({first:.1f} s, codecs and start-up included)")
    print(f"parallel efficiency, same work:      {harness / (cores * raw.throughput):.2f}  (target >= 0.85)")
    print(f"harness / (cores x metrics only):    {harness / (cores * raw.metric_throughput):.2f}  (codec work counted as overhead)")
    print(f"unchanged rerun / first run:         {rerun / first:.3f}  ({rerun:.2f} s; target <= 0.05)")
    print(f"peak memory: driver {peak_self:.0f} MB, largest worker {workers.peak_mb:.0f} MB")

"""Scoring decoded files made elsewhere: evalkit's pairs/s against the metric packages called directly.

A pre-decoded folder of 100 items (the demo corpus cycled, through Opus 12 kbit/s, each output
9 samples late as one published codec's are, saved at 24 kHz under other names) is scored with
PESQ-WB and STOI three ways, one process each, in this run:

* direct: soundfile reads, soxr resamples, the known lag is cut off, `pesq.pesq` and
  `pystoi.stoi` are called; what a hand-written script does when it knows the lag;
* `evalkit score` without a database (runner.score_pairs): matching, content hashes, lag
  estimated and applied, result rows;
* `evalkit score --run` (runner.run_experiment): the same into a SQLite results database.

Each is timed twice, interleaved, and the best time counts. Target: evalkit pairs/s >= 0.9 x
direct pairs/s.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from evalkit.audio import Audio, resample, save
from evalkit.cards import find_card
from evalkit.datasets import load_dataset
from evalkit.demo_pipeline import DEMO_MANIFEST
from evalkit.experiment import experiment_from_dict
from evalkit.harness import roundtrip
from evalkit.runner import run_experiment, score_pairs

ITEMS = 100
LAG = 9  # samples at 16 kHz
RATE = 24000  # the decoded files' rate; the references are 16 kHz
METRICS = ["pesq_wb", "stoi"]
ROUNDS = 2


def make_folders(root: Path) -> tuple[Path, Path]:
    """References (ref/NNN.wav) and their decoded versions (deg/NNN.decoded.wav)."""
    items = load_dataset(DEMO_MANIFEST)
    codec = find_card("opus-12k").build()
    (root / "ref").mkdir()
    (root / "deg").mkdir()
    for index in range(ITEMS):
        ref = items[index % len(items)].load()
        decoded = roundtrip(codec, ref).decoded.samples[0]
        late = np.concatenate([np.zeros(LAG, np.float32), decoded])
        save(ref, root / "ref" / f"{index:03d}.wav")
        save(resample(Audio(late, ref.sample_rate), RATE), root / "deg" / f"{index:03d}.decoded.wav", "FLOAT")
    return root / "ref", root / "deg"


def direct(ref_dir: Path, deg_dir: Path) -> float:
    """Seconds to score every pair with the packages themselves."""
    import soundfile as sf
    import soxr
    from pesq import pesq
    from pystoi import stoi

    start = time.perf_counter()
    for path in sorted(ref_dir.glob("*.wav")):
        ref, rate = sf.read(str(path), dtype="float64")
        deg, deg_rate = sf.read(str(deg_dir / f"{path.stem}.decoded.wav"), dtype="float64")
        deg = soxr.resample(deg, deg_rate, rate, quality="VHQ")[LAG:]
        frames = min(len(ref), len(deg))
        pesq(rate, ref[:frames], deg[:frames], "wb")
        stoi(ref[:frames], deg[:frames], rate, extended=False)
    return time.perf_counter() - start


def experiment(ref_dir: Path, deg_dir: Path, database: str | None):
    return experiment_from_dict(
        {
            "name": "bench-score",
            "dataset": str(ref_dir),
            "metrics": METRICS,
            "workers": 0,
            "codecs": [{"name": "elsewhere", "decoded": str(deg_dir), "bitrate_kbps": 12}],
            "database": database,
            "cache": str(ref_dir.parent / "cache"),
        }
    )


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ref_dir, deg_dir = make_folders(Path(tmp))
        direct(ref_dir, deg_dir)  # warm: libraries loaded, files in the page cache
        memory = experiment(ref_dir, deg_dir, None)
        best = {"direct": [], "memory": [], "stored": []}
        for round_ in range(ROUNDS):  # interleaved, best of each: the machine is shared and noisy
            best["direct"].append(direct(ref_dir, deg_dir))
            seconds, frame = timed(lambda: score_pairs(memory, workers=0, progress=False))
            best["memory"].append(seconds)
            database = f"sqlite:///{Path(tmp) / f'db{round_}.sqlite'}"
            seconds, stored = timed(
                lambda: run_experiment(
                    experiment(ref_dir, deg_dir, database),  # noqa: B023
                    workers=0,
                    progress=False,
                )
            )
            best["stored"].append(seconds)
    direct_s, memory_s, stored_s = (min(best[k]) for k in ("direct", "memory", "stored"))
    scored = frame[frame.metric.isin(METRICS)]
    lags = scored.drop_duplicates("item_id").lag
    print(
        f"{ITEMS} pre-decoded items ({RATE} Hz files, {LAG} samples late) x {', '.join(METRICS)}, one process "
        f"each, best of {ROUNDS} interleaved rounds"
    )
    print(f"direct package calls (lag known):    {ITEMS / direct_s:.2f} pairs/s")
    print(
        f"evalkit score (no database):         {ITEMS / memory_s:.2f} pairs/s  "
        f"ratio {direct_s / memory_s:.2f} (target >= 0.9)"
    )
    print(f"evalkit score --run (SQLite):        {ITEMS / stored_s:.2f} pairs/s  ratio {direct_s / stored_s:.2f}")
    print(
        f"rows ok: {(scored.status == 'ok').sum()}/{len(scored)} (stored {(stored.status == 'ok').sum()}); "
        f"lag found: {sorted(set(lags.astype(int)))} samples"
    )

"""Harness overhead: `evalkit run` against the metric packages called directly, in the same run.

Two workloads, both printed:

* speech (the harness's own cost laid bare): ITEMS clips of real 16 kHz speech, 2.6 s each
  (windows of the demo corpus at distinct offsets), through the identity codec and Opus
  12 kbit/s, scored with PESQ-WB and STOI. Baselines: a plain loop that reads each file, runs
  the codec's own encode/decode (none for identity) and calls `pesq.pesq` and `pystoi.stoi`;
  and the same work in a pool of 2 processes with one thread each (forked from this process, so
  it starts with every package imported). evalkit runs it with 1 and with 2 workers into a
  fresh SQLite database (migrated beforehand: a schema is made once per database, not per run),
  each run starting its workers from scratch as a new `evalkit run` does (the command's own
  start-up is not counted), then again unchanged. The rounds are interleaved and repeated, so
  each ratio compares runs made minutes apart on the same (shared, noisy) machine; each is given
  for wall time and for the CPU seconds of every process involved (steadier when the machine is
  shared). Targets: 2 workers >= 0.9 x the pool, 1 worker >= 0.9 x the plain loop, unchanged
  rerun <= 0.02 x the first run, worker RSS <= 200 MB.
  Imports: evalkit's runs pay for importing the metric packages (pesq, pystoi and the
  scipy.signal it pulls in, about a CPU-second) in the server its workers are forked from; a
  script of one's own pays the same once, before its first pair. The baselines here import them
  before their clock starts, so each round also times that import in a fresh interpreter (on
  top of numpy and soundfile, which both sides have) and the ratios are given twice: with it
  charged to the plain loop and to the pool (once: the pool forks after it), which is the
  like-for-like figure the targets are read against, and without it, as measured before.
* ViSQOL-heavy (what a realistic experiment costs): 40 items x 4 codecs x PESQ-WB, STOI and
  ViSQOL speech, against one process calling the libraries directly.

EVALKIT_BENCH_ITEMS (default 480) and EVALKIT_BENCH_ROUNDS (default 2) size the speech workload.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import json  # noqa: E402
import multiprocessing  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from multiprocessing import forkserver  # noqa: E402
from pathlib import Path  # noqa: E402

from evalkit.audio import save  # noqa: E402
from evalkit.cards import find_card  # noqa: E402
from evalkit.datasets import load_dataset  # noqa: E402
from evalkit.demo_pipeline import DEMO_MANIFEST  # noqa: E402
from evalkit.executors import single_thread_env  # noqa: E402
from evalkit.experiment import experiment_from_dict  # noqa: E402
from evalkit.harness import roundtrip  # noqa: E402
from evalkit.metrics import evaluate  # noqa: E402
from evalkit.runner import run_experiment  # noqa: E402
from evalkit.store import connect  # noqa: E402

SPEECH_ITEMS = int(os.environ.get("EVALKIT_BENCH_ITEMS", "480"))
SPEECH_ROUNDS = int(os.environ.get("EVALKIT_BENCH_ROUNDS", "2"))
CLIP_SECONDS = 2.6
SPEECH_CODECS = ["reference", "opus-12k"]
SPEECH_METRICS = ["pesq_wb", "stoi"]
POOL = 2

ITEMS = 40
CODECS = ["opus-12k", "amr-wb-12k65", "g722-64k", "codec2-3200"]
METRICS = ["pesq_wb", "stoi", "visqol_speech"]


# -- the speech workload ----------------------------------------------------------------------


def speech_clips(folder: Path, count: int, seconds: float = CLIP_SECONDS) -> Path:
    """`count` clips of real speech, `seconds` long, cut from the demo corpus at distinct offsets
    (so no two share content, and the cache cannot serve one from another); returns the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = [item.load() for item in load_dataset(DEMO_MANIFEST)]
    lines, offset = [], 0.0
    while len(lines) < count:
        cut = [a for a in sources if int((offset + seconds) * a.sample_rate) <= a.frames]
        if not cut:
            offset = offset % 0.17 + 0.05  # corpus used up: start again, shifted by a fraction of a window
            continue
        for audio in cut[: count - len(lines)]:
            start, size = int(offset * audio.sample_rate), int(seconds * audio.sample_rate)
            name = f"{len(lines):04d}"
            save(audio.with_samples(audio.samples[:, start : start + size]), folder / f"{name}.wav")
            lines.append(json.dumps({"id": name, "path": f"{name}.wav"}))
        offset += 0.17
    manifest = folder / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


_CODEC_CACHE: dict = {}


def direct_pair(job: tuple[str, str]) -> float:
    """One pair, scored the way a hand-written script would: read, the codec's own encode and
    decode (nothing for the identity codec), pesq and pystoi. Returns the PESQ score."""
    import numpy as np
    import soundfile as sf
    from pesq import pesq
    from pystoi import stoi

    path, codec_name = job
    ref, rate = sf.read(path, dtype="float32")
    deg = ref
    if codec_name != "reference":
        codec = _CODEC_CACHE.get(codec_name) or _CODEC_CACHE.setdefault(codec_name, find_card(codec_name).build())
        from evalkit.audio import Audio

        out = codec.decode(codec.encode(Audio(ref, rate))).samples[0]
        deg = out[codec.info.lookahead_samples :][: len(ref)]
        deg = np.pad(deg, (0, len(ref) - len(deg)))
    ref64, deg64 = ref.astype(np.float64), deg.astype(np.float64)
    score = pesq(rate, ref64, deg64, "wb")
    stoi(ref64, deg64, rate)
    return score


def _jobs(manifest: Path) -> list[tuple[str, str]]:
    items = load_dataset(manifest, allow_outside=True)  # the manifest names the demo files where they are
    return [(str(item.path), codec) for codec in SPEECH_CODECS for item in items]


def plain_loop(jobs) -> None:
    for job in jobs:
        direct_pair(job)


def plain_pool(jobs) -> None:
    """The same work in a pool of POOL single-threaded processes (forked: no import cost counted)."""
    with multiprocessing.get_context("fork").Pool(POOL, initializer=single_thread_env) as pool:
        for _ in pool.imap_unordered(direct_pair, jobs, chunksize=4):
            pass


def speech_experiment(manifest: Path, folder: Path, workers: int):
    database = f"sqlite:///{folder / f'db-{workers}.sqlite'}"
    connect(database).dispose()  # the schema is made once per database, before the clock starts
    return experiment_from_dict(
        {
            "name": "bench-speech",
            "dataset": str(manifest),
            "codecs": SPEECH_CODECS,
            "metrics": SPEECH_METRICS,
            "workers": workers,
            "database": database,
            "cache": str(folder / f"cache-{workers}"),
        }
    )


def measured(work, *args) -> Meter:
    with Meter() as meter:
        work(*args)
    return meter


def evalkit_run(exp) -> None:
    run_experiment(exp, progress=False)


def fresh_evalkit_run(exp) -> None:
    """A run that starts its workers from scratch, as `evalkit run` does in a new process: the
    fork server an earlier run left in this process is stopped first (its start-up counts)."""
    forkserver._forkserver._stop()  # the standard library's own hook for a fresh server
    run_experiment(exp, progress=False)


RUNS = ("plain loop", "evalkit, 1 worker", f"{POOL}-process pool", f"evalkit, {POOL} workers", "unchanged rerun")
RATIOS = {
    "1 worker / plain loop": ("plain loop", "evalkit, 1 worker", ">= 0.9"),
    f"{POOL} workers / {POOL}-process pool": (f"{POOL}-process pool", f"evalkit, {POOL} workers", ">= 0.9"),
    "rerun / first run": (f"evalkit, {POOL} workers", "unchanged rerun", "<= 0.02"),
}


# What a script scoring with PESQ and STOI imports beyond numpy and soundfile, timed in a fresh interpreter.
_IMPORT_PROBE = (
    "import time, numpy, soundfile; w, c = time.perf_counter(), time.process_time(); import pesq, pystoi; "
    "print(time.perf_counter() - w, time.process_time() - c)"
)


def metric_imports() -> Meter:
    """Wall and CPU seconds of importing the speech workload's metric packages once, as a script does."""
    found = subprocess.run([sys.executable, "-c", _IMPORT_PROBE], capture_output=True, text=True, check=True)
    meter = Meter()
    meter.wall, meter.cpu = (float(v) for v in found.stdout.split())
    return meter


def speech_round(manifest: Path, folder: Path, jobs, index: int) -> dict[str, Meter]:
    """plain loop, evalkit 1 worker, pool, evalkit 2 workers, unchanged rerun: adjacent in time;
    and the metric packages' import, as a script of one's own would pay it."""
    runs = folder / f"round-{index}"
    runs.mkdir()
    two = speech_experiment(manifest, runs, POOL)
    work = [
        (plain_loop, jobs),
        (fresh_evalkit_run, speech_experiment(manifest, runs, 1)),
        (plain_pool, jobs),
        (fresh_evalkit_run, two),
        (evalkit_run, two),
    ]
    meters = {name: measured(fn, arg) for name, (fn, arg) in zip(RUNS, work)}
    return {**meters, "imports": metric_imports()}


def speech_workload() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        manifest = speech_clips(folder / "clips", SPEECH_ITEMS)
        jobs = _jobs(manifest)
        direct_pair(jobs[-1])  # warm: the codec is built, the packages are imported
        print(
            f"speech: {SPEECH_ITEMS} clips x {len(SPEECH_CODECS)} codecs ({', '.join(SPEECH_CODECS)}) = "
            f"{len(jobs)} pairs, {CLIP_SECONDS} s each, {' + '.join(SPEECH_METRICS)}; "
            f"{os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.1f}"
        )
        rounds = []
        for index in range(SPEECH_ROUNDS):
            rounds.append(speech_round(manifest, folder, jobs, index))
            shown = "; ".join(
                f"{name} {len(jobs) / m.wall:.1f} pairs/s"
                for name, m in rounds[-1].items()
                if name not in ("unchanged rerun", "imports")
            )
            print(
                f"round {index + 1} (load {os.getloadavg()[0]:.1f}): {shown}; "
                f"rerun {rounds[-1]['unchanged rerun'].wall:.2f} s; "
                f"metric packages' import {rounds[-1]['imports'].cpu:.2f} CPU-s",
                flush=True,
            )
    print(
        "ratios, median of the rounds (each round's in brackets); wall time, then CPU seconds of every process;\n"
        "  the baselines charged their metric packages' import (evalkit's runs pay it in their workers' server),\n"
        "  then (uncounted) without it, as they were measured before:"
    )
    for name, (base, run, target) in RATIOS.items():
        rerun = name.startswith("rerun")
        shown = []
        for charged in (True, False) if not rerun else (False,):
            wall, cpu = _ratios(rounds, base, run, rerun, charged)
            shown.append(
                f"wall {statistics.median(wall):.3f} [{', '.join(f'{v:.3f}' for v in wall)}]  "
                f"CPU {statistics.median(cpu):.3f} [{', '.join(f'{v:.3f}' for v in cpu)}]"
            )
        uncounted = f"  (uncounted: {shown[1]})" if len(shown) > 1 else ""
        print(f"  {name + ':':34s} {shown[0]}  (target {target}){uncounted}")
    worker = max(r[f"evalkit, {POOL} workers"].peak_mb for r in rounds)
    print(f"  {'largest evalkit worker RSS:':34s} {worker:.0f} MB  (target <= 200 MB)")


def _ratios(rounds, base: str, run: str, rerun: bool, charged: bool) -> tuple[list[float], list[float]]:
    """Per round, wall and CPU ratios (evalkit's run as a share of the baseline's speed, or the
    rerun's share of the first run); `charged`: the baseline pays its metric packages' import."""
    if rerun:
        return [r[run].wall / r[base].wall for r in rounds], [r[run].cpu / r[base].cpu for r in rounds]
    extra = [(r["imports"].wall, r["imports"].cpu) if charged else (0.0, 0.0) for r in rounds]
    wall = [(r[base].wall + w) / r[run].wall for r, (w, _) in zip(rounds, extra)]
    return wall, [(r[base].cpu + c) / r[run].cpu for r, (_, c) in zip(rounds, extra)]


# -- the ViSQOL-heavy workload ------------------------------------------------------------------


def cycled_manifest(folder: Path) -> Path:
    items = load_dataset(DEMO_MANIFEST)
    lines = [
        json.dumps({"id": f"{i:02d}-{items[i % len(items)].id}", "path": str(items[i % len(items)].path)})
        for i in range(ITEMS)
    ]
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
    items = load_dataset(manifest, allow_outside=True)  # the manifest names the demo files where they are
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


class Meter:
    """Over a block: wall seconds, CPU seconds of this process and all its descendants (pool
    workers are children of the fork server, so RUSAGE_CHILDREN never counts them: /proc is
    sampled), and the largest peak resident memory (VmHWM) among the descendants. A process
    that ends between two samples loses at most one interval of CPU time. The sampling thread's
    own CPU time is not counted: it grows with wall time and with the number of processes
    sampled, so on a loaded machine it would be charged to evalkit's runs more than to the loop."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.wall = self.cpu = self.peak_mb = 0.0
        self._sampling_cpu = 0.0
        self._start: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Meter:
        self._start = {pid: _cpu_seconds(pid) for pid in _descendants(os.getpid())}
        self._own, self._t0 = time.process_time(), time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._t0
        self._stop.set()
        self._thread.join()
        self._sample()
        spent = sum(seconds - self._start.get(pid, 0.0) for pid, seconds in self._last.items())
        self.cpu = time.process_time() - self._own - self._sampling_cpu + spent

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()
        self._sampling_cpu = time.thread_time()  # this thread's CPU seconds, all of them spent sampling

    def _sample(self) -> None:
        for pid in _descendants(os.getpid()):
            seconds = _cpu_seconds(pid)
            if seconds:
                self._last[pid] = max(self._last.get(pid, 0.0), seconds)
            self.peak_mb = max(self.peak_mb, _vm_hwm_mb(pid))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def visqol_workload() -> None:
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        manifest = cycled_manifest(folder)
        raw = raw_baseline(manifest)
        database = f"sqlite:///{folder / 'db.sqlite'}"
        connect(database).dispose()
        exp = experiment_from_dict(
            {
                "name": "bench",
                "dataset": str(manifest),
                "codecs": CODECS,
                "metrics": METRICS,
                "workers": cores,
                "database": database,
                "cache": str(folder / "cache"),
                "allow_outside": True,
            }
        )
        first_run = measured(evalkit_run, exp)
        first, rerun = first_run.wall, measured(evalkit_run, exp).wall
    scores = ITEMS * len(CODECS) * len(METRICS)
    harness = scores / first
    codec_share = raw.roundtrip_seconds / raw.metric_seconds
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"ViSQOL-heavy: {ITEMS} items x {len(CODECS)} codecs x {', '.join(METRICS)} = {scores} scores on {cores} cores"
    )
    print(f"raw, one process, metrics only:      {raw.metric_throughput:.2f} scores/s")
    print(
        f"raw, one process, round trip + metrics: {raw.throughput:.2f} scores/s  (round trips = {codec_share:.2f} x metric time)"
    )
    print(
        f"harness throughput, {cores} workers:      {harness:.2f} scores/s  ({first:.1f} s, codecs and start-up included)"
    )
    print(f"parallel efficiency, same work:      {harness / (cores * raw.throughput):.2f}  (target >= 0.85)")
    print(
        f"harness / (cores x metrics only):    {harness / (cores * raw.metric_throughput):.2f}  (codec work counted as overhead)"
    )
    print(f"unchanged rerun / first run:         {rerun / first:.3f}  ({rerun:.2f} s; target <= 0.05)")
    print(f"peak memory: driver {peak_self:.0f} MB, largest worker {first_run.peak_mb:.0f} MB")


def main() -> None:
    speech_workload()
    print()
    visqol_workload()


if __name__ == "__main__":
    main()

"""Speed, CPU time and memory of a codec on one CPU thread, measured in a fresh process.

What the numbers mean (all for mono audio at the codec's native rate):

* ``encode_rtf`` / ``decode_rtf``: wall seconds per second of audio, the median of `repeats`
  warm runs (after one untimed run), through `Codec.encode` / `Codec.decode` (bytes in and out).
* ``encode_cpu_s_per_hour`` / ``decode_cpu_s_per_hour``: CPU seconds (user + system, this
  process and any helper process it ran, e.g. ffmpeg or c2enc) per hour of audio, the median of
  the same runs: the energy proxy, comparable with MACs per second.
* ``peak_memory_mb``: the peak resident set size (RSS) of the measuring process, i.e. Python,
  evalkit, the codec's libraries and weights, and the clip (the footprint of running it).
* ``working_memory_mb``: how much encoding and decoding the clip raised that peak above the
  process's peak after building the codec and coding 0.1 s (libraries loaded, weights in);
  0 when the codec works within memory the process already had.

Helper processes' memory is not included (their CPU time is): the peak RSS the kernel reports
for a child includes the memory image it was spawned from, so its own share cannot be told apart.

The measuring process is fresh (no memory high-water mark from earlier work; peak RSS is read
from /proc/self/status VmHWM on Linux, getrusage elsewhere) and starts with every math library
limited to one thread; torch, if the codec loaded it, is set to one thread.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import EvalkitError

if TYPE_CHECKING:  # the measuring process imports them itself; the store's tables need only Cost
    from ..audio import Audio
    from ..cards import Card

__all__ = ["Cost", "measure_cost", "measure_cost_isolated", "ONE_THREAD_ENV"]

ONE_THREAD_ENV = {
    name: "1"
    for name in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
    )
}
_TIMEOUT = 1800  # seconds; a codec slower than that on a short clip is not worth profiling
_RSS_UNIT = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux


@dataclass(frozen=True)
class Cost:
    """The one list of what a cost measurement yields (the profiles table takes its columns from it)."""

    encode_rtf: float  # wall seconds per audio second, one thread, warm median
    decode_rtf: float
    encode_cpu_s_per_hour: float  # CPU seconds per hour of audio: energy proxy
    decode_cpu_s_per_hour: float
    peak_memory_mb: float  # peak RSS of the measuring process
    working_memory_mb: float  # growth of that peak while coding
    repeats: int
    audio_seconds: float


def measure_cost_isolated(card: Card, native: Audio, repeats: int = 5) -> Cost:
    """`measure_cost` of the card's codec on `native` (at its rate), in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="evalkit-cost-") as folder:
        clip = Path(folder) / "clip.npy"
        np.save(clip, native.samples)
        spec = {"card": _card_spec(card), "clip": str(clip), "rate": native.sample_rate, "repeats": repeats}
        done = _run_child(json.dumps(spec), card.name)
    return Cost(**json.loads(done.stdout.strip().splitlines()[-1]))


def measure_cost(codec, native: Audio, repeats: int = 5) -> Cost:
    """Time encode and decode of `native` in this process; memory as described in the module doc."""
    if repeats < 1:
        raise EvalkitError(f"repeats must be at least 1, got {repeats}")
    short = native.with_samples(native.samples[:, : max(1, native.sample_rate // 10)])
    codec.decode(codec.encode(short))  # loads lazy libraries before the memory baseline
    _one_thread_torch()
    baseline = _peak_rss()
    codec.decode(codec.encode(native))  # warm-up at full length
    runs = [_timed_roundtrip(codec, native) for _ in range(repeats)]
    per_hour = 3600.0 / native.duration
    return Cost(
        encode_rtf=statistics.median(r[0] for r in runs) / native.duration,
        decode_rtf=statistics.median(r[1] for r in runs) / native.duration,
        encode_cpu_s_per_hour=statistics.median(r[2] for r in runs) * per_hour,
        decode_cpu_s_per_hour=statistics.median(r[3] for r in runs) * per_hour,
        peak_memory_mb=_peak_rss(),
        working_memory_mb=max(0.0, _peak_rss() - baseline),
        repeats=repeats,
        audio_seconds=native.duration,
    )


def _timed_roundtrip(codec, native: Audio) -> tuple[float, float, float, float]:
    """(encode wall, decode wall, encode CPU, decode CPU) seconds of one round trip."""
    wall0, cpu0 = time.perf_counter(), _cpu()
    data = codec.encode(native)
    wall1, cpu1 = time.perf_counter(), _cpu()
    codec.decode(data)
    wall2, cpu2 = time.perf_counter(), _cpu()
    return wall1 - wall0, wall2 - wall1, cpu1 - cpu0, cpu2 - cpu1


def _cpu() -> float:
    """CPU seconds of this process plus its finished helper processes (ffmpeg, c2enc, ...)."""
    return time.process_time() + _children_cpu()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _peak_rss() -> float:
    """Peak RSS in MiB of this process image. Linux's VmHWM, because getrusage's ru_maxrss keeps
    the high-water mark of the image that exec replaced: the parent's, when spawned from it."""
    try:
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _RSS_UNIT / 2**20


def _one_thread_torch() -> None:
    if "torch" in sys.modules:  # never import torch just for this: it would cost memory
        sys.modules["torch"].set_num_threads(1)


def _card_spec(card: Card) -> dict:
    spec = dataclasses.asdict(card)
    spec["path"] = str(card.path) if card.path else None
    return spec


def _run_child(spec: str, name: str) -> subprocess.CompletedProcess:
    package_root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, **ONE_THREAD_ENV, "PYTHONPATH": path}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "evalkit.profile.resource_use"],
            input=spec,
            env=env,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise EvalkitError(f"{name}: speed measurement timed out after {_TIMEOUT} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise EvalkitError(f"{name}: speed measurement failed ({last})")
    return done


def _child_main() -> None:
    """Entry point of the measuring process: a card spec as JSON on stdin, a Cost as JSON out."""
    from ..audio import Audio
    from ..cards import Card

    spec = json.loads(sys.stdin.read())
    card = Card(**{**spec["card"], "path": Path(spec["card"]["path"]) if spec["card"]["path"] else None})
    native = Audio(np.load(spec["clip"]), spec["rate"], "profile")
    cost = measure_cost(card.build(), native, spec["repeats"])
    print(json.dumps(dataclasses.asdict(cost)))  # the parent reads the last line of stdout


if __name__ == "__main__":
    _child_main()

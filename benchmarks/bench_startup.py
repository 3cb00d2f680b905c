"""Command-line start-up: `evalkit --help` and `evalkit codecs` against a bare `python -c pass`.

Each command runs REPEATS times, the three interleaved so that load on a shared machine hits
them alike; the table gives the median wall time, the median CPU time (the process and its
children, e.g. the probes `evalkit codecs` runs) and both as ratios to `python -c pass`
measured in the same run. The target is 0.5 s wall for both commands on an idle machine.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPEATS = 9
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "evalkit --help": [sys.executable, "-m", "evalkit", "--help"],
    "evalkit codecs": [sys.executable, "-m", "evalkit", "codecs"],
}


def _timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child and everything it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(repeats: int = REPEATS) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds per command."""
    for command in COMMANDS.values():  # warm the file cache (and evalkit's anchor-design cache)
        _timed(command)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in COMMANDS}
    for _ in range(repeats):
        for name, command in COMMANDS.items():
            samples[name].append(_timed(command))
    return {
        name: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
        for name, runs in samples.items()
    }


def main() -> None:
    medians = measure()
    base_wall, base_cpu = medians["python -c pass"]
    print(f"{'command':16s} {'wall s':>8s} {'x pass':>7s} {'CPU s':>7s} {'x pass':>7s}")
    for name, (wall, cpu) in medians.items():
        print(f"{name:16s} {wall:8.3f} {wall / base_wall:7.1f} {cpu:7.3f} {cpu / base_cpu:7.1f}")


if __name__ == "__main__":
    main()

"""Run every benchmark in this folder and print its table."""

from __future__ import annotations

import os

# One thread everywhere, set before numpy (or any codec library) is imported.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = "1"

import importlib  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
BENCHMARKS = [  # one per line, in the order they run
    "bench_startup",
    "bench_codecs",
    "bench_harness",
    "bench_profiles",
    "bench_neural",
    "bench_hallucination",
    "bench_score",
    "bench_metrics",
    "bench_mushra_load",
    "bench_ladiff",
    "bench_lpcnet",
]


def main() -> int:
    sys.path.insert(0, str(HERE))
    for name in BENCHMARKS:
        print(f"== {name} ==")
        importlib.import_module(name).main()
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

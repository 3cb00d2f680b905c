"""The MUSHRA load benchmark's quick version (5 listeners for a minute on the real server): it runs, and loses nothing.

No timing is asserted here (the machine is shared); `make bench` prints the numbers of the full runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
bench = pytest.importorskip("bench_mushra_load")
pytest.importorskip("psutil")


def test_five_listeners_for_a_minute_lose_and_double_nothing():
    result = bench.run(5, bench.QUICK, seconds=60.0, arrive_over=5.0)
    assert result.errors == {}, result.errors
    assert result.transitions >= 5 * 4  # every listener got well into the test
    assert len(result.interactive) >= result.transitions - 5 and len(result.commit) == result.transitions
    assert (result.lost, result.duplicates, result.unacknowledged) == (0, 0, 0)
    before, peak, after = result.rss_mb
    assert after - before <= max(15.0, 0.5 * (peak - before))  # memory comes back once the sessions end

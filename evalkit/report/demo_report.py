"""The report step of the demo: results/report.html for run "demo" (with MUSHRA test "demo" once rated)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ..store import connect
from .build import build_report
from .export import write_report
from .listening import load_listening, mushra_tests

__all__ = ["write_demo_report", "DEMO_REPORT"]

DEMO_REPORT = Path("results") / "report.html"


def write_demo_report(
    out: Callable[[str], None],
    path: str | Path = DEMO_REPORT,
    run: str = "demo",
    mushra: str = "demo",
    database: str | None = None,
) -> Path:
    """Write the demo report, replacing the previous one (it is the demo's own output); tell `out` its URL."""
    started = time.perf_counter()
    engine = connect(database)
    test = mushra if mushra in mushra_tests(engine) and load_listening(engine, mushra).message is None else None
    path = write_report(build_report(engine, run, mushra=test), path, "html", force=True)
    listening = f", MUSHRA test {test!r}" if test else ", no MUSHRA ratings yet"
    out(
        f"report: {path.resolve().as_uri()} ({path.stat().st_size / 1024:.0f} KiB{listening}, "
        f"{time.perf_counter() - started:.1f} s)"
    )
    return path

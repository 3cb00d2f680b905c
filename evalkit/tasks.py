"""Worker side of a run: one (item, codec) task in, its result rows out.

This module is what worker processes import (and what the local pool's fork server preloads),
so it keeps to what scoring needs: no database, no pandas.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

from . import __version__
from .audio import MIN_COST_SECONDS, check_content, to_mono
from .cache import DecodedCache, file_digest
from .cards import Card
from .datasets import Item
from .errors import EvalkitError
from .harness import roundtrip
from .metrics import METRICS, evaluate

__all__ = ["Task", "TaskOutput", "process", "failed_output", "task_key", "package_versions",
           "COST_METRICS", "COST_VERSION", "PINNED_PACKAGES"]

# Rows every round trip yields besides the requested metrics: what the codec costs.
COST_METRICS = ("bitrate_kbps", "encode_rtf", "decode_rtf")
COST_VERSION = "1"
# Packages whose versions change numbers; stored with every round trip.
PINNED_PACKAGES = ("numpy", "scipy", "soxr", "soundfile", "av", "pycodec2", "lc3py", "pocketsphinx")


@dataclass(frozen=True)
class Task:
    """One item through one codec, and the metrics still missing for that pair."""

    run_id: str
    dataset: str
    item: Item
    card: Card
    metrics: tuple[str, ...]
    cost: bool  # whether the round trip itself still has to be recorded
    cache_root: str
    downmix: bool


@dataclass
class TaskOutput:
    roundtrip: dict | None
    results: list[dict]
    events: list[dict] | None = None  # phoneme events of the item, when the phoneme metric ran


def process(task: Task) -> TaskOutput:
    """Worker side: load, round-trip (or reuse the cached output), score. Never raises for an item."""
    try:
        ref = task.item.load()
        ref = to_mono(ref) if task.downmix else ref
    except EvalkitError as err:
        return failed_output(task, f"cannot load item: {err}")
    content = check_content(ref)
    if content.problem:
        return failed_output(task, f"degenerate input, not scored: {content.reason}")
    cache = DecodedCache(task.cache_root)
    codec = task.card.build()
    key = cache.key(file_digest(task.item.path), task.card.config_hash, codec.info.version, task.downmix)
    decoded = None if task.cost else cache.get(key, task.item.id)
    rt_row, cost_rows = None, []
    if decoded is None:
        try:
            run = roundtrip(codec, ref)
        except EvalkitError as err:
            return failed_output(task, f"codec {task.card.name} failed: {err}")
        decoded = run.decoded
        cache.put(key, decoded)
        rt_row, cost_rows = _roundtrip_row(task, run, codec, key), _cost_rows(task, run)
    text = task.item.text
    results = [r for name in task.metrics for r in evaluate(name, ref, decoded, text=text)]
    events = _phoneme_events(results, ref, decoded, text)
    rows = _with_warning(cost_rows + [_result_row(task, r) for r in results], content.warning)
    return TaskOutput(_with_warning([rt_row], content.warning)[0] if rt_row else None, rows, events)


def _with_warning(rows: list[dict], warning: str | None) -> list[dict]:
    """Ok rows of a clipped item keep their values and carry the warning as their reason."""
    if warning is None:
        return rows
    return [{**row, "reason": warning} if row["status"] == "ok" and not row["reason"] else row for row in rows]


def _phoneme_events(results, ref, decoded, text) -> list[dict] | None:
    """Where the phoneme metric scored the item, its events with their times (for playback)."""
    if not any(r.status == "ok" and r.metric == "hallucinations_per_min" for r in results):
        return None
    from .metrics.content import content_events

    try:
        return content_events(ref, decoded, text)  # reuses the recognition evaluate() just ran
    except EvalkitError:
        return None


def failed_output(task: Task, reason: str) -> TaskOutput:
    """Every row the task owed, marked failed with `reason`: the failure is recorded, never dropped."""
    base = task_key(task)
    rows = [{**base, "metric": o, "metric_version": METRICS.get(n).spec.version, "status": "failed",
             "value": None, "reason": reason} for n in task.metrics for o in METRICS.get(n).spec.outputs]
    roundtrip_row = None
    if task.cost:
        rows += [{**base, "metric": o, "metric_version": COST_VERSION, "status": "failed", "value": None,
                  "reason": reason} for o in COST_METRICS]
        roundtrip_row = {**task_key(task, with_dataset=False), "status": "failed", "reason": reason}
    return TaskOutput(roundtrip_row, rows)


def task_key(task: Task, with_dataset: bool = True) -> dict:
    key = {"run_id": task.run_id, "item_id": task.item.id, "codec": task.card.name,
           "codec_hash": task.card.config_hash}
    return {**key, "dataset": task.dataset} if with_dataset else key


def _roundtrip_row(task: Task, run, codec, cache_key: str) -> dict:
    return {
        **task_key(task, with_dataset=False), "status": "ok", "reason": None, "bitrate": run.bitrate,
        "total_bitrate": run.total_bitrate, "duration": run.duration, "declared_delay": run.declared_delay,
        "measured_delay": run.measured_delay, "delay_tolerance": run.delay_tolerance,
        "encode_seconds": run.encode_seconds,
        "decode_seconds": run.decode_seconds, "cache_key": cache_key, "codec_version": codec.info.version,
        "packages": package_versions(),
    }


def _cost_rows(task: Task, run) -> list[dict]:
    values = {"bitrate_kbps": run.bitrate / 1000, "encode_rtf": run.encode_seconds / run.duration,
              "decode_rtf": run.decode_seconds / run.duration}
    short = run.duration < MIN_COST_SECONDS  # skipped, with the reason: no made-up number
    reason = f"needs at least {MIN_COST_SECONDS:g} s of audio; the item has {run.duration:.3g} s" if short else None
    return [{**task_key(task), "metric": name, "metric_version": COST_VERSION, "status": "skipped" if short else "ok",
             "value": None if short else value, "reason": reason, "native_rate": run.decoded.sample_rate,
             "metric_rate": run.decoded.sample_rate, "package": "evalkit", "package_version": __version__,
             "wall_seconds": 0.0} for name, value in values.items()]


def _result_row(task: Task, result) -> dict:
    row = dataclasses.asdict(result)
    row["wall_seconds"] = row.pop("seconds")
    return {**task_key(task), **row}


@lru_cache(maxsize=None)
def _installed_versions() -> tuple[tuple[str, str], ...]:
    found = {"evalkit": __version__, "python": sys.version.split()[0]}
    for name in PINNED_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return tuple(found.items())


def package_versions() -> dict[str, str]:
    """Versions of evalkit, Python and the pinned packages (read once per process)."""
    return dict(_installed_versions())

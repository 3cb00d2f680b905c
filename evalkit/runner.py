"""Run an experiment: plan what is missing, run (item, codec) tasks on workers, write every row.

The driver is the single database writer. A task's rows are written the moment it finishes,
so a run killed at any point resumes where it stopped, with nothing lost and nothing
duplicated (rows are upserted on their key).
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import pandas as pd

from . import __version__
from .audio import to_mono
from .cache import DecodedCache, file_digest
from .cards import Card
from .datasets import Item, load_dataset
from .errors import EvalkitError
from .executors import make_executor
from .experiment import Experiment
from .harness import roundtrip
from .metrics import METRICS, evaluate
from .store import (
    connect, done_keys, ensure_run, results_frame, write_content_events, write_results, write_roundtrips,
)

__all__ = ["Task", "TaskOutput", "run_experiment", "process", "COST_METRICS", "PINNED_PACKAGES"]

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


def run_experiment(exp: Experiment, scheduler: str | None = None, workers: int | None = None,
                   retry_failed: bool = False, progress: bool = True) -> pd.DataFrame:
    """Compute whatever the database lacks for `exp`; return all of the run's result rows."""
    for name in exp.metrics:
        METRICS.get(name)  # an unknown metric is a configuration error before any work starts
    engine = connect(exp.database)
    ensure_run(engine, exp.name, exp.config, __version__)
    tasks = plan(exp, done_keys(engine, exp.name, retry_failed=retry_failed))
    executor = make_executor(exp.workers if workers is None else workers, scheduler)
    bar = _progress(len(tasks), exp.name, progress)
    try:
        for task, out in executor.map_unordered(process, tasks):
            if isinstance(out, BaseException):
                out = failed_output(task, f"worker error: {type(out).__name__}: {out}")
            if out.roundtrip:
                write_roundtrips(engine, [out.roundtrip])
            if out.events is not None:
                write_content_events(engine, {**_key(task), "metric_version": METRICS.get("phoneme").spec.version},
                                     out.events)
            write_results(engine, out.results)
            bar.update(1)
    finally:
        bar.close()
        executor.close()
    return results_frame(engine, exp.name)


def plan(exp: Experiment, done: set[tuple]) -> list[Task]:
    """One task per (item, codec) pair that still lacks a row; nothing when all is done."""
    items = load_dataset(exp.dataset)[: exp.limit]
    wanted = {name: METRICS.get(name).spec for name in exp.metrics}
    tasks = []
    for card in exp.codecs:
        for item in items:
            def missing(metric, version, outputs):
                return any((item.id, card.name, card.config_hash, o, version) not in done for o in outputs)

            metrics = tuple(n for n, s in wanted.items() if missing(n, s.version, s.outputs))
            cost = missing("cost", COST_VERSION, COST_METRICS)
            if metrics or cost:
                tasks.append(Task(exp.name, str(exp.config.get("dataset", exp.dataset)), item, card,
                                  metrics, cost, str(exp.cache), exp.downmix))
    return tasks


def process(task: Task) -> TaskOutput:
    """Worker side: load, round-trip (or reuse the cached output), score. Never raises for an item."""
    try:
        ref = task.item.load()
        ref = to_mono(ref) if task.downmix else ref
    except EvalkitError as err:
        return failed_output(task, f"cannot load item: {err}")
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
    return TaskOutput(rt_row, cost_rows + [_result_row(task, r) for r in results], events)


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
    base = _key(task)
    rows = [{**base, "metric": o, "metric_version": METRICS.get(n).spec.version, "status": "failed",
             "value": None, "reason": reason} for n in task.metrics for o in METRICS.get(n).spec.outputs]
    roundtrip_row = None
    if task.cost:
        rows += [{**base, "metric": o, "metric_version": COST_VERSION, "status": "failed", "value": None,
                  "reason": reason} for o in COST_METRICS]
        roundtrip_row = {**_key(task, with_dataset=False), "status": "failed", "reason": reason}
    return TaskOutput(roundtrip_row, rows)


def _key(task: Task, with_dataset: bool = True) -> dict:
    key = {"run_id": task.run_id, "item_id": task.item.id, "codec": task.card.name,
           "codec_hash": task.card.config_hash}
    return {**key, "dataset": task.dataset} if with_dataset else key


def _roundtrip_row(task: Task, run, codec, cache_key: str) -> dict:
    return {
        **_key(task, with_dataset=False), "status": "ok", "reason": None, "bitrate": run.bitrate,
        "total_bitrate": run.total_bitrate, "duration": run.duration, "declared_delay": run.declared_delay,
        "measured_delay": run.measured_delay, "encode_seconds": run.encode_seconds,
        "decode_seconds": run.decode_seconds, "cache_key": cache_key, "codec_version": codec.info.version,
        "packages": package_versions(),
    }


def _cost_rows(task: Task, run) -> list[dict]:
    values = {"bitrate_kbps": run.bitrate / 1000, "encode_rtf": run.encode_seconds / run.duration,
              "decode_rtf": run.decode_seconds / run.duration}
    return [{**_key(task), "metric": name, "metric_version": COST_VERSION, "status": "ok", "value": value,
             "reason": None, "native_rate": run.decoded.sample_rate, "metric_rate": run.decoded.sample_rate,
             "package": "evalkit", "package_version": __version__, "wall_seconds": 0.0}
            for name, value in values.items()]


def _result_row(task: Task, result) -> dict:
    row = dataclasses.asdict(result)
    row["wall_seconds"] = row.pop("seconds")
    return {**_key(task), **row}


def package_versions() -> dict[str, str]:
    found = {"evalkit": __version__, "python": sys.version.split()[0]}
    for name in PINNED_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, name: str, enabled: bool):
    if not enabled or total == 0:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="task", file=sys.stderr, dynamic_ncols=True)

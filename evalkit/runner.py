"""Run an experiment: plan what is missing, run (item, codec) tasks on workers, write every row.

The driver is the single database writer. A task's rows are written the moment it finishes,
so a run killed at any point resumes where it stopped, with nothing lost and nothing
duplicated (rows are upserted on their key). What a task does on its worker is in `tasks`.
"""

from __future__ import annotations

import sys

import pandas as pd

from . import __version__
from .cache import file_digest
from .conditions import DecodedCondition, ItemFiles
from .datasets import Item, load_dataset
from .executors import make_executor
from .experiment import Experiment
from .metrics import METRICS
from .store import (
    add_run_warnings, connect, done_keys, ensure_run, merge_warnings, results_frame, roundtrips_frame, run_warnings,
    write_content_events, write_results, write_roundtrips,
)
from .tasks import COST_VERSION, Task, cost_metrics, failed_output, process, task_key

__all__ = ["run_experiment", "score_pairs", "plan", "match_conditions"]

Files = dict[str, dict[str, ItemFiles]]  # condition name -> item id -> its files


def run_experiment(exp: Experiment, scheduler: str | None = None, workers: int | None = None,
                   retry_failed: bool = False, progress: bool = True) -> pd.DataFrame:
    """Compute whatever the database lacks for `exp`; return all of the run's result rows.

    The run's warnings (file matching, rates, bandwidth), as stored with it, are in
    `frame.attrs["warnings"]`: {key: {"text", "items"}}.
    """
    items, files, warnings = _prepare(exp)
    executor = make_executor(exp.workers if workers is None else workers, scheduler, exp.task_timeout)
    try:
        engine = connect(exp.database)
        ensure_run(engine, exp.name, exp.config, __version__)
        add_run_warnings(engine, exp.name, warnings)
        done = done_keys(engine, exp.name, retry_failed=retry_failed)
        tasks = plan(exp, done, _identities(engine, exp.name), items, files)
        bar = _progress(len(tasks), exp.name, progress)
        found = _consume(executor.map_unordered(process, tasks), bar, lambda task, out: _write(engine, task, out))
        add_run_warnings(engine, exp.name, found)
    finally:
        executor.close()
    frame = results_frame(engine, exp.name)
    frame.attrs["warnings"] = run_warnings(engine, exp.name)
    return frame


def score_pairs(exp: Experiment, workers: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Score every (item, condition) of `exp` without a database: the rows `run_experiment` would
    store, as a DataFrame, with the warnings in `frame.attrs["warnings"]`."""
    items, files, warnings = _prepare(exp)
    tasks = plan(exp, set(), None, items, files)
    rows: list[dict] = []
    executor = make_executor(exp.workers if workers is None else workers, None, exp.task_timeout)
    try:
        found = _consume(executor.map_unordered(process, tasks), _progress(len(tasks), exp.name, progress),
                         lambda task, out: rows.extend(out.results))
    finally:
        executor.close()
    frame = pd.DataFrame(rows)
    frame.attrs["warnings"] = merge_warnings(warnings, found)
    return frame


def _prepare(exp: Experiment) -> tuple[list[Item], Files, dict]:
    """Configuration errors before any work: metric names, the dataset, the files of each condition."""
    for name in exp.metrics:
        METRICS.get(name)  # an unknown metric is a configuration error before any work starts
    items = load_dataset(exp.dataset)[: exp.limit]
    files, warnings = match_conditions(exp, items)
    return items, files, warnings


def match_conditions(exp: Experiment, items: list[Item]) -> tuple[Files, dict]:
    """Each condition made elsewhere matched to the items, and the matching reports as run warnings."""
    digests: dict = {}

    def digest(path):
        stat = path.stat()
        key = (path, stat.st_size, stat.st_mtime_ns)
        if key not in digests:
            digests[key] = file_digest(path)
        return digests[key]

    files, warnings = {}, {}
    for condition in exp.codecs:
        if isinstance(condition, DecodedCondition):
            files[condition.name], found = condition.match(items, digest)
            warnings.update(found)
    return files, warnings


def _identities(engine, run_id: str) -> dict[tuple, str]:
    """(item, codec, hash) -> the content identity its stored round trip was made from."""
    trips = roundtrips_frame(engine, run_id)
    trips = trips[trips["cache_key"].notna()]
    return {(r.item_id, r.codec, r.codec_hash): r.cache_key for r in trips.itertuples()}


def _write(engine, task: Task, out) -> None:
    """Store one task's rows as it finishes: the driver is the one database writer."""
    if out.roundtrip:
        write_roundtrips(engine, [out.roundtrip])
    if out.events is not None:
        write_content_events(engine, {**task_key(task), "metric_version": METRICS.get("phoneme").spec.version},
                             out.events)
    write_results(engine, out.results)


def _consume(outputs, bar, sink) -> dict:
    """Hand each finished task's output to `sink`; returns the tasks' warnings, grouped by key."""
    found: dict = {}
    try:
        for task, out in outputs:
            if isinstance(out, BaseException):
                out = failed_output(task, f"worker error: {type(out).__name__}: {out}")
            sink(task, out)
            for warning in out.warnings:
                found.setdefault(warning["key"], {"text": warning["text"], "items": []})["items"].append(warning["item"])
            bar.update(1)
    finally:
        bar.close()
    return found


def plan(exp: Experiment, done: set[tuple], identities: dict[tuple, str] | None = None,
         items: list[Item] | None = None, files: Files | None = None) -> list[Task]:
    """One task per (item, condition) pair that still lacks a row, or whose files changed since
    (their content identity differs from the stored round trip's); nothing when all is done."""
    items = load_dataset(exp.dataset)[: exp.limit] if items is None else items
    files = match_conditions(exp, items)[0] if files is None else files
    identities = identities or {}
    wanted = {name: METRICS.get(name).spec for name in exp.metrics}
    tasks = []
    for condition in exp.codecs:
        costs = cost_metrics(condition)
        for item in items:
            item_files = files.get(condition.name, {}).get(item.id)
            key = (item.id, condition.name, condition.config_hash)
            changed = item_files is not None and identities.get(key, item_files.identity) != item_files.identity

            def missing(version, outputs):
                return changed or any((*key, o, version) not in done for o in outputs)

            metrics = tuple(n for n, s in wanted.items() if missing(s.version, s.outputs))
            cost = missing(COST_VERSION, costs)
            if metrics or cost:
                tasks.append(Task(exp.name, str(exp.config.get("dataset", exp.dataset)), item, condition,
                                  metrics, cost, str(exp.cache), exp.downmix, exp.alignment, item_files))
    return tasks


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

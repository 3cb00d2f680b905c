"""Run an experiment: plan what is missing, run (item, codec) tasks on workers, write every row.

The driver is the single database writer. A task's rows are written the moment it finishes,
so a run killed at any point resumes where it stopped, with nothing lost and nothing
duplicated (rows are upserted on their key). What a task does on its worker is in `tasks`.
"""

from __future__ import annotations

import sys

import pandas as pd

from . import __version__
from .datasets import load_dataset
from .executors import make_executor
from .experiment import Experiment
from .metrics import METRICS
from .store import (
    connect, done_keys, ensure_run, results_frame, write_content_events, write_results, write_roundtrips,
)
from .tasks import COST_METRICS, COST_VERSION, Task, failed_output, process, task_key

__all__ = ["run_experiment", "plan"]


def run_experiment(exp: Experiment, scheduler: str | None = None, workers: int | None = None,
                   retry_failed: bool = False, progress: bool = True) -> pd.DataFrame:
    """Compute whatever the database lacks for `exp`; return all of the run's result rows."""
    for name in exp.metrics:
        METRICS.get(name)  # an unknown metric is a configuration error before any work starts
    executor = make_executor(exp.workers if workers is None else workers, scheduler, exp.task_timeout)
    try:
        engine = connect(exp.database)
        ensure_run(engine, exp.name, exp.config, __version__)
        tasks = plan(exp, done_keys(engine, exp.name, retry_failed=retry_failed))
        _write_outputs(engine, executor.map_unordered(process, tasks), _progress(len(tasks), exp.name, progress))
    finally:
        executor.close()
    return results_frame(engine, exp.name)


def _write_outputs(engine, outputs, bar) -> None:
    """Store each task's rows as it finishes: the driver is the one database writer."""
    try:
        for task, out in outputs:
            if isinstance(out, BaseException):
                out = failed_output(task, f"worker error: {type(out).__name__}: {out}")
            if out.roundtrip:
                write_roundtrips(engine, [out.roundtrip])
            if out.events is not None:
                write_content_events(engine, {**task_key(task), "metric_version": METRICS.get("phoneme").spec.version},
                                     out.events)
            write_results(engine, out.results)
            bar.update(1)
    finally:
        bar.close()


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

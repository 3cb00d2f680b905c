"""Run an experiment: plan what is missing, run (item, codec) tasks on workers, write every row.

The driver is the single database writer. Finished tasks' rows are written together, at
least once a second (one transaction each time, not two per task), so a run killed at any
point resumes where it stopped, recomputing at most its last second of work, with nothing
duplicated (rows are upserted on their key). What a task does on its worker is in `tasks`.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from . import __version__
from .alignment import AlignPolicy
from .cache import file_digest
from .cards import Card
from .codecs import BACKENDS
from .conditions import DecodedCondition, ItemFiles
from .datasets import Item, load_dataset, unread_audio
from .errors import ConfigError
from .executors import WorkerCrash, make_executor
from .experiment import Experiment, experiment_from_dict, load_experiment
from .metrics import METRICS
from .store import (
    add_run_warnings,
    connect,
    done_keys,
    drop_empty_run,
    ensure_run,
    merge_warnings,
    results_frame,
    roundtrip_identities,
    run_warnings,
    write_batch,
    write_content_events,
)
from .tasks import COST_VERSION, Task, cost_metrics, failed_output, process, split_task, task_key

__all__ = ["run", "run_experiment", "score_pairs", "plan", "match_conditions", "row_hash"]

Files = dict[str, dict[str, ItemFiles]]  # condition name -> item id -> its files
BATCH_SECONDS = 1.0  # finished tasks' rows are written at least this often (and when the run ends)


def run_experiment(
    exp: Experiment,
    scheduler: str | None = None,
    workers: int | None = None,
    retry_failed: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Compute whatever the database lacks for `exp`; return all of the run's result rows.

    The run's warnings (file matching, rates, bandwidth), as stored with it, are in
    `frame.attrs["warnings"]`: {key: {"text", "items"}}. A run this call creates is removed
    again when it fails before storing a single row: failed set-up leaves nothing behind.
    """
    _check_workers_see(exp, exp.workers if workers is None else workers, scheduler)
    executor = make_executor(exp.workers if workers is None else workers, scheduler, exp.task_timeout, _preload(exp))
    try:
        items, files, warnings = _prepare(exp)
        engine = connect(exp.database)
        created = ensure_run(engine, exp.name, exp.config, __version__)
        try:
            add_run_warnings(engine, exp.name, warnings)
            done = done_keys(engine, exp.name, retry_failed=retry_failed)
            tasks = plan(exp, done, roundtrip_identities(engine, exp.name), items, files)
            bar = _progress(len(tasks), exp.name, progress)
            with _BatchWriter(engine) as writer:
                found = _consume(_crashes_isolated(executor, tasks, bar), bar, writer.add)
            add_run_warnings(engine, exp.name, found)
        except BaseException:
            if created:
                drop_empty_run(engine, exp.name)
            raise
    finally:
        executor.close()
    frame = results_frame(engine, exp.name)
    frame.attrs["warnings"] = run_warnings(engine, exp.name)
    return frame


def run(
    experiment,
    scheduler: str | None = None,
    workers: int | None = None,
    retry_failed: bool = False,
    progress: bool = False,
) -> pd.DataFrame:
    """`evalkit.run`: score an experiment (a YAML path, a dict like the YAML, or an Experiment); returns a DataFrame
    with every result row of the run, exactly what `evalkit run` stores."""
    if isinstance(experiment, (str, Path)):
        experiment = load_experiment(experiment)
    elif isinstance(experiment, dict):
        experiment = experiment_from_dict(experiment)
    if not isinstance(experiment, Experiment):
        raise ConfigError("evalkit.run takes a YAML path, a dict or an Experiment")
    return run_experiment(
        experiment, scheduler=scheduler, workers=workers, retry_failed=retry_failed, progress=progress
    )


def score_pairs(exp: Experiment, workers: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Score every (item, condition) of `exp` without a database: the rows `run_experiment` would
    store, as a DataFrame, with the warnings in `frame.attrs["warnings"]`."""
    _check_workers_see(exp, exp.workers if workers is None else workers, None)
    executor = make_executor(exp.workers if workers is None else workers, None, exp.task_timeout, _preload(exp))
    rows: list[dict] = []
    try:
        items, files, warnings = _prepare(exp)
        tasks = plan(exp, set(), None, items, files)
        bar = _progress(len(tasks), exp.name, progress)
        found = _consume(_crashes_isolated(executor, tasks, bar), bar, lambda task, out: rows.extend(out.results))
    finally:
        executor.close()
    frame = pd.DataFrame(rows)
    frame.attrs["warnings"] = merge_warnings(warnings, found)
    return frame


def _preload(exp: Experiment) -> tuple[str, ...]:
    """What local workers start with: the task module and the packages of the run's metrics."""
    return ("evalkit.tasks", *dict.fromkeys(m for name in exp.metrics for m in METRICS.get(name).spec.requires))


def _check_workers_see(exp: Experiment, workers: int | None, scheduler: str | None) -> None:
    """Refuse, before any work, a metric or backend defined in this session's `__main__` (a notebook,
    a script) when tasks run in other processes: they cannot import it, and every row would fail."""
    if workers == 0 and not scheduler:
        return
    defined: list[tuple[str, object]] = [(f"metric {name!r}", METRICS.get(name).fn) for name in exp.metrics]
    cards = [c for c in exp.codecs if isinstance(c, Card) and c.backend in BACKENDS]
    defined += [(f"codec backend {c.backend!r}", BACKENDS.get(c.backend)) for c in cards]
    for what, obj in defined:
        if getattr(obj, "__module__", None) == "__main__":
            raise ConfigError(
                f"{what} is defined in __main__, which worker processes cannot import: run with workers=0, "
                "or move it to a module of a package that declares it as an entry point"
            )


def _prepare(exp: Experiment) -> tuple[list[Item], Files, dict]:
    """Configuration errors before any work: metric names, the dataset, the files of each condition."""
    for name in exp.metrics:
        METRICS.get(name)  # an unknown metric is a configuration error before any work starts
    items = load_dataset(exp.dataset, exp.allow_outside)[: exp.limit]
    files, warnings = match_conditions(exp, items)
    if unread := unread_audio(exp.dataset):
        kinds = ", ".join(sorted({Path(name).suffix.lower() for name in unread}))
        warnings["dataset: unread audio"] = {
            "text": f"the dataset folder holds {len(unread)} audio file(s) evalkit does not read ({kinds}), so "
            "they are not items: convert them to WAV or FLAC (e.g. ffmpeg -i a.mp3 a.wav)",
            "items": unread,
        }
    _check_cache(Path(exp.cache))
    return items, files, warnings


def _check_cache(folder: Path) -> None:
    """The decoded-audio cache folder exists (it is made here) and takes a file: otherwise every
    task would fail on it, one row at a time."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as err:
        raise ConfigError(
            f"cache: {folder} cannot hold the decoded audio ({err.strerror or err}); give a folder evalkit may write"
        ) from None


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


class _BatchWriter:
    """Finished tasks' rows, stored together once `seconds` have passed since the last write (or
    `tasks` tasks are waiting) and when the run ends, however it ends: the driver is the one
    database writer, and one commit per batch instead of per task keeps it off the critical path."""

    def __init__(self, engine, seconds: float | None = None, tasks: int = 500):
        self.engine, self.seconds, self.limit = engine, BATCH_SECONDS if seconds is None else seconds, tasks
        self.pending: list = []
        self.last = time.monotonic()

    def __enter__(self) -> _BatchWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.flush()

    def add(self, task: Task, out) -> None:
        self.pending.append((task, out))
        if len(self.pending) >= self.limit or time.monotonic() - self.last >= self.seconds:
            self.flush()

    def flush(self) -> None:
        done, self.pending, self.last = self.pending, [], time.monotonic()
        if not done:
            return
        write_batch(
            self.engine,
            [out.roundtrip for _, out in done if out.roundtrip],
            [row for _, out in done for row in out.results],
        )
        for task, out in done:
            if out.events is not None:
                write_content_events(self.engine, {**task_key(task), "metric_version": _phoneme_version()}, out.events)


def _phoneme_version() -> str:
    return METRICS.get("phoneme").spec.version


def _crashes_isolated(executor, tasks: list[Task], bar, work=process):
    """Each task's output from `work`. A task with metrics that killed its worker twice (a codec
    or metric library that crashes on the item) is run again in parts: its round trip alone,
    then, if that survives, each metric alone. The crash costs only the rows of the part that
    crashes, and their reason names it."""
    crashed = []
    for task, out in executor.map_unordered(work, tasks):
        if isinstance(out, WorkerCrash) and task.metrics:
            crashed.append(task)
        else:
            yield task, out
    if not crashed:
        return
    owners = {}
    for task in crashed:
        round_trip, metrics = split_task(task)
        owners[id(round_trip)] = (round_trip, task, metrics)  # the executor hands back the objects it was given
    survived = []
    for round_trip, out in executor.map_unordered(work, [entry[0] for entry in owners.values()]):
        _, task, metrics = owners[id(round_trip)]
        if isinstance(out, WorkerCrash):  # every row of the task fails, for its round trip
            yield task, _crash(f"the {task.card.name} round trip")
        else:
            survived += metrics
            yield round_trip, out
    bar.total += len(survived)
    for part, out in executor.map_unordered(work, survived):
        yield part, _crash(f"metric {part.metrics[0]}") if isinstance(out, WorkerCrash) else out


def _crash(what: str) -> WorkerCrash:
    return WorkerCrash(f"its worker process died twice running {what} on this item (a crash in its library?)")


def _consume(outputs, bar, sink) -> dict:
    """Hand each finished task's output to `sink`; returns the tasks' warnings, grouped by key."""
    found: dict = {}
    try:
        for task, out in outputs:
            if isinstance(out, BaseException):
                out = failed_output(task, f"worker error: {type(out).__name__}: {out}")
            sink(task, out)
            for warning in out.warnings:
                found.setdefault(warning["key"], {"text": warning["text"], "items": []})["items"].append(
                    warning["item"]
                )
            bar.update(1)
    finally:
        bar.close()
    for entry in found.values():  # a task run in parts warns once per part
        entry["items"] = list(dict.fromkeys(entry["items"]))
    return found


def plan(
    exp: Experiment,
    done: set[tuple],
    identities: dict[tuple, str] | None = None,
    items: list[Item] | None = None,
    files: Files | None = None,
) -> list[Task]:
    """One task per (item, condition) pair that still lacks a row, or whose files changed since
    (their content identity differs from the stored round trip's); nothing when all is done."""
    items = load_dataset(exp.dataset, exp.allow_outside)[: exp.limit] if items is None else items
    files = match_conditions(exp, items)[0] if files is None else files
    identities = identities or {}
    wanted = {name: METRICS.get(name).spec for name in exp.metrics}
    tasks = []
    for condition in exp.codecs:
        costs = cost_metrics(condition)
        codec_hash = row_hash(condition.config_hash, exp)
        for item in items:
            item_files = files.get(condition.name, {}).get(item.id)
            key = (item.id, condition.name, codec_hash)
            changed = item_files is not None and identities.get(key, item_files.identity) != item_files.identity

            def missing(version, outputs):  # called within this iteration only
                return changed or any((*key, o, version) not in done for o in outputs)  # noqa: B023

            metrics = tuple(n for n, s in wanted.items() if missing(s.version, s.outputs))
            cost = missing(COST_VERSION, costs)
            if metrics or cost:
                tasks.append(
                    Task(
                        exp.name,
                        str(exp.config.get("dataset", exp.dataset)),
                        item,
                        condition,
                        metrics,
                        cost,
                        str(exp.cache),
                        exp.downmix,
                        exp.alignment,
                        item_files,
                        codec_hash,
                    )
                )
    return tasks


def row_hash(config_hash: str, exp: Experiment) -> str:
    """The codec part of a row's key: the condition's configuration hash, combined with the
    experiment's settings that change what is scored (downmix, the alignment limits) where they
    differ from the defaults. Changing one recomputes every row it may have changed, failed ones
    included; switching it back finds the earlier rows again."""
    policy: dict[str, object] = {}
    if exp.downmix:
        policy["downmix"] = True
    if exp.alignment != AlignPolicy():
        policy["alignment"] = exp.alignment.to_dict()
    if not policy:
        return config_hash
    return hashlib.sha256(json.dumps({"config": config_hash, **policy}, sort_keys=True).encode()).hexdigest()[:16]


class _NoBar:
    total = 0

    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


class _LineProgress:
    """Progress for a log file (stderr is not a terminal): a line now, then at most one every
    `every` seconds, and one at the end. A terminal's bar redrawn ten times a second would be
    one ever-growing line there."""

    def __init__(self, total: int, name: str, every: float = 10.0):
        self.total, self.name, self.every, self.done = total, name, every, 0
        self.start = time.monotonic()
        self._line(self.start)

    def update(self, n: int) -> None:
        self.done += n
        if (now := time.monotonic()) - self.shown >= self.every:
            self._line(now)

    def close(self) -> None:
        self._line(time.monotonic())

    def _line(self, now: float) -> None:
        self.shown, elapsed = now, now - self.start
        left = ""
        if 0 < self.done < self.total:
            left = f", about {_minutes(elapsed / self.done * (self.total - self.done))} left"
        share = 100 * self.done / max(self.total, 1)
        line = f"{self.name}: {self.done}/{self.total} tasks ({share:.0f} %), {_minutes(elapsed)} elapsed{left}"
        sys.stderr.write(line + "\n")  # where tqdm would draw its bar
        sys.stderr.flush()


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _progress(total: int, name: str, enabled: bool):
    if not enabled or total == 0:
        return _NoBar()
    if not sys.stderr.isatty():
        return _LineProgress(total, name)
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="task", file=sys.stderr, dynamic_ncols=True)

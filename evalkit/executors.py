"""Where tasks run: a local pool of single-threaded processes, or a Dask distributed cluster."""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

__all__ = ["Executor", "LocalExecutor", "DaskExecutor", "SerialExecutor", "WorkerCrash", "make_executor", "single_thread_env"]

# NUMBA_NUM_THREADS too: ViSQOL's numba kernels are parallel and would use every core per worker.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMBA_NUM_THREADS")


def single_thread_env() -> None:
    """One BLAS/OpenMP thread per worker: parallelism comes from processes (PESQ holds the GIL)."""
    for var in THREAD_VARS:
        os.environ[var] = "1"


class Executor:
    """Runs `fn` over tasks and yields (task, result-or-exception) as each finishes."""

    def map_unordered(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class SerialExecutor(Executor):
    """In this process, one task after another (for debugging and tiny runs)."""

    def map_unordered(self, fn, tasks):
        for task in tasks:
            try:
                yield task, fn(task)
            except Exception as err:  # noqa: BLE001 - reported per task by the runner
                yield task, err


class LocalExecutor(Executor):
    """A pool of spawned single-threaded worker processes.

    A task that kills its worker (a segfault in a C library, the OOM killer) breaks the whole
    pool. Each worker marks the task it is running in a scratch folder, so after a break only
    the marked tasks are suspects: they are retried alone, and one that dies alone again is
    reported as failed. Every other task is resubmitted untouched.
    """

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1

    def map_unordered(self, fn, tasks):
        with tempfile.TemporaryDirectory(prefix="evalkit-running-") as scratch:
            queue = list(enumerate(tasks))
            while queue:
                broken = yield from self._run(fn, queue, self.workers, scratch)
                suspects = [(i, t) for i, t in broken if _marker(scratch, i).exists()]
                queue = [(i, t) for i, t in broken if not _marker(scratch, i).exists()]
                for index, task in suspects:
                    _marker(scratch, index).unlink()
                    if (yield from self._run(fn, [(index, task)], 1, scratch)):
                        yield task, WorkerCrash("its worker process died twice running it (a crash in a codec or metric library?)")

    @staticmethod
    def _run(fn, queue, workers, scratch):
        """Run the queue in a fresh pool; return the tasks the pool broke on."""
        pool = ProcessPoolExecutor(min(workers, len(queue)), mp_context=_worker_context(fn.__module__),
                                   initializer=single_thread_env)
        futures = {pool.submit(_marked, fn, str(_marker(scratch, i)), task): (i, task) for i, task in queue}
        broken = []
        try:
            for future in as_completed(futures):
                index, task = futures[future]
                error = future.exception()
                if isinstance(error, BrokenProcessPool):
                    broken.append((index, task))
                else:
                    yield task, error if error else future.result()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return broken


def _worker_context(module: str):
    """Workers forked from a server that has imported the task function's module once: no
    per-worker start-up import, and no inherited threads or open database handles (unlike a
    plain fork). The thread limits are set before that server starts, so its libraries start
    single-threaded."""
    context = multiprocessing.get_context("forkserver")
    single_thread_env()
    context.set_forkserver_preload([module])
    return context


class WorkerCrash(RuntimeError):
    """A task's worker process died while running it."""


def _marker(scratch: str, index: int) -> Path:
    return Path(scratch) / f"{index}.running"


def _marked(fn, marker: str, task):
    """Worker side: mark the task as running for as long as it runs."""
    Path(marker).touch()
    try:
        return fn(task)
    finally:
        Path(marker).unlink()


class DaskExecutor(Executor):
    """Tasks on an existing Dask distributed scheduler (`tcp://host:port`)."""

    def __init__(self, address: str):
        from distributed import Client

        self.client = Client(address, timeout="30s")

    def map_unordered(self, fn, tasks):
        from distributed import as_completed

        tasks = list(tasks)
        futures = {self.client.submit(fn, task, pure=False): task for task in tasks}
        for future in as_completed(futures):
            task = futures[future]
            try:
                yield task, future.result()
            except Exception as err:  # noqa: BLE001 - reported per task by the runner
                yield task, err

    def close(self) -> None:
        self.client.close()


def make_executor(workers: int | None = None, scheduler: str | None = None) -> Executor:
    if scheduler:
        return DaskExecutor(scheduler)
    if workers == 0:
        return SerialExecutor()
    return LocalExecutor(workers)

"""Where tasks run: a local pool of single-threaded processes, or a Dask distributed cluster."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Iterator

__all__ = ["Executor", "LocalExecutor", "DaskExecutor", "SerialExecutor", "make_executor", "single_thread_env"]

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")


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
    """A pool of spawned worker processes; a worker killed mid-task is replaced and its tasks retried."""

    def __init__(self, workers: int | None = None, retries: int = 2):
        self.workers = workers or os.cpu_count() or 1
        self.retries = retries

    def _pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=single_thread_env)

    def map_unordered(self, fn, tasks):
        pending = list(tasks)
        attempts: dict[int, int] = {}
        while pending:
            pool = self._pool()
            futures = {pool.submit(fn, task): task for task in pending}
            pending = []
            try:
                while futures:
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for future in done:
                        task = futures.pop(future)
                        error = future.exception()
                        if isinstance(error, BrokenProcessPool):
                            pending.append(task)
                        else:
                            yield task, error if error else future.result()
            finally:
                pool.shutdown(wait=False, cancel_futures=True)
            pending, given_up = self._retry(pending, attempts)
            for task in given_up:
                yield task, RuntimeError("a worker process died while running this task, repeatedly")

    def _retry(self, tasks, attempts):
        again, given_up = [], []
        for task in tasks:
            attempts[id(task)] = attempts.get(id(task), 0) + 1
            (again if attempts[id(task)] <= self.retries else given_up).append(task)
        return again, given_up


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

"""Executors: results for every task, and a crashing task takes down only itself."""

from __future__ import annotations

import os
import signal
import time

import pytest
from conftest import dask_cluster

from evalkit.errors import ConfigError
from evalkit.executors import (
    MAX_CHUNK,
    LocalExecutor,
    SerialExecutor,
    TaskTimeout,
    WorkerCrash,
    _chunks,
    make_executor,
)


def square_or_crash(n: int) -> int:
    if n == 3:
        os.kill(os.getpid(), signal.SIGSEGV)  # what a segfault in a C library does
    if n == 5:
        raise ValueError("bad item")
    return n * n


def square_or_hang(n: int) -> int:
    time.sleep(600 if n == 2 else 0.4)  # 2 hangs as a deadlocked library would; the others are busy meanwhile
    return n * n


def hang_or_square(n: int) -> int:
    time.sleep(600 if n == 2 else 0.02)
    return n * n


class Unpicklable(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.callback = lambda: None  # cannot be pickled back to the driver


def square_or_unpicklable(n: int) -> int:
    if n == 1:
        raise Unpicklable("odd state")
    return n * n


def threads_in_worker(_: int) -> str:
    return os.environ.get("OMP_NUM_THREADS", "")


def square(n: int) -> int:
    return n * n


def test_a_pool_that_breaks_while_tasks_are_handed_out_loses_none(monkeypatch):
    # A worker killed during submission: the next submit raises (BrokenProcessPool, or OSError
    # "handle is closed" when it races the pool's shutdown); the unsubmitted tasks go to a new pool.
    import evalkit.executors as executors

    calls = []

    class BreaksOnce(executors.ProcessPoolExecutor):
        def submit(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == 3:
                raise OSError("handle is closed")
            return super().submit(*args, **kwargs)

    monkeypatch.setattr(executors, "ProcessPoolExecutor", BreaksOnce)
    assert dict(LocalExecutor(2).map_unordered(square, range(6))) == {n: n * n for n in range(6)}


def test_serial_executor_reports_errors_per_task():
    out = dict(SerialExecutor().map_unordered(square_or_crash, [1, 2, 5]))
    assert out[1] == 1 and out[2] == 4 and isinstance(out[5], ValueError)


@pytest.mark.slow
def test_a_segfaulting_task_fails_alone_and_the_rest_complete():
    out = dict(LocalExecutor(2).map_unordered(square_or_crash, range(8)))
    assert sorted(out) == list(range(8))
    assert isinstance(out[3], WorkerCrash) and isinstance(out[5], ValueError)
    assert all(out[n] == n * n for n in (0, 1, 2, 4, 6, 7))


def test_workers_are_single_threaded():
    assert set(dict(LocalExecutor(2).map_unordered(threads_in_worker, [0, 1])).values()) == {"1"}


@pytest.mark.slow
def test_a_hanging_task_times_out_alone_and_the_rest_complete():
    start = time.monotonic()
    out = dict(LocalExecutor(2, task_timeout=1.5).map_unordered(square_or_hang, range(8)))
    assert sorted(out) == list(range(8))
    assert isinstance(out[2], TaskTimeout) and "1.5 s" in str(out[2])
    assert all(out[n] == n * n for n in (0, 1, 3, 4, 5, 6, 7))  # the task the kill interrupted is rerun
    assert time.monotonic() - start < 30


@pytest.mark.parametrize("options", [{"workers": 0}, {"scheduler": "tcp://127.0.0.1:1"}])
def test_a_task_timeout_needs_local_worker_processes(options):
    with pytest.raises(ConfigError, match="task_timeout"):
        make_executor(task_timeout=10, **options)


def test_tasks_go_out_in_chunks_largest_first_and_single_at_the_end():
    queue = list(range(1000))
    chunks = _chunks(queue, 2)
    assert [task for chunk in chunks for task in chunk] == queue
    sizes = [len(chunk) for chunk in chunks]
    assert sizes[0] == MAX_CHUNK and sizes == sorted(sizes, reverse=True) and sizes[-8:] == [1] * 8
    assert [len(chunk) for chunk in _chunks(list(range(6)), 2)] == [1] * 6  # a small run: one task a call


def test_an_unpicklable_error_keeps_the_rest_of_its_chunk():
    out = dict(LocalExecutor(2).map_unordered(square_or_unpicklable, range(40)))  # chunks of 5
    assert isinstance(out[1], RuntimeError) and "Unpicklable: odd state" in str(out[1])
    assert all(out[n] == n * n for n in range(40) if n != 1)


@pytest.mark.slow
def test_a_segfault_inside_a_chunk_loses_no_other_task():
    out = dict(LocalExecutor(2).map_unordered(square_or_crash, range(80)))  # 3 and 5 share the first chunk
    assert sorted(out) == list(range(80))
    assert isinstance(out[3], WorkerCrash) and isinstance(out[5], ValueError)
    assert all(out[n] == n * n for n in range(80) if n not in (3, 5))


@pytest.mark.slow
def test_a_hang_inside_a_chunk_times_out_alone():
    out = dict(LocalExecutor(2, task_timeout=1.5).map_unordered(hang_or_square, range(80)))
    assert sorted(out) == list(range(80)) and isinstance(out[2], TaskTimeout)
    assert all(out[n] == n * n for n in range(80) if n != 2)


@pytest.mark.parametrize("workers", [-1, "2", 1.5, True])
def test_workers_must_be_a_whole_number(workers):
    with pytest.raises(ConfigError, match=r"^workers is .*give a whole number"):
        make_executor(workers)


def test_a_scheduler_address_that_is_not_one_is_named():
    pytest.importorskip("distributed")
    with pytest.raises(ConfigError, match=r"^cannot use the Dask scheduler 'bogus' \(missing port"):
        make_executor(scheduler="bogus")


@pytest.mark.slow
def test_a_dask_worker_dying_on_a_task_is_a_worker_crash_the_rest_complete():
    import dask

    pytest.importorskip("distributed")  # first: its defaults join dask's config on import
    # Dask reports a task as killing workers after its third death by default: each death waits for a
    # worker process to start again, which a loaded machine can take long over. One death is enough here.
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        dask_cluster(n_workers=1, threads_per_worker=1) as cluster,
    ):
        executor = make_executor(scheduler=cluster.scheduler_address)
        try:
            # The crash runs alone: tasks queued on the same dying worker would die with it, by timing.
            crashed = dict(executor.map_unordered(square_or_crash, [3]))
            out = dict(executor.map_unordered(square_or_crash, [2, 5]))
        finally:
            executor.close()
    # a WorkerCrash is what the runner splits into the task's parts, so one crashing metric fails alone
    assert isinstance(crashed[3], WorkerCrash) and out[2] == 4 and isinstance(out[5], ValueError)


@pytest.mark.slow
def test_a_dask_scheduler_without_workers_is_an_error_not_a_wait_for_ever(monkeypatch):
    import evalkit.executors as executors

    monkeypatch.setattr(executors, "NO_WORKERS_SECONDS", 2.0)
    with dask_cluster(n_workers=0) as cluster:
        executor = make_executor(scheduler=cluster.scheduler_address)
        try:
            with pytest.raises(ConfigError, match=r"has had no workers for 2 s, so no task can run: start some"):
                list(executor.map_unordered(square_or_crash, [2]))
        finally:
            executor.close()

"""Where tasks run: a local pool of single-threaded processes, or a Dask distributed cluster."""

from __future__ import annotations

import os
import pickle
import select
import signal
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import context as mp_context
from multiprocessing import forkserver, popen_forkserver
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any

from .errors import ConfigError

__all__ = [
    "Executor",
    "LocalExecutor",
    "DaskExecutor",
    "SerialExecutor",
    "WorkerCrash",
    "TaskTimeout",
    "make_executor",
    "single_thread_env",
    "one_thread_torch",
    "start_workers_server",
]

MAX_CHUNK = 8  # tasks handed to a worker at once (see _chunks)
CHUNKS_PER_WORKER = 4

# NUMBA_NUM_THREADS too: ViSQOL's numba kernels are parallel and would use every core per worker.
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMBA_NUM_THREADS",
)


def single_thread_env() -> None:
    """One BLAS/OpenMP thread per worker: parallelism comes from processes (PESQ holds the GIL)."""
    for var in THREAD_VARS:
        os.environ[var] = "1"


def one_thread_torch() -> None:
    """torch on one thread too, where a codec loaded it (its own default is one per core)."""
    if "torch" in sys.modules:  # never import torch only for this: it costs memory
        sys.modules["torch"].set_num_threads(1)


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
    """A pool of single-threaded worker processes.

    A task that kills its worker (a segfault in a C library, the OOM killer) breaks the whole
    pool. Each worker marks the task it is running in a scratch folder (its pid in a file
    made when the task starts), so after a break only the marked tasks are suspects: they are
    retried alone, and one that dies alone again is reported as failed. Every other task is
    resubmitted untouched. A task running longer than `task_timeout` seconds has its worker
    killed and is reported as timed out; the tasks the kill interrupted are simply resubmitted.
    """

    def __init__(self, workers: int | None = None, task_timeout: float | None = None, preload: tuple[str, ...] = ()):
        self.workers = workers or os.cpu_count() or 1
        self.task_timeout = task_timeout
        self.context = _worker_context(preload)

    def map_unordered(self, fn, tasks):
        with tempfile.TemporaryDirectory(prefix="evalkit-running-") as scratch:
            queue = list(enumerate(tasks))
            while queue:
                broken, hung = yield from self._run(fn, queue, self.workers, scratch)
                running = {i for i, _ in broken if _marker(scratch, i).exists()}
                for index, _ in broken:
                    _marker(scratch, index).unlink(missing_ok=True)
                # A kill for a timeout explains the break: the other running tasks were only interrupted.
                suspects = set() if hung else running
                queue = [(i, t) for i, t in broken if i not in hung and i not in suspects]
                for index, task in broken:
                    if index in hung:
                        yield task, self._timed_out()
                    elif index in suspects:
                        yield from self._retry_alone(fn, index, task, scratch)

    def _retry_alone(self, fn, index, task, scratch):
        broken, hung = yield from self._run(fn, [(index, task)], 1, scratch)
        if hung:
            yield task, self._timed_out()
        elif broken:
            yield task, WorkerCrash("its worker process died twice running it (a crash in a codec or metric library?)")

    def _timed_out(self) -> TaskTimeout:
        return TaskTimeout(f"it ran longer than the task timeout ({self.task_timeout:g} s), so its worker was stopped")

    def _run(self, fn, queue, workers, scratch):
        """Run the queue in a fresh pool; return the tasks the pool broke on, and the indices of
        those whose worker was killed for running too long."""
        pool = ProcessPoolExecutor(
            min(workers, len(queue)), mp_context=self.context, initializer=_start_worker, initargs=(os.getpid(),)
        )
        finished: SimpleQueue = SimpleQueue()  # futures as they finish: O(1) a task, where wait() is O(pending)
        pending = {}
        broken, hung = [], set()
        chunks = _chunks(queue, workers)
        try:
            for position, chunk in enumerate(chunks):
                try:
                    future = pool.submit(_run_chunk, fn, scratch, chunk)
                except (BrokenProcessPool, OSError):  # a worker died while tasks were still handed out
                    broken += [entry for rest in chunks[position:] for entry in rest]  # never started
                    break
                pending[future] = chunk
                future.add_done_callback(finished.put)
            while pending:
                try:
                    done: Future | None = finished.get(timeout=self._poll_seconds())
                except Empty:
                    done = None
                if done is not None:
                    chunk = pending.pop(done)
                    error = done.exception()
                    if isinstance(error, BrokenProcessPool):  # its finished tasks' results were lost too
                        broken += chunk
                    else:
                        results = [error] * len(chunk) if error else done.result()
                        for (_, task), result in zip(chunk, results):
                            yield task, result
                if self.task_timeout is not None:
                    hung |= _stop_overdue(scratch, self.task_timeout)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return broken, hung

    def _poll_seconds(self) -> float | None:
        """How long to wait for a result before looking for overdue tasks (None: no limit)."""
        return None if self.task_timeout is None else min(1.0, self.task_timeout / 4)


def _stop_overdue(scratch: str, limit: float) -> set[int]:
    """Kill the worker of every running task (its marker exists) older than `limit` seconds."""
    overdue = set()
    for marker in Path(scratch).glob("*.running"):
        try:
            if time.time() - marker.stat().st_mtime > limit:
                os.kill(int(marker.read_text()), signal.SIGKILL)
                overdue.add(int(marker.name.split(".")[0]))
        except (OSError, ValueError):  # just finished, or its pid not written yet
            continue
    return overdue


def _start_worker(driver: int) -> None:
    """Worker set-up: one thread for the numerical libraries, and an exit when the driver process
    ends. A worker is the fork server's child, not the driver's, and waits on a queue it holds
    both ends of: a killed driver (SIGKILL, the OOM killer) would leave it, and through it the
    server, waiting forever."""
    single_thread_env()
    threading.Thread(target=_exit_after, args=(driver,), daemon=True, name="evalkit-driver-watch").start()


def _exit_after(driver: int) -> None:
    try:
        handle = os.pidfd_open(driver)  # readable once the process has ended (Linux 5.3+)
    except (AttributeError, OSError):
        handle = None
    if handle is not None:
        select.select([handle], [], [])
    else:
        while _alive(driver):
            time.sleep(1.0)
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_workers_server(preload: tuple[str, ...] = ("evalkit.tasks",)) -> None:
    """Start the server local workers are forked from, with `preload` imported, now: a command
    calls this first, so those imports run beside its own set-up instead of after it."""
    _worker_context(preload)


class _WorkerPopen(popen_forkserver.Popen):
    """A worker launched without the caller's main module. By default every process the fork
    server makes first re-imports the script that started the run (or its module, for
    `python -m`): for a script that calls `run_experiment` that re-runs all of its imports (the
    driver's pandas and database stack) in every worker, about a second of CPU and 100 MB each.
    A worker runs evalkit's functions only, so the launch leaves the main module out."""

    def _launch(self, process_obj):
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")  # no file, no spec: nothing to re-run
        try:
            super()._launch(process_obj)  # type: ignore[misc]  # a private hook the stubs leave out
        finally:
            sys.modules["__main__"] = main


class _WorkerProcess(mp_context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj):
        return _WorkerPopen(process_obj)


class _WorkerContext(mp_context.ForkServerContext):
    Process = _WorkerProcess


def _worker_context(preload: tuple[str, ...]):
    """Workers forked from a server that has imported `preload` (the task module, the metric and
    codec packages a run needs) once: no per-worker start-up import, and no inherited threads or
    open database handles (unlike a plain fork). The server starts now, so its imports overlap
    with whatever the caller does before the first task (reading the dataset, the database).
    The thread limits are set before, so its libraries start single-threaded."""
    context = _WorkerContext()
    single_thread_env()
    if preload:
        context.set_forkserver_preload(list(preload))
    forkserver.ensure_running()
    return context


class WorkerCrash(RuntimeError):
    """A task's worker process died while running it."""


class TaskTimeout(RuntimeError):
    """A task ran longer than the executor's task timeout and its worker was stopped."""


def _marker(scratch: str, index: int) -> Path:
    return Path(scratch) / f"{index}.running"


def _chunks(queue: list, workers: int) -> list[list]:
    """The queue cut into chunks for submission, largest first (at most MAX_CHUNK tasks, about a
    CHUNKS_PER_WORKER-th of a worker's share of what is left), down to single tasks at the end.

    A pool keeps only about one call per worker queued ahead; with one task per call each worker
    waits for the driver to hand it the next, and when the workers fill every core the driver's
    threads wait for a core to do it. A chunk keeps a worker busy meanwhile, and the small chunks
    at the end keep the workers finishing together."""
    chunks, position = [], 0
    while position < len(queue):
        size = max(1, min(MAX_CHUNK, (len(queue) - position) // (CHUNKS_PER_WORKER * workers)))
        chunks.append(queue[position : position + size])
        position += size
    return chunks


def _run_chunk(fn, scratch: str, chunk: list) -> list:
    """Worker side: a chunk's tasks in turn; a task's exception is its result."""
    return [_marked(fn, str(_marker(scratch, index)), task) for index, task in chunk]


def _marked(fn, marker: str, task):
    """Run one task, marked as running for as long as it runs (the file holds our pid)."""
    Path(marker).write_text(str(os.getpid()))
    try:
        return fn(task)
    except Exception as err:  # noqa: BLE001 - reported per task by the runner
        return _picklable(err)
    finally:
        Path(marker).unlink()


def _picklable(err: Exception) -> Exception:
    """The exception itself where it survives the trip back to the driver, else its text (one
    unpicklable exception must not lose the other results of its chunk)."""
    try:
        pickle.loads(pickle.dumps(err))
    except Exception:  # noqa: BLE001 - any failure to round-trip
        return RuntimeError(f"{type(err).__name__}: {err}")
    return err


NO_WORKERS_SECONDS = 60.0  # a Dask cluster left without workers this long will not finish a run


class DaskExecutor(Executor):
    """Tasks on an existing Dask distributed scheduler (`tcp://host:port`)."""

    def __init__(self, address: str):
        self.address = address
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError("--scheduler needs Dask: pip install distributed (or leave --scheduler out)") from None
        try:
            self.client = Client(address, timeout="30s")
        except (OSError, ValueError, TypeError) as err:  # a mistyped address or no scheduler listening there
            raise ConfigError(
                f"cannot use the Dask scheduler {address!r} ({err}); give a running scheduler's address, "
                "e.g. tcp://127.0.0.1:8786"
            ) from None

    def map_unordered(self, fn, tasks):
        from distributed import KilledWorker, as_completed

        tasks = list(tasks)
        futures = {self.client.submit(fn, task, pure=False): task for task in tasks}
        for future in self._as_finished(as_completed(futures)):
            task = futures[future]
            try:
                yield task, future.result()
            except KilledWorker:  # as a local worker's death: the runner retries the task in parts
                yield task, WorkerCrash("its Dask workers died running it")
            except Exception as err:  # noqa: BLE001 - reported per task by the runner
                yield task, err

    def _as_finished(self, pending) -> Iterator:
        """`pending`'s futures as they finish. Tasks wait on a scheduler without workers for ever
        (none started, or all died and none came back): after NO_WORKERS_SECONDS of that, an error."""
        without_workers_since, checked = None, 0.0
        while not pending.is_empty():
            if finished := pending.next_batch(block=False):
                yield from finished
                without_workers_since = None
                continue
            now = time.monotonic()
            if now - checked >= 1.0:
                checked = now
                if self.client.nthreads():
                    without_workers_since = None
                elif without_workers_since is None:
                    without_workers_since = now
                elif now - without_workers_since > NO_WORKERS_SECONDS:
                    raise ConfigError(
                        f"the Dask scheduler {self.address} has had no workers for "
                        f"{NO_WORKERS_SECONDS:.0f} s, so no task can run: start some (dask worker ADDRESS) and run "
                        "again; the rows stored so far are kept"
                    )
            time.sleep(0.05)

    def close(self) -> None:
        self.client.close()


def make_executor(
    workers: int | None = None,
    scheduler: str | None = None,
    task_timeout: float | None = None,
    preload: tuple[str, ...] = (),
) -> Executor:
    """Where a run's tasks go; `preload` names the modules local workers should start with."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise ConfigError(
            f"workers is {workers!r}: give a whole number, 0 for this process or more for worker processes"
        )
    if task_timeout is not None and (scheduler or workers == 0):
        where = "a Dask cluster (use its workers' own limits)" if scheduler else "this process (workers: 0)"
        raise ConfigError(f"task_timeout stops local worker processes; it cannot stop tasks on {where}")
    if scheduler:
        return DaskExecutor(scheduler)
    if workers == 0:
        return SerialExecutor()
    return LocalExecutor(workers, task_timeout, preload)

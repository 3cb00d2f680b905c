"""Tens of MUSHRA listeners at once: the listener path of the real server under load, over loopback.

The server is `streamlit run app/server.py` (the admin's Streamlit and the listener's pages in one
process), on 127.0.0.1, with the demo test (tests_mushra/demo.yaml: 48 kHz, 8 signals a page, one
training and six test pages). Each simulated listener does what the listener page does, request
for request: open the open link, load the page and its scripts, enter, consent, instructions,
fetch the level signal, confirm; then on every trial page fetch the reference and then the other
eight stimuli (four at a time, as a browser does), report each play and the stop, wait, and press
Next (which commits the ratings and returns the next page). Paces:

* realistic: 20-60 s per trial page, 1 s minimum per stimulus (the demo's rule);
* aggressive: 2 s per trial page (the test is made with a 0.1 s minimum so that this is legal);
* quick (the CI version): 5-8 s per page; listeners set a 0.5 s loop region, so 0.5 s is the need.

Runs are bounded: listeners arrive over the first seconds, start no new page after `seconds`, and
the whole run is cut off at twice that. Printed per run: Next -> next trial interactive (the
commit acknowledged, the next page's JSON and its reference audio arrived) p50/p95, every audio
arrived p95, commit acknowledgement p95, server CPU seconds per transition (all the server's CPU
during the run, plays and audio included, over the transitions), server RSS before/peak/after
(after: all sessions ended and 10 s idle), and lost or duplicate ratings, checked against the
database. A one-listener run in the same invocation is the baseline for the latency ratios.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "app" / "server.py"
DEMO = ROOT / "tests_mushra" / "demo.yaml"
CACHE = ROOT / "results" / "cache"  # the decoded-audio cache `make demo` fills: codecs run once
TOKEN_HEADER = "x-listener-token"


@dataclass(frozen=True)
class Pace:
    name: str
    seconds_per_trial: tuple[float, float]
    min_play: float  # the test's minimum per stimulus
    loop: float | None = None  # a loop region the listener sets (s), or None: the whole stimulus


REALISTIC = Pace("realistic", (20.0, 60.0), 1.0)
AGGRESSIVE = Pace("aggressive", (2.0, 2.0), 0.1)
QUICK = Pace("quick", (5.0, 8.0), 1.0, loop=0.5)


@dataclass
class Result:
    """One run's numbers."""

    pace: str
    listeners: int
    transitions: int = 0
    interactive: list[float] = field(default_factory=list)  # s, Next -> next page's reference audio in hand
    all_audio: list[float] = field(default_factory=list)
    commit: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    rss_mb: tuple[float, float, float] = (0.0, 0.0, 0.0)  # before, peak, after
    lost: int = 0
    duplicates: int = 0
    unacknowledged: int = 0
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after

    def p(self, values: list[float], q: float) -> float:
        return float(np.percentile(values, q)) if values else float("nan")

    @property
    def cpu_per_transition(self) -> float:
        return self.cpu_seconds / max(self.transitions, 1)


# -- the server ----------------------------------------------------------------------------------


class Server:
    """The real server in its own process group, on a free loopback port."""

    def __init__(self, url: str, folder: Path):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.log = folder / "server.log"
        env = {**os.environ, "EVALKIT_DB_URL": url, "PYTHONUNBUFFERED": "1"}
        command = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(SERVER),
            "--server.port",
            str(self.port),
            "--server.address",
            "127.0.0.1",
        ]
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait()

    def _wait(self, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_stcore/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("the server did not start")

    def cpu(self) -> float:
        import psutil

        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def rss_mb(self) -> float:
        import psutil

        return psutil.Process(self.process.pid).memory_info().rss / 2**20

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)  # our own process group only
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


# -- one listener, request for request what the page does -----------------------------------------


class Connection:
    """One keep-alive HTTP connection (a browser's), reopened if the server closed it."""

    def __init__(self, port: int):
        self.port, self.http = port, None

    def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        headers = {**(headers or {}), **({"content-type": "application/json"} if data is not None else {})}
        for attempt in range(2):
            try:
                if self.http is None:
                    self.http = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                self.http.request(method, path, body=data, headers=headers)
                response = self.http.getresponse()
                return response.status, dict(response.getheaders()), response.read()
            except (http.client.HTTPException, OSError):
                self.http = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


class Listener:
    def __init__(
        self,
        port: int,
        open_token: str,
        pace: Pace,
        seed: int,
        audio_pool: ThreadPoolExecutor,
        result: Result,
        acknowledged: set,
        lock: threading.Lock,
    ):
        self.port, self.open_token, self.pace = port, open_token, pace
        self.rng = random.Random(seed)
        self.main = Connection(port)
        self.pool, self.result, self.acknowledged, self.lock = audio_pool, result, acknowledged, lock
        self.local = threading.local()

    def error(self, what: str) -> None:
        with self.lock:
            self.result.errors[what] = self.result.errors.get(what, 0) + 1

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        status, _, data = self.main.request(method, path, body, {TOKEN_HEADER: self.token})
        if status != 200:
            self.error(f"{path} {status}")
            raise RuntimeError(f"{path}: {status} {data[:200]!r}")
        return json.loads(data)

    def fetch(self, url: str) -> int:
        if not hasattr(self.local, "connection"):
            self.local.connection = Connection(self.port)
        status, _, data = self.local.connection.request("GET", url)
        if status != 200:
            self.error(f"audio {status}")
        return len(data)

    def start(self) -> dict:
        status, headers, _ = self.main.request("GET", f"/listen?open={self.open_token}")
        self.token = headers["location"].split("t=")[1]
        for path in (
            f"/listen?t={self.token}",
            "/listen/assets/listen.js",
            "/listen/assets/player.js",
            "/listen/assets/listen.css",
        ):
            self.main.request("GET", path)
        self.api("POST", "/api/listen/enter", {})
        self.api("POST", "/api/listen/step", {"action": "consent"})
        level = self.api("POST", "/api/listen/step", {"action": "instructions"})
        self.fetch(level["level"]["url"])
        time.sleep(self.rng.uniform(1, 3))
        return self.api("POST", "/api/listen/step", {"action": "level", "settings": {"volume": 0.6}})

    def audio(self, trial: dict, sent: float) -> tuple[float, float]:
        """The reference first (the page is usable then), the rest four at a time; seconds after `sent`."""
        self.fetch(trial["ref"]["url"])
        interactive = time.perf_counter() - sent
        list(self.pool.map(self.fetch, [s["url"] for s in trial["stimuli"]]))
        return interactive, time.perf_counter() - sent

    def listen(self, trial: dict) -> None:
        """Every stimulus in turn, reported as the page reports it, spread over this page's time."""
        budget = self.rng.uniform(*self.pace.seconds_per_trial)
        need = min(self.pace.min_play, self.pace.loop or self.pace.min_play)
        ids = [trial["ref"]["id"], *(s["id"] for s in trial["stimuli"])]
        dwell = max(need + 0.08, 0.8 * budget / len(ids))
        loop = None if self.pace.loop is None else [1.0, 1.0 + self.pace.loop]
        started = time.perf_counter()
        for stimulus in ids:
            self.api(
                "POST",
                "/api/listen/play",
                {
                    "phase": trial["phase"],
                    "position": trial["position"],
                    "stimulus": stimulus,
                    "offset": 1.0 if loop else 0.0,
                    "loop": loop,
                },
            )
            time.sleep(dwell)
        self.api(
            "POST",
            "/api/listen/play",
            {"phase": trial["phase"], "position": trial["position"], "stimulus": None, "offset": 0.0, "loop": loop},
        )
        time.sleep(max(0.0, budget - (time.perf_counter() - started)))

    def run(self, deadline: float) -> None:
        try:
            page = self.start()
            self.audio(page["trial"], time.perf_counter())
            while "trial" in page and time.perf_counter() < deadline:
                trial = page["trial"]
                self.listen(trial)
                ratings = {s["id"]: self.rng.randint(0, 100) for s in trial["stimuli"]} if trial["rate"] else {}
                sent = time.perf_counter()
                page = self.api(
                    "POST",
                    "/api/listen/step",
                    {
                        "action": "trial",
                        "phase": trial["phase"],
                        "position": trial["position"],
                        "ratings": ratings,
                        "client": {"ms_on_page": 1000},
                    },
                )
                acknowledged = time.perf_counter() - sent
                with self.lock:
                    self.acknowledged.add((self.token, trial["phase"], trial["position"]))
                    self.result.commit.append(acknowledged)
                    self.result.transitions += 1
                if "trial" in page:
                    interactive, everything = self.audio(page["trial"], sent)
                    with self.lock:
                        self.result.interactive.append(interactive)
                        self.result.all_audio.append(everything)
        except Exception as err:  # noqa: BLE001  (counted and reported; the run goes on)
            self.error(type(err).__name__)


# -- a run -------------------------------------------------------------------------------------------


def make_test(folder: Path, url: str, pace: Pace) -> str:
    """The demo test (min play per `pace`) in a new database; returns its open-link token."""
    from evalkit import listening
    from evalkit.config import read_yaml
    from evalkit.listening.spec import spec_from_dict
    from evalkit.store import connect

    engine = connect(url)
    data = {**read_yaml(DEMO, "test definition"), "min_play_seconds": pace.min_play}
    spec = spec_from_dict(data, base=DEMO.parent, source=str(DEMO))
    listening.create_test(engine, spec, stimulus_root=folder / "stimuli", cache_root=CACHE)
    token = listening.launch_test(engine, spec.name).open_token
    engine.dispose()
    return token


def check_database(url: str, acknowledged: set, result: Result) -> None:
    """Every acknowledged page is stored exactly once with its eight ratings; nothing else is stored."""
    from sqlalchemy import func, select

    from evalkit.listening.tokens import token_hash
    from evalkit.store import connect
    from evalkit.store.models_mushra import MushraParticipant, MushraResponse, MushraSession, MushraTrial

    engine = connect(url)
    with engine.connect() as connection:
        rows = connection.execute(
            select(MushraParticipant.token_hash, MushraTrial.phase, MushraTrial.position, MushraTrial.id)
            .join(MushraSession, MushraSession.participant_id == MushraParticipant.id)
            .join(MushraTrial, MushraTrial.session_id == MushraSession.id)
        ).all()
        ratings = dict(
            connection.execute(select(MushraResponse.trial_id, func.count()).group_by(MushraResponse.trial_id)).all()
        )
    engine.dispose()
    stored: dict[tuple, int] = {}
    for row in rows:
        key = (row.token_hash, row.phase, row.position)
        stored[key] = stored.get(key, 0) + 1
        if row.phase == "test" and ratings.get(row.id) != 8:
            result.lost += 1
    expected = {(token_hash(token), phase, position) for token, phase, position in acknowledged}
    result.lost += len(expected - set(stored))
    result.duplicates = sum(count - 1 for count in stored.values())
    result.unacknowledged = len(set(stored) - expected)


def run(listeners: int, pace: Pace, seconds: float, arrive_over: float = 20.0, seed: int = 0) -> Result:
    """`listeners` at `pace` against a fresh server and database; no new page after `seconds`."""
    with tempfile.TemporaryDirectory(prefix="evalkit-load-") as folder:
        folder, url = Path(folder), f"sqlite:///{Path(folder) / 'evalkit.db'}"
        open_token = make_test(folder, url, pace)
        server = Server(url, folder)
        result, acknowledged, lock = Result(pace.name, listeners), set(), threading.Lock()
        try:
            warm = Listener(
                server.port,
                open_token,
                AGGRESSIVE,
                999,
                ThreadPoolExecutor(4),
                Result("warm", 1),
                set(),
                threading.Lock(),
            )
            warm.audio(warm.start()["trial"], time.perf_counter())  # imports and caches warm, as in service
            time.sleep(2)
            before, cpu0, load0 = server.rss_mb(), server.cpu(), os.getloadavg()[0]
            peak = [before]
            stop = threading.Event()
            sampler = threading.Thread(target=_sample_rss, args=(server, peak, stop), daemon=True)
            sampler.start()
            with ThreadPoolExecutor(max(4, min(64, 4 * listeners))) as audio_pool:
                threads = []
                start = time.perf_counter()
                for k in range(listeners):
                    listener = Listener(
                        server.port, open_token, pace, seed * 1000 + k, audio_pool, result, acknowledged, lock
                    )
                    thread = threading.Thread(target=listener.run, args=(start + seconds,), daemon=True)
                    thread.start()
                    threads.append(thread)
                    time.sleep(arrive_over / listeners)
                for thread in threads:
                    thread.join(timeout=max(1.0, start + 2 * seconds - time.perf_counter()))
                result.errors.update(
                    {"still running at the cut-off": sum(t.is_alive() for t in threads)}
                    if any(t.is_alive() for t in threads)
                    else {}
                )
            result.cpu_seconds = server.cpu() - cpu0
            time.sleep(10)  # every session has ended: does memory come back?
            stop.set()
            result.rss_mb = (before, max(peak), server.rss_mb())
            result.load = (load0, os.getloadavg()[0])
        finally:
            server.stop()
        check_database(url, acknowledged, result)
        return result


def _sample_rss(server: Server, peak: list[float], stop: threading.Event) -> None:
    while not stop.wait(0.5):
        try:
            peak.append(server.rss_mb())
        except Exception:  # noqa: BLE001  (the server is going away)
            return


# -- reporting -----------------------------------------------------------------------------------


def row(result: Result, baseline: Result | None) -> str:
    p50, p95 = result.p(result.interactive, 50), result.p(result.interactive, 95)
    ratio = f"{p95 / baseline.p(baseline.interactive, 50):6.1f}" if baseline and baseline.interactive else "     -"
    before, peak, after = result.rss_mb
    return (
        f"{result.pace:<11}{result.listeners:>4}{result.transitions:>6}  {p50:6.2f} {p95:6.2f} {ratio} "
        f"{result.p(result.all_audio, 95):7.2f} {1000 * result.p(result.commit, 95):8.0f}  "
        f"{result.cpu_per_transition:7.3f}  {before:5.0f} {peak:5.0f} {after:5.0f}  "
        f"{result.lost:4d} {result.duplicates:4d} {result.unacknowledged:4d}  "
        f"{result.load[0]:4.1f}/{result.load[1]:4.1f}  {sum(result.errors.values()):4d}"
    )


HEADER = (
    "pace       lis trans   p50 s  p95 s  /base  all95 s commit95ms  CPU-s/tr  RSS MB b/peak/after  "
    "lost dup unack  load1 b/a  errors"
)


def main(quick_only: bool = False) -> list[Result]:
    print(__doc__.split("\n\n")[0])
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    plans = [(1, AGGRESSIVE, 40.0, 1.0)] if not quick_only else []
    plans += [(5, QUICK, 60.0, 5.0)] if quick_only else [(10, AGGRESSIVE, 60.0, 5.0), (50, REALISTIC, 240.0, 30.0)]
    print(HEADER)
    results, baseline = [], None
    for listeners, pace, seconds, arrive in plans:
        result = run(listeners, pace, seconds, arrive)
        baseline = baseline or (result if listeners == 1 else None)
        print(row(result, baseline), flush=True)
        if result.errors:
            print(f"           errors: {result.errors}")
        results.append(result)
    print(
        "p50/p95: Next -> next page interactive; /base: p95 over the one-listener p50 of this run; all95: every "
        "stimulus arrived; CPU-s/tr: server CPU per transition, all requests included"
    )
    return results


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main(quick_only="--quick" in sys.argv)

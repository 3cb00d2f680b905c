"""Experiments end to end: every row recorded, incremental reruns, resume after SIGKILL, Dask."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import NO_PG, PG_URL, dask_cluster, pg_schema_url

import evalkit
from evalkit.audio import Audio, save
from evalkit.cli import main
from evalkit.codecs import BACKENDS
from evalkit.codecs.reference import Identity
from evalkit.demo_pipeline import DEMO_MANIFEST
from evalkit.errors import ConfigError
from evalkit.executors import LocalExecutor
from evalkit.experiment import DEFAULT_CONFIG, load_experiment
from evalkit.runner import _consume, _crashes_isolated, _NoBar, plan
from evalkit.store import connect, delay_check, results_frame, roundtrips_frame
from evalkit.tasks import COST_METRICS, process

METRICS = ["si_sdr", "lsd"]
OUTPUTS = len(METRICS) + len(COST_METRICS)


def write_experiment(tmp_path: Path, **overrides) -> Path:
    config = {
        "name": "t",
        "dataset": str(DEMO_MANIFEST),
        "limit": 3,
        "workers": 0,
        "codecs": ["reference", "g711-mulaw"],
        "metrics": METRICS,
        "database": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "cache": str(tmp_path / "cache"),
    }
    config.update(overrides)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def rows(path: Path):
    exp = load_experiment(path)
    return results_frame(connect(exp.database), exp.name)


def test_every_item_codec_metric_gives_exactly_one_row(tmp_path):
    frame = evalkit.run(write_experiment(tmp_path))
    assert len(frame) == 3 * 2 * OUTPUTS
    assert not frame.duplicated(["item_id", "codec", "metric"]).any()
    assert (frame.status == "ok").all()
    ok = frame[frame.metric == "si_sdr"].groupby("codec").value.mean()
    assert ok["reference"] > ok["g711-mulaw"] > 10  # G.711 is narrowband


def test_bad_items_are_failed_rows_and_the_run_goes_on(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    save(Audio(0.1 * rng.standard_normal(16000), 16000), data / "good.wav")
    save(Audio(np.zeros(16000), 16000), data / "silent.wav")
    (data / "corrupt.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    save(Audio(0.1 * rng.standard_normal((2, 16000)), 16000), data / "stereo.wav")
    frame = evalkit.run(write_experiment(tmp_path, dataset=str(data), limit=None, metrics=["si_sdr", "pesq_wb"]))
    assert len(frame) == 4 * 2 * (2 + len(COST_METRICS))
    by_item = frame.groupby("item_id")
    assert (by_item.get_group("good").status == "ok").all()
    corrupt = by_item.get_group("corrupt")
    assert (corrupt.status == "failed").all() and corrupt.reason.str.contains("corrupt.wav").all()
    stereo = by_item.get_group("stereo")
    assert stereo.reason.str.contains("downmix").all()
    silent = by_item.get_group("silent")
    assert silent[silent.metric == "pesq_wb"].status.isin(["failed", "skipped"]).all()
    assert frame[frame.status != "ok"].value.isna().all() and (frame[frame.status != "ok"].reason != "").all()


def test_rerun_recomputes_nothing_and_a_changed_card_only_itself(tmp_path):
    cards = tmp_path / "cards"
    cards.mkdir()
    card = yaml.safe_load((Path(evalkit.__file__).parent.parent / "codecs" / "g711-mulaw.yaml").read_text())
    card["name"] = "my-g711"
    (cards / "my-g711.yaml").write_text(yaml.safe_dump(card))
    path = write_experiment(tmp_path, cards=[str(cards)], codecs=["reference", "my-g711"])
    first = evalkit.run(path).set_index(["item_id", "codec", "metric"]).created_at
    second = evalkit.run(path).set_index(["item_id", "codec", "metric"]).created_at
    assert second.equals(first)
    card["params"]["law"] = "a"
    (cards / "my-g711.yaml").write_text(yaml.safe_dump(card))
    frame = evalkit.run(path)
    reference = frame[frame.codec == "reference"].set_index(["item_id", "codec", "metric"]).created_at
    assert reference.equals(first[first.index.get_level_values("codec") == "reference"])
    assert frame.codec_hash.nunique() == 3  # old and new my-g711 configurations are kept apart


def test_after_a_card_edit_the_summary_lists_each_codec_once(tmp_path, capsys):
    cards = tmp_path / "cards"
    cards.mkdir()
    card = yaml.safe_load((Path(evalkit.__file__).parent.parent / "codecs" / "g711-mulaw.yaml").read_text())
    card["name"] = "my-g711"
    (cards / "my-g711.yaml").write_text(yaml.safe_dump(card))
    path = write_experiment(tmp_path, cards=[str(cards)], codecs=["my-g711"], metrics=["si_sdr"])
    assert main(["run", str(path)]) == 0
    card["params"]["law"] = "a"
    (cards / "my-g711.yaml").write_text(yaml.safe_dump(card))
    capsys.readouterr()
    for command in (["run", str(path)], ["results", "--database", f"sqlite:///{tmp_path / 'db.sqlite'}", "--run", "t"]):
        assert main(command) == 0
        rows = [
            line for line in capsys.readouterr().out.splitlines() if line.startswith("my-g711") and "si_sdr" in line
        ]
        assert len(rows) == 1, rows  # the a-law rows only; the mu-law ones stay stored
    assert main(["results", "--database", f"sqlite:///{tmp_path / 'db.sqlite'}"]) == 0  # every run's rows
    every_run = [line for line in capsys.readouterr().out.splitlines() if line.startswith("my-g711")]
    assert len([line for line in every_run if "si_sdr" in line]) == 2, every_run  # both configurations
    assert results_frame(connect(f"sqlite:///{tmp_path / 'db.sqlite'}"), "t").codec_hash.nunique() == 2


def test_decoded_audio_is_cached_by_content(tmp_path):
    path = write_experiment(tmp_path, metrics=["si_sdr"])
    evalkit.run(path)
    cached = list((tmp_path / "cache").rglob("*.wav"))
    assert len(cached) == 6
    frame = evalkit.run(write_experiment(tmp_path, metrics=["si_sdr", "lsd"]))  # a new metric reuses the cache
    assert len(frame) == 3 * 2 * OUTPUTS
    assert sorted((tmp_path / "cache").rglob("*.wav")) == sorted(cached)


def test_unknown_metric_or_codec_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown metric"):
        evalkit.run(write_experiment(tmp_path, metrics=["nope"]))
    with pytest.raises(ConfigError, match="unknown codec"):
        evalkit.run(write_experiment(tmp_path, codecs=["nope"]))


@pytest.mark.parametrize(
    "key, value",
    [
        ("workers", "two"),
        ("workers", -1),
        ("workers", 1.5),
        ("limit", 0),
        ("task_timeout", 0),
        ("task_timeout", "1 min"),
        ("task_timeout", True),
    ],
)
def test_numeric_settings_are_checked(tmp_path, key, value):
    with pytest.raises(ConfigError, match=key):
        load_experiment(write_experiment(tmp_path, **{key: value}))


def test_numeric_settings_are_read(tmp_path):
    exp = load_experiment(write_experiment(tmp_path, workers=2, limit=5, task_timeout=90))
    assert (exp.workers, exp.limit, exp.task_timeout) == (2, 5, 90.0)


def test_sweep_makes_one_codec_per_value(tmp_path):
    codecs = [{"card": "opus-16k-wb", "sweep": {"bitrate": [8000, 24000]}}]
    frame = evalkit.run(write_experiment(tmp_path, codecs=codecs, limit=2))
    kbps = frame[frame.metric == "bitrate_kbps"].groupby("codec").value.mean()
    assert set(kbps.index) == {"opus-16k-wb@bitrate=8000", "opus-16k-wb@bitrate=24000"}
    assert kbps["opus-16k-wb@bitrate=8000"] < kbps["opus-16k-wb@bitrate=24000"]


def test_config_default_is_a_valid_experiment(tmp_path):
    out = tmp_path / "exp.yaml"
    assert main(["config", "default", "-o", str(out)]) == 0
    exp_dir = Path(evalkit.__file__).parent.parent
    assert out.read_text() == DEFAULT_CONFIG.replace("dataset: data/", f"dataset: {exp_dir.as_posix()}/data/")
    exp = load_experiment(out)  # written outside the checkout, it still finds the demo corpus
    assert exp.name == "my-experiment" and len(exp.codecs) == 8 and exp.dataset.is_file()


def test_config_default_in_the_checkout_keeps_the_relative_dataset(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(Path(evalkit.__file__).parent.parent)
    assert main(["config", "default"]) == 0
    assert capsys.readouterr().out == DEFAULT_CONFIG


def test_results_command_prints_and_exports(tmp_path, capsys):
    path = write_experiment(tmp_path)
    evalkit.run(path)
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert main(["results", "--run", "t", "--database", db]) == 0
    assert "95% CI" in capsys.readouterr().out
    for suffix in ("csv", "parquet"):
        assert main(["results", "--run", "t", "--database", db, "--export", str(tmp_path / f"s.{suffix}")]) == 0
        assert (tmp_path / f"s.{suffix}").stat().st_size > 0


@pytest.mark.slow
def test_local_pool_survives_a_killed_worker(tmp_path):
    path = write_experiment(tmp_path, workers=2, limit=6, codecs=["reference", "g711-mulaw", "g722-64k"])
    killed = []

    def kill_one_worker():
        import multiprocessing

        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            children = multiprocessing.active_children()
            if children and (tmp_path / "cache").exists():
                os.kill(children[0].pid, signal.SIGKILL)
                killed.append(children[0].pid)
            time.sleep(0.05)

    thread = threading.Thread(target=kill_one_worker)
    thread.start()
    frame = evalkit.run(path)
    thread.join()
    assert killed
    assert len(frame) == 6 * 3 * OUTPUTS and (frame.status == "ok").all()


@pytest.mark.slow
def test_killed_run_resumes_without_loss_or_duplicates(tmp_path):
    path = write_experiment(tmp_path, workers=1, limit=None, codecs=["reference", "g711-mulaw", "g726-32k"])
    db = tmp_path / "db.sqlite"
    tag = f"killed-run-{os.getpid()}-{time.time_ns()}"  # marks the driver's processes, whoever their parent
    proc = subprocess.Popen(
        [sys.executable, "-m", "evalkit", "run", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "EVALKIT_TEST_TAG": tag},
    )
    expected = 22 * 3 * OUTPUTS
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            done = _count_rows(db)
            if done >= 10:
                break
            time.sleep(0.1)
        assert _tagged(tag)  # the driver, its fork server and a worker
        os.kill(proc.pid, signal.SIGKILL)  # the driver only: its workers notice and exit
    finally:
        proc.wait(30)
    deadline = time.time() + 30
    while _tagged(tag) and time.time() < deadline:
        time.sleep(0.2)
    assert _tagged(tag) == [], "worker processes outlived their killed driver"
    partial = _count_rows(db)
    assert 10 <= partial < expected
    frame = evalkit.run(path)
    assert len(frame) == expected and (frame.status == "ok").all()
    assert not frame.duplicated(["item_id", "codec", "metric"]).any()
    assert len(roundtrips_frame(connect(f"sqlite:///{db}"), "t")) == 22 * 3


def crash_in_pesq(task):
    """The task as a worker runs it, but pesq_wb segfaults, as the ITU code does on some long items."""
    if "pesq_wb" in task.metrics:
        os.kill(os.getpid(), signal.SIGSEGV)
    return process(task)


def crash_in_codec(task):
    """The task as a worker runs it, but its codec segfaults, whatever the metrics."""
    os.kill(os.getpid(), signal.SIGSEGV)


@pytest.mark.slow
@pytest.mark.parametrize(
    "work, failed, reason",
    [
        (crash_in_pesq, {"pesq_wb"}, "metric pesq_wb"),
        (crash_in_codec, {"pesq_wb", "stoi", *COST_METRICS}, "the g722-64k round trip"),
    ],
)
def test_a_library_that_crashes_its_worker_costs_only_its_own_rows(tmp_path, work, failed, reason):
    exp = load_experiment(write_experiment(tmp_path, limit=1, codecs=["g722-64k"], metrics=["pesq_wb", "stoi"]))
    rows = []
    executor = LocalExecutor(1)
    try:
        outputs = _crashes_isolated(executor, plan(exp, set()), _NoBar(), work)
        _consume(outputs, _NoBar(), lambda task, out: rows.extend(out.results))
    finally:
        executor.close()
    status = {row["metric"]: (row["status"], row.get("reason") or "") for row in rows}
    assert len(rows) == len(status) == 2 + len(COST_METRICS)  # each row once: the parts do not overlap
    assert {metric for metric, (s, _) in status.items() if s == "failed"} == failed
    assert all(f"running {reason} on this item" in status[metric][1] for metric in failed)


def _tagged(tag: str) -> list[int]:
    """Live processes whose environment carries `tag` (zombies have none to read)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and f"EVALKIT_TEST_TAG={tag}".encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _count_rows(db: Path) -> int:
    import sqlite3

    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute("SELECT count(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
def test_dask_cluster_gives_the_same_rows(tmp_path):
    pytest.importorskip("distributed")
    local = evalkit.run(write_experiment(tmp_path))
    with dask_cluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        remote_dir = tmp_path / "dask"
        remote_dir.mkdir()
        remote = evalkit.run(write_experiment(remote_dir), scheduler=cluster.scheduler_address)
    key = ["item_id", "codec", "metric"]
    left = local.set_index(key).sort_index()
    right = remote.set_index(key).sort_index()
    assert left.index.equals(right.index)
    det = ~left.index.get_level_values("metric").str.endswith("_rtf")
    np.testing.assert_allclose(left.value[det], right.value[det])


def test_runs_on_postgresql(tmp_path):
    if not PG_URL:
        pytest.skip(NO_PG)
    with pg_schema_url() as url:
        frame = evalkit.run(write_experiment(tmp_path, name="pg", database=url))
        assert len(frame) == 3 * 2 * OUTPUTS and (frame.status == "ok").all()
        again = evalkit.run(write_experiment(tmp_path, name="pg", database=url))
    assert again.created_at.equals(frame.created_at)


def test_phoneme_events_are_stored_with_their_times(tmp_path):
    from evalkit.store import content_events_frame

    path = write_experiment(tmp_path, metrics=["phoneme"], limit=2, codecs=["reference", "opus-12k"])  # 6k: not judged
    frame = evalkit.run(path)
    assert (frame[frame.metric == "per"].status == "ok").all()
    exp = load_experiment(path)
    events = content_events_frame(connect(exp.database), "t")
    assert not events.empty and (events.end >= events.start).all()
    assert set(events.codec) <= {"reference", "opus-12k"}
    evalkit.run(path)  # a rerun computes nothing and keeps the events
    assert len(content_events_frame(connect(exp.database), "t")) == len(events)


class _LatePcm(Identity):
    """16-bit PCM that arrives 40 samples later than it declares: a codec card with a wrong latency."""

    backend = "test-late-pcm"

    def _decode(self, header, packets):
        return np.concatenate([np.zeros(40, np.float32), super()._decode(header, packets)])


def test_a_codec_whose_delay_disagrees_with_its_card_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(BACKENDS._entries, _LatePcm.backend, _LatePcm)  # registered for this test only
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "late.yaml").write_text("name: late\nbackend: test-late-pcm\nparams: {sample_rate: 16000}\n")
    path = write_experiment(tmp_path, cards=str(cards), codecs=["reference", "late"], metrics=["si_sdr"])
    assert main(["run", str(path)]) == 0
    checks = delay_check(roundtrips_frame(connect(load_experiment(path).database), "t")).set_index("codec")
    assert checks.loc["late", ["checked", "misaligned", "declared", "measured_median"]].tolist() == [3, 3, 0, 40]
    assert checks.loc["reference", "misaligned"] == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "late:" in warnings[0] and "3 of 3 items" in warnings[0]
    from evalkit.report.build import build_report
    from evalkit.report.methods import methods_section

    (table,) = [
        t
        for t in methods_section(build_report(connect(load_experiment(path).database), "t")).tables
        if t.id == "misaligned"
    ]
    assert [row[0].text for row in table.rows] == ["late"]


def test_run_in_this_process_starts_no_worker_server(tmp_path, capsys, monkeypatch):
    """`workers: 0` in the experiment runs every task in the command's own process: the server
    workers are forked from is not started for nothing (it imports the scoring stack)."""
    from multiprocessing import forkserver

    started = []
    monkeypatch.setattr(forkserver, "ensure_running", lambda: started.append("fork server"))
    path = write_experiment(tmp_path, codecs=["reference"], metrics=["si_sdr"], limit=1)
    assert main(["run", str(path)]) == 0
    assert started == []


SCRIPT = """
import os, sys
from pathlib import Path
Path(sys.argv[1], f"ran-{os.getpid()}").touch()
if __name__ == "__main__":
    from evalkit.experiment import load_experiment
    from evalkit.runner import run_experiment
    frame = run_experiment(load_experiment(sys.argv[2]), progress=False)
    print((frame.status == "ok").sum())
"""


def test_workers_do_not_rerun_the_script_that_started_the_run(tmp_path):
    """A script calling run_experiment is the driver's main module; workers run evalkit's own
    functions and must not import it again (its imports, or worse its side effects, once per worker)."""
    script, marks = tmp_path / "score.py", tmp_path / "marks"
    script.write_text(SCRIPT)
    marks.mkdir()
    path = write_experiment(tmp_path, workers=2, codecs=["reference"], metrics=["si_sdr"], limit=2)
    done = subprocess.run(
        [sys.executable, str(script), str(marks), str(path)], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) == 2 * (1 + len(COST_METRICS))
    assert len(list(marks.iterdir())) == 1  # the driver's own run of the script, no worker's


def _peak(ref, deg, rate):
    return float(abs(deg).max())


_peak.__module__ = "__main__"  # as if defined in a notebook or the script being run


def test_a_metric_defined_in_main_is_refused_before_work_when_workers_run_it(tmp_path, monkeypatch):
    from evalkit.metrics import METRICS as registry
    from evalkit.metrics import Metric, MetricSpec

    spec = MetricSpec("nb_peak", "1", True, False, None, 0.0, None, ("nb_peak",), "peak of the degraded signal")
    monkeypatch.setitem(registry._entries, "nb_peak", Metric(spec, _peak))
    path = write_experiment(tmp_path, metrics=["nb_peak"], codecs=["reference"], limit=1)
    with pytest.raises(ConfigError, match=r"^metric 'nb_peak' is defined in __main__.*workers=0"):
        evalkit.run(path, workers=2)
    assert not (tmp_path / "db.sqlite").exists() or rows(path).empty
    frame = evalkit.run(path, workers=0)  # in this process it can run
    assert frame[frame.metric == "nb_peak"].status.tolist() == ["ok"]


def test_progress_into_a_log_file_is_a_line_every_few_seconds_not_a_redrawn_bar(capsys, monkeypatch):
    import evalkit.runner as runner

    clock = iter([0.0, 1.0, 4.0, 10.5, 11.0, 30.0])
    monkeypatch.setattr(runner.time, "monotonic", lambda: next(clock))
    bar = runner._progress(8, "exp", enabled=True)  # capsys: stderr is not a terminal
    for _ in range(4):
        bar.update(1)
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert "\r" not in "".join(lines)
    assert lines == [
        "exp: 0/8 tasks (0 %), 0 s elapsed",
        "exp: 3/8 tasks (38 %), 10 s elapsed, about 18 s left",  # at most one line per 10 s
        "exp: 4/8 tasks (50 %), 30 s elapsed, about 30 s left",
    ]


def test_audio_a_dataset_folder_holds_in_formats_evalkit_does_not_read_is_a_warning(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    save(Audio(0.1 * np.random.default_rng(0).standard_normal(16000), 16000), data / "a.wav")
    (data / "b.mp3").write_bytes(b"ID3 not read")
    (data / "sub" / "c.M4A").write_bytes(b"not read")
    (data / "notes.txt").write_text("not audio: no warning")
    frame = evalkit.run(write_experiment(tmp_path, dataset=str(data), limit=None, codecs=["reference"]))
    assert set(frame.item_id) == {"a"}
    (warning,) = frame.attrs["warnings"].values()
    assert warning["text"].startswith("the dataset folder holds 2 audio file(s) evalkit does not read (.m4a, .mp3)")
    assert warning["items"] == ["b.mp3", "sub/c.M4A"]

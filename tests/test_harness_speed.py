"""What the faster harness must keep: the same lags, the same rows, warm speeds, row keys that
follow the settings that change what is scored, and no run left behind by a failed set-up."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from scipy.signal import butter, sosfiltfilt

import evalkit
from evalkit import runner
from evalkit.alignment import estimate_lag
from evalkit.audio import Audio, correlation_peak, load
from evalkit.cache import DecodedCache
from evalkit.cards import find_card
from evalkit.demo_pipeline import DEMO_MANIFEST, codec_summary, warm_codec
from evalkit.errors import EvalkitError
from evalkit.experiment import load_experiment
from evalkit.harness import roundtrip
from evalkit.report.data import list_runs
from evalkit.store import connect, results_frame, roundtrips_frame
from evalkit.tasks import _codec


def write_experiment(tmp_path, **overrides):
    config = {
        "name": "t",
        "dataset": str(DEMO_MANIFEST),
        "limit": 2,
        "workers": 0,
        "codecs": ["reference", "g722-64k"],
        "metrics": ["si_sdr"],
        "database": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "cache": str(tmp_path / "cache"),
        **overrides,
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def filtfilt_lag(ref: Audio, deg: Audio, max_lag: int) -> int:
    """The lag as the estimator found it before: both signals high-passed by sosfiltfilt."""
    sos = butter(4, 250.0, "highpass", fs=ref.sample_rate, output="sos")
    a, b = (x.with_samples(sosfiltfilt(sos, x.samples[0].astype(np.float64))) for x in (ref, deg))
    return correlation_peak(a, b, max_lag)[0]


@pytest.mark.parametrize("codec, shift", [("opus-12k", 0), ("amr-wb-12k65", 37), ("g726-16k", -12), ("g711-alaw", 5)])
def test_frequency_domain_highpass_finds_the_lag_filtfilt_found(speech, codec, shift):
    decoded = roundtrip(find_card(codec).build(), speech).decoded
    moved = decoded.with_samples(np.roll(decoded.samples, shift, axis=1))
    found = estimate_lag(speech, moved, 8000, "waveform")
    assert found.lag == filtfilt_lag(speech, moved, 8000) == shift
    assert found.correlation > 0.5


def test_identical_samples_have_no_lag_without_a_search(speech):
    same = speech.with_samples(speech.samples.copy())
    found = estimate_lag(speech, same, 8000, "auto")
    assert (found.lag, found.correlation, found.method) == (0, 1.0, "waveform")


def test_a_codec_at_the_item_rate_gets_its_delay_checked_by_the_alignment(tmp_path):
    frame = evalkit.run(write_experiment(tmp_path, codecs=["opus-12k", "amr-nb-12k2"]))
    trips = roundtrips_frame(connect(f"sqlite:///{tmp_path / 'db.sqlite'}"), "t")
    assert (frame.status == "ok").all()
    # opus-12k runs at the items' 16 kHz: one estimate per pair, its delay as declared;
    # AMR-NB runs at 8 kHz: the harness measures it at that rate, as before.
    for codec in ("opus-12k", "amr-nb-12k2"):
        rows = trips[trips.codec == codec]
        assert rows.measured_delay.notna().all()
        assert ((rows.measured_delay - rows.declared_delay).abs() <= rows.delay_tolerance).all(), codec


def test_cached_audio_is_not_written_again(tmp_path):
    evalkit.run(write_experiment(tmp_path))
    files = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*.wav")}
    assert len(files) == 4
    evalkit.run(write_experiment(tmp_path, name="other"))  # a new run: every round trip again
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*.wav")} == files
    audio = DecodedCache(tmp_path / "cache").get(next(iter(files)).stem)
    assert audio is not None and audio.samples.dtype == np.float32


def test_codecs_are_built_once_per_process_and_warm(speech):
    card = find_card("g722-64k")
    assert _codec(card, speech) is _codec(card, speech)
    item_rate = find_card("reference")
    assert _codec(item_rate, speech) is not _codec(item_rate, speech.with_samples(speech.samples, 8000))


def test_the_demo_table_times_warm_codecs_and_shows_loading_apart(speech):
    codec, seconds = warm_codec(find_card("g722-64k"), speech)
    row = codec_summary(find_card("g722-64k"), [roundtrip(codec, speech)], seconds)
    assert len(row) == 12 and float(row[-1]) == pytest.approx(seconds, abs=0.01)
    assert float(row[-3]) < 1 and float(row[-2]) < 1  # warm real-time factors of a DSP codec


def test_default_settings_keep_the_cards_own_hash(tmp_path):
    exp = load_experiment(write_experiment(tmp_path))
    assert runner.row_hash("abc", exp) == "abc"
    changed = [
        load_experiment(write_experiment(tmp_path, downmix=True)),
        load_experiment(write_experiment(tmp_path, alignment={"max_lag_ms": 100})),
    ]
    hashes = {runner.row_hash("abc", e) for e in changed}
    assert len(hashes) == 2 and "abc" not in hashes


def test_switching_a_setting_back_finds_the_earlier_rows(tmp_path):
    first = evalkit.run(write_experiment(tmp_path))
    evalkit.run(write_experiment(tmp_path, alignment={"max_lag_ms": 100}))
    path = write_experiment(tmp_path)
    assert runner.plan(load_experiment(path), _done(tmp_path)) == []
    assert len(results_frame(connect(f"sqlite:///{tmp_path / 'db.sqlite'}"), "t")) == 2 * len(first)


def _done(tmp_path):
    from evalkit.store import done_keys

    return done_keys(connect(f"sqlite:///{tmp_path / 'db.sqlite'}"), "t")


def test_a_run_that_fails_after_it_was_created_is_removed_but_an_earlier_one_is_kept(tmp_path, monkeypatch):
    engine = connect(f"sqlite:///{tmp_path / 'db.sqlite'}")

    def broken(*args, **kwargs):
        raise EvalkitError("planning failed")

    monkeypatch.setattr(runner, "plan", broken)
    with pytest.raises(EvalkitError, match="planning failed"):
        evalkit.run(write_experiment(tmp_path))
    assert list_runs(engine) == []
    monkeypatch.undo()
    rows = evalkit.run(write_experiment(tmp_path))
    monkeypatch.setattr(runner, "plan", broken)
    with pytest.raises(EvalkitError):
        evalkit.run(write_experiment(tmp_path))
    assert list_runs(engine) == ["t"] and len(results_frame(engine, "t")) == len(rows)


def test_rows_are_written_in_batches_yet_all_arrive(tmp_path, monkeypatch):
    writes = []
    original = runner.write_batch

    def counted(engine, trips, rows):
        writes.append(len(rows))
        return original(engine, trips, rows)

    monkeypatch.setattr(runner, "write_batch", counted)
    monkeypatch.setattr(runner, "BATCH_SECONDS", 3600.0)
    frame = evalkit.run(write_experiment(tmp_path, limit=4))
    assert writes == [len(frame)] == [4 * 2 * 4]  # one commit for the 8 tasks, at the end


def test_the_benchmark_clips_are_distinct_real_speech(tmp_path):
    import sys

    sys.path.insert(0, str(DEMO_MANIFEST.parent.parent.parent / "benchmarks"))
    from bench_harness import speech_clips

    manifest = speech_clips(tmp_path / "clips", 30)
    clips = [load(p) for p in sorted((tmp_path / "clips").glob("*.wav"))]
    assert manifest.is_file() and len(clips) == 30
    assert all(c.sample_rate == 16000 and abs(c.duration - 2.6) < 1e-3 for c in clips)
    digests = {c.samples.tobytes() for c in clips}
    assert len(digests) == 30

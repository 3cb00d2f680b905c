"""Rate awareness: the reference follows each item's rate, bandwidth is measured, and mismatches are stored warnings."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from conftest import white_noise
from scipy.signal import butter, sosfilt

import evalkit
from evalkit.audio import resample, save
from evalkit.metrics import METRICS
from evalkit.rates import audio_bandwidth, rate_warnings
from evalkit.store import connect, run_warnings

RATES = (8000, 16000, 24000, 44100, 48000)


def run(tmp_path, codecs, metrics, items):
    data = tmp_path / "data"
    data.mkdir()
    for name, audio in items.items():
        save(audio, data / f"{name}.wav")
    config = {
        "name": "r",
        "dataset": str(data),
        "workers": 0,
        "codecs": codecs,
        "metrics": metrics,
        "database": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "cache": str(tmp_path / "cache"),
    }
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(config))
    return evalkit.run(tmp_path / "exp.yaml")


@pytest.mark.slow
def test_the_identity_reference_scores_its_maximum_at_every_rate(tmp_path, speech):
    frame = run(
        tmp_path,
        ["reference"],
        ["pesq_wb", "stoi", "visqol_audio"],
        {f"s{rate}": resample(speech, rate) for rate in RATES},
    )
    values = frame.pivot_table(index="item_id", columns="metric", values="value")
    assert (frame.status == "ok").all()
    assert (values["pesq_wb"] > 4.64).all() and (values["stoi"] > 0.9999).all()
    assert (values["visqol_audio"] > 4.73).all()  # 4.29 and 2.07 at 48 kHz when the reference was 16 kHz
    for rate in RATES:  # 16-bit PCM at the item's own rate
        assert values.loc[f"s{rate}", "bitrate_kbps"] == pytest.approx(16 * rate / 1000)


def test_a_card_below_the_items_rate_is_a_stored_warning(tmp_path, speech):
    frame = run(
        tmp_path,
        ["reference", "opus-12k"],
        ["si_sdr"],
        {"wide": resample(speech, 48000), "narrow": resample(speech, 16000)},
    )
    stored = run_warnings(connect(f"sqlite:///{tmp_path / 'db.sqlite'}"), "r")
    assert frame.attrs["warnings"] == stored
    (rate,) = [w for k, w in stored.items() if k.startswith("rate:")]
    assert rate["items"] == ["wide"] and "opus-12k works at 16000 Hz, below the items' 48000 Hz" in rate["text"]


def test_bandwidth_is_measured_not_read_from_the_rate(speech):
    assert 7000 < audio_bandwidth(speech) <= 8000
    assert 7000 < audio_bandwidth(resample(speech, 48000)) <= 8100  # a 16 kHz recording in a 48 kHz file
    assert 3500 < audio_bandwidth(resample(resample(speech, 8000), 44100)) <= 4100
    assert audio_bandwidth(white_noise(1.0, 48000)) > 20000


def fullband(speech):
    """Speech at 48 kHz with an air band up to 20 kHz, as a fullband recording has."""
    wide = resample(speech, 48000)
    sos = butter(8, [9000, 20000], btype="bandpass", fs=48000, output="sos")
    air = sosfilt(sos, white_noise(wide.duration + 1, 48000, seed=2).samples[0, : wide.frames])
    return wide.with_samples(wide.samples[0] + 0.01 * air)


def test_a_metric_mode_that_does_not_fit_the_content_is_named(speech):
    bands = {name: METRICS.get(name).spec.bandwidth_hz for name in ("visqol_speech", "visqol_audio")}
    wide = rate_warnings("w", fullband(speech), 48000, "reference", bands)
    assert [w["key"] for w in wide] == ["bandwidth:visqol_speech:wider"]
    narrow = rate_warnings("n", resample(speech, 48000), 48000, "reference", bands)
    assert [w["key"] for w in narrow] == ["bandwidth:visqol_audio:narrower"]
    assert "10 to 24 kHz" in narrow[0]["text"] and "7.8 kHz" in narrow[0]["text"]
    assert rate_warnings("x", speech, 16000, "reference", {}) == []  # no mode to fit, no warning


def test_an_item_rate_card_costs_its_rate(speech):
    from evalkit.cards import find_card
    from evalkit.harness import roundtrip

    card = find_card("reference")
    for rate in (8000, 44100):
        audio = resample(speech, rate)
        trip = roundtrip(card.build(rate), audio)
        assert trip.bitrate == pytest.approx(16 * rate) and np.allclose(
            trip.decoded.samples, audio.samples, atol=2**-15
        )


def test_run_warnings_join_their_items_on_every_backend(engine):
    from evalkit.store import add_run_warnings, ensure_run

    ensure_run(engine, "w", {}, "0.1.0")
    add_run_warnings(engine, "w", {"k": {"text": "first", "items": ["b", "a"]}})
    add_run_warnings(engine, "w", {"k": {"text": "second", "items": ["c", "a"]}, "j": {"text": "other", "items": []}})
    assert run_warnings(engine, "w") == {
        "k": {"text": "second", "items": ["a", "b", "c"]},
        "j": {"text": "other", "items": []},
    }

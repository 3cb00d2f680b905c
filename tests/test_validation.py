"""Validation: evalkit's scores equal the packages' own, ViSQOL meets upstream conformance,
and every quality metric ranks clean > 20 > 10 > 0 dB SNR, with the identity codec best."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evalkit.audio import Audio, load, resample
from evalkit.cards import find_card
from evalkit.harness import roundtrip
from evalkit.metrics import METRICS, evaluate
from evalkit.signals import add_noise

FIXTURE = Path(__file__).parent / "fixtures" / "visqol"


@pytest.fixture(scope="module")
def opus_pair(speech):
    """Reference and aligned Opus 12 kbit/s output: a realistic pair to score."""
    return speech, roundtrip(find_card("opus-12k").build(), speech).decoded


def _value(name: str, ref: Audio, deg: Audio) -> float:
    (row,) = evaluate(name, ref, deg)
    assert row.status == "ok", row.reason
    return row.value


def test_pesq_equals_the_package(opus_pair):
    from pesq import pesq

    ref, deg = opus_pair
    direct = pesq(16000, ref.samples[0].astype(np.float64), deg.samples[0].astype(np.float64), "wb")
    assert _value("pesq_wb", ref, deg) == pytest.approx(direct, abs=1e-6)
    ref8, deg8 = resample(ref, 8000), resample(deg, 8000)
    direct = pesq(8000, ref8.samples[0].astype(np.float64), deg8.samples[0].astype(np.float64), "nb")
    assert _value("pesq_nb", ref, deg) == pytest.approx(direct, abs=1e-6)


def test_stoi_equals_the_package(opus_pair):
    from pystoi import stoi

    ref, deg = opus_pair
    assert _value("stoi", ref, deg) == pytest.approx(stoi(ref.samples[0], deg.samples[0], 16000), abs=1e-6)
    assert _value("estoi", ref, deg) == pytest.approx(
        stoi(ref.samples[0], deg.samples[0], 16000, extended=True), abs=1e-6
    )


def test_visqol_speech_equals_the_package(opus_pair):
    """evalkit's ViSQOL instance converts the voice-activity input with numpy; the score must be
    exactly the unmodified package's."""
    from visqol import VisqolApi

    ref, deg = opus_pair
    upstream = VisqolApi()
    upstream.create(mode="speech", use_lattice_model=True)
    direct = upstream.measure_from_arrays(ref.samples[0], deg.samples[0], 16000).moslqo
    assert _value("visqol_speech", ref, deg) == direct


@pytest.mark.parametrize("signal", ["speech", "loud_noise", "clipped", "quiet", "ragged"])
def test_vectorised_voice_activity_equals_upstream(signal, speech):
    from visqol.audio_utils import AudioSignal
    from visqol.patch_creator import VadPatchCreator

    from evalkit.metrics.perceptual import _visqol

    rng = np.random.default_rng(7)
    data = {
        "speech": speech.samples[0].astype(np.float64),
        "loud_noise": rng.normal(0, 0.5, 40000),
        "clipped": np.clip(rng.normal(0, 2.0, 40000), -1.5, 1.5),  # beyond full scale: clamped
        "quiet": rng.normal(0, 0.01, 40000),  # below the RMS threshold: silent frames
        "ragged": rng.normal(0, 0.3, 40000 + 77),  # a trailing partial frame is dropped
    }[signal]
    vectorised = _visqol("speech")._manager.patch_creator
    assert type(vectorised) is not VadPatchCreator
    audio = AudioSignal(data, 16000)
    for start, total in [(0, len(data)), (9, len(data) - 500), (0, len(data) + 1000)]:
        expected = VadPatchCreator(vectorised.patch_size)._get_voice_activity(audio, start, total, 256)
        assert vectorised._get_voice_activity(audio, start, total, 256) == expected


@pytest.mark.slow
@pytest.mark.parametrize(
    "degraded, expected",
    [("transcoded_CA01_01.wav", 3.3129234313964844), ("CA01_01.wav", 4.505550384521484)],
)
def test_visqol_speech_meets_upstream_conformance(degraded, expected):
    ref, deg = load(FIXTURE / "CA01_01.wav"), load(FIXTURE / degraded)
    score = METRICS.get("visqol_speech")(ref.samples[0], deg.samples[0], ref.sample_rate)
    assert score == pytest.approx(expected, abs=0.01)


@pytest.mark.slow
def test_visqol_audio_identity_meets_upstream_conformance():
    ref = load(FIXTURE / "CA01_01.wav")
    assert METRICS.get("visqol_audio")(ref.samples[0], ref.samples[0], 48000) == pytest.approx(4.7321, abs=0.01)


QUALITY = ["pesq_wb", "pesq_nb", "stoi", "estoi", "visqol_audio", "warpq", "si_sdr", "lsd", "mcd", "dnsmos"]


@pytest.mark.slow
@pytest.mark.parametrize("name", QUALITY)
def test_quality_ranks_clean_above_falling_snr(name, speech):
    spec = METRICS.get(name).spec
    scores = []
    for snr in (None, 20, 10, 0):
        deg = speech if snr is None else add_noise(speech, snr, seed=1)
        rows = evaluate(name, speech, deg)
        row = next(r for r in rows if r.metric in (name, "dnsmos_ovrl"))
        assert row.status == "ok", row.reason
        scores.append(row.value if spec.higher_is_better else -row.value)
    assert scores == sorted(scores, reverse=True), scores


@pytest.mark.slow
def test_identity_codec_scores_best(speech):
    codecs = ["reference", "g722-64k", "opus-12k", "amr-nb-12k2"]
    outputs = {name: roundtrip(find_card(name).build(), speech).decoded for name in codecs}
    for metric in ("pesq_wb", "stoi", "si_sdr"):
        scores = {name: _value(metric, speech, out) for name, out in outputs.items()}
        assert max(scores, key=scores.get) == "reference", (metric, scores)

"""Alignment: lag and length change recovered exactly, limits enforced, one estimator for every caller."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import white_noise

from evalkit.alignment import AlignPolicy, align_pair, estimate_lag
from evalkit.audio import Audio, resample
from evalkit.cards import find_card
from evalkit.datasets import load_dataset
from evalkit.demo_pipeline import DEMO_MANIFEST
from evalkit.errors import ConfigError
from evalkit.harness import delay_tolerance, measure_delay, roundtrip
from evalkit.metrics import evaluate


def shifted(ref: Audio, lag: int, tail: int) -> Audio:
    """`ref` arriving `lag` samples late (early if negative), then `tail` samples longer (shorter)."""
    x = ref.samples[0]
    x = np.concatenate([np.zeros(lag, np.float32), x]) if lag >= 0 else x[-lag:]
    x = np.concatenate([x, np.zeros(tail, np.float32)]) if tail >= 0 else x[:tail]
    return ref.with_samples(x)


@pytest.mark.parametrize(
    "lag, tail", [(0, 0), (1, 0), (9, 0), (800, -800), (-37, 0), (4000, 2000), (-400, -2400), (160, 7000)]
)
@pytest.mark.parametrize("signal", ["speech", "noise"])
def test_lag_and_length_change_are_recovered_exactly(speech, signal, lag, tail):
    ref = speech if signal == "speech" else white_noise(3.0, seed=5)
    deg = shifted(ref, lag, tail)
    pair = align_pair(ref, deg)
    assert pair.alignment.problem is None
    assert (pair.alignment.lag, pair.alignment.length_change) == (lag, deg.frames - ref.frames)
    # aligned and trimmed to the span both share: sample for sample the same audio
    np.testing.assert_array_equal(pair.ref.samples, pair.deg.samples)
    assert pair.ref.frames == min(ref.frames - max(0, -lag), deg.frames - max(0, lag))


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_lag_is_recovered_at_the_reference_rate_when_the_file_has_another(speech, rate):
    deg = resample(shifted(speech, 480, 320), rate)
    pair = align_pair(speech, deg)
    assert pair.alignment.lag == pytest.approx(480, abs=0 if rate % 16000 == 0 else 1)
    assert pair.alignment.length_change == pytest.approx(800, abs=1)
    assert pair.deg.sample_rate == 16000


def test_a_late_file_scores_like_an_aligned_one_and_says_by_how_much(speech):
    late = shifted(speech, 800, -800)  # 50 ms late, same length: once scored as misaligned, silently
    (row,) = evaluate("stoi", speech, late)
    (aligned,) = evaluate("stoi", speech, speech)
    assert row.status == "ok" and row.value > 0.98 and aligned.value > 0.99
    assert (row.lag, row.length_change) == (800, 0)
    (unaligned,) = evaluate("stoi", speech, late, align=None)
    assert unaligned.value < 0.8


def test_an_unrelated_file_fails_unless_the_metric_aligns_itself():
    items = load_dataset(DEMO_MANIFEST)
    ref, other = items[0].load(), items[2].load()
    other = other.with_samples(other.samples[:, : ref.frames])
    (stoi,) = evaluate("stoi", ref, other)
    assert stoi.status == "failed" and "alignment unreliable" in stoi.reason and "this item" in stoi.reason
    (as_given,) = evaluate("si_sdr", ref, other, align=None)
    assert as_given.status == "ok"  # scored as given when the caller asks for it


@pytest.mark.slow
def test_warpq_scores_an_unreliable_pair_as_given(speech):
    noise = white_noise(3.0, seed=9, amplitude=0.05)
    (row,) = evaluate("warpq", speech, noise)
    assert row.status == "ok"


def test_policy_limits_name_the_knob(speech):
    pair = align_pair(speech, shifted(speech, 1200, -1200), AlignPolicy(max_lag_ms=50))
    assert "max_lag_ms" in pair.alignment.problem
    pair = align_pair(speech, shifted(speech, 0, speech.frames // 2), AlignPolicy(max_length_change=0.25))
    assert "max_length_change 25%" in pair.alignment.problem
    assert align_pair(speech, shifted(speech, 0, speech.frames // 8)).alignment.problem is None


@pytest.mark.parametrize(
    "config, key",
    [
        ({"max_lag_ms": -1}, "max_lag_ms"),
        ({"min_correlation": 2}, "min_correlation"),
        ({"max_lag": 5}, "unknown key"),
        ("loose", "mapping"),
        ({"max_length_change": True}, "max_length_change"),
    ],
)
def test_policy_config_is_checked(config, key):
    with pytest.raises(ConfigError, match=key):
        AlignPolicy.from_config(config, "exp.yaml")


def test_a_silent_signal_is_not_aligned_and_left_to_the_metrics(speech):
    silent = speech.with_samples(np.zeros_like(speech.samples))
    pair = align_pair(speech, silent)
    assert (pair.alignment.method, pair.alignment.problem, pair.alignment.lag) == ("none", None, 0)


@pytest.mark.parametrize("card", ["opus-12k", "amr-nb-7k95", "codec2-3200"])
def test_the_codec_delay_check_and_the_scoring_use_one_estimator(speech, card):
    codec = find_card(card).build()
    info = codec.info
    native = resample(speech, info.sample_rate)
    decoded = codec.decode(codec.encode(native))
    mode = "waveform" if info.waveform_matching else "envelope"
    estimate = estimate_lag(native, decoded, max(2 * info.lookahead_samples, info.sample_rate // 20), mode)
    assert measure_delay(native, decoded, info.lookahead_samples, info.waveform_matching) == estimate.lag
    # after the harness applied the declared delay, a measurement within tolerance keeps it
    out = roundtrip(codec, speech).decoded
    pair = align_pair(speech, out, mode=mode, expected=0, tolerance=delay_tolerance(info, 16000))
    assert (pair.alignment.lag, pair.alignment.method) == (0, "declared")


def test_the_frequency_domain_highpass_equals_filtering_both_signals_in_time(speech):
    """The weighted correlation is the one of both signals run through the zero-phase Butterworth
    high-pass (sosfiltfilt): same peak, same normalised height."""
    from scipy.signal import butter, sosfiltfilt

    from evalkit.alignment import HIGHPASS_HZ, _highpass_power
    from evalkit.audio import correlation_peak

    ref = speech
    deg = shifted(ref, 37, 0)
    deg = deg.with_samples(
        deg.samples + 0.3 * white_noise(deg.duration, deg.sample_rate, seed=5).samples[:, : deg.frames]
    )
    sos = butter(4, HIGHPASS_HZ, "highpass", fs=ref.sample_rate, output="sos")
    filtered = [a.with_samples(sosfiltfilt(sos, a.samples[0]).astype(np.float32)) for a in (ref, deg)]
    lag, height = correlation_peak(ref, deg, 400, _highpass_power(ref.sample_rate))
    lag_time, height_time = correlation_peak(*filtered, 400)
    assert lag == lag_time == 37
    assert height == pytest.approx(height_time, abs=0.01)

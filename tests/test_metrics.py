"""Metrics: properties (worse with noise, best when identical), goldens, failure rows, one contract."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from conftest import sinusoid, white_noise

import evalkit.metrics.wrapper as wrapper
from evalkit.audio import Audio, load
from evalkit.metrics import METRICS, Metric, MetricSpec, choose_rate, evaluate
from evalkit.registry import Registry

AVAILABLE = [name for name in METRICS.names() if METRICS.get(name).unavailable() is None]
# Metrics whose weights the user provides by path: unavailable here until the path is set.
LOCAL_WEIGHTS = [name for name in METRICS.names() if METRICS.get(name).spec.weights_env]
SLOW = {
    "dnsmos",
    "dnsmos_personalized",
    "plcmos",
    "speaker_similarity",
    "asr_mismatch",
    "wer",
    "phoneme",
    "visqol_audio",
    "visqol_speech",
    "warpq",
}  # about a second or more per call here
# What the `speech` fixture (arctic_a0007, first 3 of 4 s) says, for metrics that use the text.
SPEECH_TEXT = "And you always want to see it in the superlative degree."


def with_slow_marks(names: list[str]) -> list:
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in names]


# SNR ladders for the "worse with more noise" property. ViSQOL speech's lattice mapper is
# already at its 1.0 floor by ~20 dB white-noise SNR (and not monotonic below it), so it
# is checked where it still discriminates.
# PLCMOS rates concealment, not noise: it falls with white noise down to ~10 dB SNR and rises
# again below. Personalised DNSMOS's signal score moves little between 40 and 10 dB.
SNR_LADDER = {"visqol_speech": (40, 30, 20), "plcmos": (40, 30, 20), "dnsmos_personalized": (40, 5, 0)}
DEFAULT_LADDER = (30, 10, 0)

# Frozen on CMU ARCTIC arctic_a0007 (first 3 s, 16 kHz) + white_noise(seed=0) at 10 and 30 dB
# SNR (PESQ-WB is near its floor at 10 dB; ViSQOL speech is on it). (value, tolerance).
GOLDEN_10DB = {
    "pesq_wb": (1.0846, 0.01),
    "pesq_nb": (1.8292, 0.01),
    "stoi": (0.9145, 0.002),
    "estoi": (0.7036, 0.002),
    "si_sdr": (9.99, 0.02),
    "lsd": (24.609, 0.05),
    "mcd": (5.248, 0.05),
    "mcd_dtw": (5.219, 0.05),
    "f0_rmse_cents": (73.70, 1.0),
    "f0_corr": (0.9533, 0.005),
    "vde": (0.0767, 0.005),
    "speaker_similarity": (0.6837, 0.01),
    "plcmos": (2.3793, 0.03),
    "pdnsmos_ovrl": (2.2877, 0.03),
    "warpq": (2.741, 0.02),
    "visqol_audio": (2.6395, 0.02),
    "dnsmos_ovrl": (2.0448, 0.03),
    "dnsmos_sig": (3.3822, 0.03),
    "dnsmos_bak": (1.9744, 0.03),
    "dnsmos_p808": (2.6325, 0.03),
}
GOLDEN_30DB = {"pesq_wb": (2.4024, 0.01), "pesq_nb": (3.6994, 0.01), "visqol_speech": (1.9351, 0.02)}


def noisy(clean: Audio, snr_db: float, seed: int = 0) -> Audio:
    """`clean` plus white noise scaled to `snr_db` (powers over the whole clip)."""
    x = clean.samples.astype(np.float64)
    noise = white_noise(clean.duration + 1, clean.sample_rate, seed).samples[:, : clean.frames].astype(np.float64)
    noise *= math.sqrt(np.mean(x**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return clean.with_samples(x + noise)


def scores(name: str, ref: Audio | None, deg: Audio) -> dict[str, float | None]:
    return {r.metric: r.value for r in evaluate(name, ref, deg, text=SPEECH_TEXT)}


def only(name: str, ref: Audio | None, deg: Audio):
    rows = evaluate(name, ref, deg)
    assert len(rows) == 1
    return rows[0]


@pytest.fixture(scope="session")
def arctic() -> Audio:
    """A fixed clip for goldens (the `speech` fixture follows whatever data/demo holds)."""
    import pysptk

    audio = load(Path(pysptk.__file__).parent / "example_audio_data" / "arctic_a0007.wav")
    return audio.with_samples(audio.samples[:, : 3 * 16000])


@pytest.fixture
def patched_registry(monkeypatch) -> Registry:
    """A private registry that evaluate() uses for the duration of one test."""
    registry = Registry("metric", "evalkit.tests.no-plugins")
    monkeypatch.setattr(wrapper, "METRICS", registry)
    return registry


def toy_spec(**changes) -> MetricSpec:
    fields = dict(
        name="toy",
        version="1",
        higher_is_better=True,
        needs_reference=True,
        sample_rates=None,
        min_duration=0.1,
        package=None,
        outputs=("toy",),
        description="test metric",
    )
    return MetricSpec(**{**fields, **changes})


# ---------------------------------------------------------------- properties


@pytest.mark.parametrize("name", with_slow_marks(AVAILABLE))
def test_worse_as_snr_drops(name, speech):
    spec = METRICS.get(name).spec
    ref = speech if spec.needs_reference else None
    ladder = [scores(name, ref, noisy(speech, snr)) for snr in SNR_LADDER.get(name, DEFAULT_LADDER)]
    for output in (o for o in spec.outputs if o not in spec.noise_blind):
        values = [row[output] for row in ladder]
        assert all(v is not None for v in values), (output, values)
        ordered = values if spec.direction(output) else [-v for v in values]
        assert ordered == sorted(ordered, reverse=True) and ordered[0] > ordered[-1], (output, values)


@pytest.mark.parametrize(
    "name, low, high",
    [
        ("pesq_wb", 4.6, 4.65),
        ("pesq_nb", 4.5, 4.56),
        ("stoi", 0.999, 1.0),
        ("estoi", 0.999, 1.0),
        ("si_sdr", 150, 160),
        ("lsd", 0, 1e-6),
        ("mcd", 0, 1e-6),
        ("visqol_speech", 4.5, 5),
        ("visqol_audio", 4.5, 5),
    ],
)
def test_identical_input_gives_the_best_value(name, low, high, speech):
    row = only(name, speech, speech)
    assert row.status == "ok" and low <= row.value <= high, row


def test_warpq_identical_beats_mild_noise(speech):
    # WARP-Q's banded subsequence DTW does not reach 0 for identical input; it must still win.
    assert only("warpq", speech, speech).value < only("warpq", speech, noisy(speech, 40)).value


def test_multichannel_fails_unless_downmixed_as_on_the_command_line(speech):
    deg = noisy(speech, 20)
    stereo = deg.with_samples(np.vstack([deg.samples, deg.samples]))
    row = only("stoi", speech, stereo)
    assert row.status == "failed" and "2 channels" in row.reason and "downmix" in row.reason
    mixed = evaluate("stoi", speech, stereo, downmix=True)[0]
    assert mixed.value == pytest.approx(only("stoi", speech, deg).value)


# ---------------------------------------------------------------- goldens


@pytest.mark.parametrize("output", sorted(GOLDEN_10DB))
def test_golden_10db(output, arctic):
    name = next(n for n in METRICS.names() if output in METRICS.get(n).spec.outputs)
    expected, tol = GOLDEN_10DB[output]
    assert scores(name, arctic, noisy(arctic, 10))[output] == pytest.approx(expected, abs=tol)


@pytest.mark.parametrize("name", sorted(GOLDEN_30DB))
def test_golden_30db(name, arctic):
    expected, tol = GOLDEN_30DB[name]
    assert only(name, arctic, noisy(arctic, 30)).value == pytest.approx(expected, abs=tol)


# ---------------------------------------------------------------- rates and lengths


@pytest.mark.parametrize(
    "rate, accepted, chosen",
    [
        (16000, (8000,), 8000),
        (8000, (16000,), 16000),
        (16000, (16000, 48000), 16000),
        (44100, (16000, 48000), 48000),
        (96000, (16000, 48000), 48000),
        (22050, None, 22050),
    ],
)
def test_choose_rate(rate, accepted, chosen):
    assert choose_rate(rate, accepted) == chosen


def test_rates_are_recorded(speech):
    row = only("pesq_nb", speech, noisy(speech, 20))
    assert (row.native_rate, row.metric_rate, row.status) == (16000, 8000, "ok")


def test_small_length_difference_is_trimmed(speech):
    deg = noisy(speech, 20)
    shorter = deg.with_samples(deg.samples[:, : int(deg.frames * 0.995)])
    assert only("si_sdr", speech, shorter).status == "ok"


def test_length_change_is_aligned_recorded_and_bounded(speech):
    deg = noisy(speech, 20)
    shorter = deg.with_samples(deg.samples[:, : int(deg.frames * 0.95)])
    row = only("pesq_wb", speech, shorter)
    assert row.status == "ok" and (row.lag, row.length_change) == (0, shorter.frames - speech.frames)
    unaligned = evaluate("pesq_wb", speech, shorter, align=None)[0]
    assert unaligned.status == "failed" and "differ by 5.0%" in unaligned.reason
    cut = deg.with_samples(deg.samples[:, : deg.frames // 2])
    row = only("pesq_wb", speech, cut)
    assert row.status == "failed" and "max_length_change" in row.reason


# ---------------------------------------------------------------- failure rows


def test_too_short_is_skipped(speech):
    clip = speech.with_samples(speech.samples[:, : int(0.8 * speech.sample_rate)])
    row = only("pesq_wb", clip, clip)
    assert row.status == "skipped" and row.value is None
    assert row.reason == "0.80 s is shorter than pesq_wb's minimum 1 s"


def test_missing_reference_is_skipped(speech):
    row = only("stoi", None, speech)
    assert row.status == "skipped" and "needs a reference" in row.reason


@pytest.mark.parametrize("name", [n for n in AVAILABLE if not METRICS.get(n).spec.scores_silence])
def test_silent_degraded_fails(name, speech):
    silent = speech.with_samples(np.zeros_like(speech.samples))
    for row in evaluate(name, speech, silent):
        assert (row.status, row.value, row.reason) == ("failed", None, "degraded audio is silent")


def test_dnsmos_never_scores_near_silence(speech):
    whisper = white_noise(3.0, 16000, seed=1, amplitude=1e-5)  # about -100 dBFS
    assert {r.status for r in evaluate("dnsmos", None, whisper)} == {"failed"}


@pytest.mark.parametrize("name", [n for n in AVAILABLE if METRICS.get(n).spec.scores_silence])
def test_silence_scores_worse_than_mild_noise(name, speech):
    silent = speech.with_samples(np.zeros_like(speech.samples))
    assert only(name, speech, silent).value > only(name, speech, noisy(speech, 30)).value


@pytest.mark.parametrize("name", [n for n in AVAILABLE if METRICS.get(n).spec.needs_reference])
def test_silent_reference_fails(name, speech):
    silent = speech.with_samples(np.zeros_like(speech.samples))
    assert {(r.status, r.reason) for r in evaluate(name, silent, speech)} == {("failed", "reference audio is silent")}


def test_pesq_no_utterances_is_a_failed_row(monkeypatch, speech):
    monkeypatch.setattr(wrapper, "SILENCE_DBFS", -math.inf)  # let digital silence reach PESQ
    row = only("pesq_wb", speech.with_samples(np.zeros_like(speech.samples)), speech)
    assert (row.status, row.reason) == ("failed", "PESQ: No utterances detected")


def test_stoi_with_too_little_speech_fails_instead_of_1e_5(arctic):
    # pystoi would return 1e-5; a burst of 0.15 s speech in 1 s of digital silence is not scorable.
    x = np.zeros((1, 16000), dtype=np.float32)
    x[:, 4000:6400] = arctic.samples[:, 8000:10400]
    row = only("stoi", arctic.with_samples(x), arctic.with_samples(x))
    assert row.status == "failed" and "fewer than 30 frames" in row.reason


def test_library_nan_is_a_failed_row_not_a_score(monkeypatch, speech):
    monkeypatch.setattr(wrapper, "SILENCE_DBFS", -math.inf)  # ViSQOL returns NaN for a silent input
    row = only("visqol_audio", speech, speech.with_samples(np.zeros_like(speech.samples)))
    assert row.status == "failed" and row.value is None and "non-finite" in row.reason


def test_non_finite_and_exceptions_become_rows(patched_registry, speech):
    patched_registry.add(
        "nan", Metric(toy_spec(name="nan", outputs=("a", "b")), lambda r, d, s: {"a": math.nan, "b": 1.0})
    )
    patched_registry.add("boom", Metric(toy_spec(name="boom"), lambda r, d, s: 1 / 0))
    a, b = evaluate("nan", speech, speech)
    assert (a.status, a.value, b.status, b.value) == ("failed", None, "ok", 1.0)
    row = only("boom", speech, speech)
    assert (row.status, row.reason) == ("failed", "ZeroDivisionError: division by zero")


def _raise_exit(ref, deg, rate):
    raise SystemExit(2)


@pytest.mark.parametrize(
    "returned, reason",
    [
        ("4.5", "the metric returned str '4.5', not a number"),
        (True, "the metric returned bool True, not a number"),
        ({"tyo": 1.0}, "the metric returned unknown outputs ['tyo'], not ['toy']"),
    ],
)
def test_a_value_that_is_not_a_score_fails_its_row(patched_registry, speech, returned, reason):
    patched_registry.add("toy", Metric(toy_spec(), lambda r, d, s: returned))
    row = only("toy", speech, speech)
    assert (row.status, row.value, row.reason) == ("failed", None, reason)


def test_a_metric_calling_sys_exit_fails_its_own_rows_only(patched_registry, speech):
    patched_registry.add("quits", Metric(toy_spec(name="quits"), _raise_exit))
    row = only("quits", speech, speech)
    assert (row.status, row.reason) == ("failed", "SystemExit: 2")


def test_missing_package_fails_with_install_hint(patched_registry, speech):
    spec = toy_spec(requires=("evalkit_no_such_module",), install="pip install no-such-thing")
    patched_registry.add("toy", Metric(spec, lambda r, d, s: 1.0))
    row = only("toy", speech, speech)
    assert row.status == "failed" and "pip install no-such-thing" in row.reason


@pytest.mark.slow
def test_short_sine_never_gives_nan():
    tone = sinusoid(440, seconds=1.2)
    for name in AVAILABLE:
        for row in evaluate(name, tone, noisy(tone, 20)):
            assert row.value is None or math.isfinite(row.value), row


# ---------------------------------------------------------------- contract


def test_every_metric_is_available():
    missing = {
        name: METRICS.get(name).unavailable()
        for name in METRICS.names()
        if name not in AVAILABLE and name not in LOCAL_WEIGHTS
    }
    assert not missing, missing


@pytest.mark.parametrize("name", METRICS.names())
def test_spec_is_sane(name):
    spec = METRICS.get(name).spec
    assert spec.name == name and spec.version and spec.description
    assert spec.outputs and len(set(spec.outputs)) == len(spec.outputs)
    assert spec.min_duration > 0
    assert spec.sample_rates is None or (spec.sample_rates and all(r >= 8000 for r in spec.sample_rates))
    assert spec.package is None or spec.requires, "a metric backed by a package lists the modules it needs"


@pytest.mark.parametrize("name", AVAILABLE)
def test_contract_one_valid_row_per_output(name, speech):
    spec = METRICS.get(name).spec
    rows = evaluate(name, speech, noisy(speech, 20), text=SPEECH_TEXT)
    assert [r.metric for r in rows] == list(spec.outputs)
    for row in rows:
        assert row.status == "ok" and math.isfinite(row.value) and row.reason == ""
        assert row.metric_version == spec.version and row.package_version and row.seconds >= 0
        assert row.metric_rate == choose_rate(speech.sample_rate, spec.sample_rates)


# ---------------------------------------------------------------- downstream metrics


def test_mcd_dtw_forgives_timing_that_mcd_punishes(arctic):
    x = arctic.samples[0].astype(np.float64)
    stretched = np.interp(np.arange(0, x.size, 0.97), np.arange(x.size), x)[: x.size]  # 3 % slower, same content
    deg = arctic.with_samples(stretched[None, :])
    assert only("mcd_dtw", arctic, deg).value < 0.8 * only("mcd", arctic, deg).value


def test_dtw_is_the_brute_force_optimum():
    from evalkit.metrics.distortion import dtw

    cost = np.random.default_rng(3).random((9, 13))
    table = np.full((10, 14), np.inf)
    table[0, 0] = 0.0
    for i in range(1, 10):
        for j in range(1, 14):
            table[i, j] = cost[i - 1, j - 1] + min(table[i - 1, j], table[i, j - 1], table[i - 1, j - 1])
    total, steps = dtw(cost)
    assert total == pytest.approx(table[-1, -1]) and 13 <= steps <= 9 + 13 - 1


def harmonic_tone(f0: float, seconds: float = 2.0, vibrato: float = 0.05, rate: int = 16000) -> Audio:
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(f0 * (1 + vibrato * np.sin(2 * np.pi * 3 * t))) / rate
    return Audio(0.3 * sum(np.sin(k * phase) / k for k in range(1, 8)), rate)


def test_f0_metrics_on_tones_with_known_f0():
    a, b = harmonic_tone(200.0), harmonic_tone(220.0)
    values = scores("f0", a, b)
    assert values["f0_rmse_cents"] == pytest.approx(1200 * math.log2(220 / 200), abs=3.0)
    assert values["f0_corr"] > 0.99 and values["vde"] < 0.02
    same = scores("f0", a, a)
    assert same["f0_rmse_cents"] == 0.0 and same["vde"] == 0.0
    half_voiced = a.with_samples(np.where(np.arange(a.frames) < a.frames // 2, a.samples[0], 0.0)[None, :])
    assert scores("f0", a, half_voiced)["vde"] == pytest.approx(0.5, abs=0.05)


def test_f0_without_common_pitch_fails_with_reason():
    noise = white_noise(2.0, 16000, seed=5, amplitude=0.1)
    rows = evaluate("f0", harmonic_tone(150.0), noise, align=None)  # F0 own rule, not alignment
    assert {r.status for r in rows} == {"failed"} and "voiced in both" in rows[0].reason


@pytest.mark.slow
def test_speaker_similarity_ranks_same_speaker_pairs_above_different_speakers():
    from evalkit.datasets import load_dataset
    from evalkit.demo_pipeline import DEMO_MANIFEST
    from evalkit.metrics.speaker import _embedding

    items = [i for i in load_dataset(DEMO_MANIFEST) if i.speaker]
    embedded = [
        (i.speaker, _embedding(i.load().samples.mean(axis=0).astype(np.float64)))
        for i in items
        if i.load().sample_rate == 16000
    ]
    same, different = [], []
    for k, (speaker_a, a) in enumerate(embedded):
        for speaker_b, b in embedded[k + 1 :]:
            (same if speaker_a == speaker_b else different).append(float(a @ b))
    wins = np.mean([s > d for s in same for d in different])  # the ranking's AUC
    assert same and different and wins > 0.9 and np.mean(same) > np.mean(different) + 0.15


@pytest.mark.slow
def test_dnsmos_scores_are_speechmos_own(speech):
    from speechmos import dnsmos as speechmos_dnsmos

    expected = speechmos_dnsmos.run(np.clip(speech.samples[0].astype(np.float64), -1, 1), 16000)
    assert scores("dnsmos", None, speech)["dnsmos_ovrl"] == pytest.approx(expected["ovrl_mos"], abs=1e-5)


@pytest.mark.slow
def test_plcmos_repeats_and_leaves_the_global_generator_alone(speech):
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    first, second = only("plcmos", None, speech).value, only("plcmos", None, speech).value
    assert first == second and np.array_equal(np.random.get_state()[1], before)


def test_true_wer_is_skipped_without_text(speech):
    rows = evaluate("wer", None, speech)
    assert {(r.status, r.value) for r in rows} == {("skipped", None)} and "no text" in rows[0].reason


@pytest.mark.parametrize(
    "text, reason",
    [
        ("Call 911 now", "has digits (911)"),
        ("日本語のテキスト", "letters outside English's alphabet"),
        ("hello мир", "letters outside English's alphabet"),
        ("?!... --", "no words, only punctuation"),
        ("   ", "no text"),
    ],
)
def test_true_wer_withholds_text_the_recogniser_cannot_write_the_same_way(speech, text, reason):
    """Dropping 911 from the text would count the recogniser's "nine one one" as three errors."""
    rows = evaluate("wer", None, speech, text=text)
    assert {(r.status, r.value) for r in rows} == {("skipped", None)} and reason in rows[0].reason


def test_true_wer_folds_accents_rather_than_cutting_words():
    from evalkit.metrics.content import _english_text

    assert _english_text("Le café, naïve!") == "Le cafe, naive!"


@pytest.mark.slow
def test_asr_mismatch_is_zero_for_identical_audio_and_words_are_recognised(speech):
    from evalkit.content.asr import transcribe

    assert scores("asr_mismatch", speech, speech) == {"wer_asr": 0.0, "cer_asr": 0.0}
    assert len(transcribe(speech.samples[0].astype(np.float64)).split()) >= 4


# ---------------------------------------------------------------- local-weights hooks


@pytest.mark.parametrize("name", LOCAL_WEIGHTS)
def test_local_weight_hooks_are_unavailable_with_the_reason_until_set(name, monkeypatch, speech):
    spec = METRICS.get(name).spec
    monkeypatch.delenv(spec.weights_env, raising=False)
    reason = METRICS.get(name).unavailable()
    assert reason and spec.weights_env in reason
    assert {(r.status, r.reason) for r in evaluate(name, speech, speech)} == {("failed", reason)}
    monkeypatch.setenv(spec.weights_env, "/nonexistent/weights.pt")
    assert "does not exist" in METRICS.get(name).unavailable()


@pytest.mark.parametrize("name, output", [("utmos", "utmos"), ("nisqa", "nisqa_mos")])
def test_mos_hooks_run_random_torchscript_weights(name, output, monkeypatch, tmp_path, speech):
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv1d(1, 4, 400, stride=160),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool1d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 1),
    )

    class Mos(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, wave: torch.Tensor) -> torch.Tensor:
            return 3.0 + torch.tanh(self.net(wave[:, None, :]))

    path = tmp_path / "model.pt"
    torch.jit.script(Mos()).save(str(path))
    monkeypatch.setenv(METRICS.get(name).spec.weights_env, str(path))
    assert METRICS.get(name).unavailable() is None
    row = only(name, None, speech)
    with torch.inference_mode():
        expected = Mos()(torch.from_numpy(speech.samples[:1].astype(np.float32))).item()
    assert row.status == "ok" and row.metric == output and row.value == pytest.approx(expected, abs=1e-5)
    monkeypatch.setenv(METRICS.get(name).spec.weights_env, str(tmp_path))  # a folder, not an export
    assert only(name, None, speech).status == "failed"


@pytest.mark.slow
def test_whisper_hook_runs_a_random_checkpoint(monkeypatch, tmp_path, speech):
    folder = random_whisper(tmp_path)
    monkeypatch.setenv("EVALKIT_WHISPER_PATH", str(folder))
    rows = evaluate("whisper_mismatch", speech, speech)
    assert [r.metric for r in rows] == ["wer_whisper", "cer_whisper"]
    # Random weights say nonsense, but the same nonsense for the same audio (greedy decoding).
    assert all(r.status == "ok" and r.value == 0.0 for r in rows) or "heard no words" in rows[0].reason


def random_whisper(tmp_path: Path) -> Path:
    """A tiny randomly initialised Whisper with a 26-letter tokenizer, saved as a local checkpoint."""
    import json

    import torch
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    special = [
        "<|endoftext|>",
        "<|startoftranscript|>",
        "<|en|>",
        "<|transcribe|>",
        "<|translate|>",
        "<|notimestamps|>",
        "<|nocaptions|>",
        "<|startofprev|>",
        "<|startoflm|>",
    ]
    vocab = {token: i for i, token in enumerate([chr(c) for c in range(ord("a"), ord("z") + 1)] + ["Ġ"] + special)}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = WhisperTokenizer(
        str(tmp_path / "vocab.json"),
        str(tmp_path / "merges.txt"),
        unk_token=special[0],
        bos_token=special[0],
        eos_token=special[0],
        pad_token=special[0],
    )
    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=len(vocab),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_target_positions=64,
        decoder_start_token_id=vocab["<|startoftranscript|>"],
        eos_token_id=vocab[special[0]],
        pad_token_id=vocab[special[0]],
        bos_token_id=vocab[special[0]],
    )
    folder = tmp_path / "whisper"
    WhisperForConditionalGeneration(config).save_pretrained(folder)
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tokenizer).save_pretrained(folder)
    return folder

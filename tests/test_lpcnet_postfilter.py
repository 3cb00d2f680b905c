"""The LPCNet decoder's formant postfilter: stability, level, formant sharpening, and its card parameter."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import lfilter, welch

from evalkit.audio import Audio
from evalkit.errors import ConfigError
from evalkit.lpcnet.features import FRAME, PREEMPHASIS, SCALE, features, lpc_from_cepstrum, preemphasis
from evalkit.lpcnet.postfilter import MAX_GAIN, Postfilter

sys.path.insert(0, str(Path(__file__).parent))
from fuzz_codecs import tiny_lpcnet_weights  # noqa: E402  the fuzz test's tiny models

RATE = 16000


def _lpc_of(x: np.ndarray) -> np.ndarray:
    """Per-frame LPC as the decoder derives them (from the cepstrum) for a signal in [-1, 1]."""
    return lpc_from_cepstrum(features(x)[:, :18])[0]


def _synthesis(x: np.ndarray) -> np.ndarray:
    """x as the decoder's synthesis filter outputs it: pre-emphasised 16-bit values."""
    return preemphasis(x * SCALE, PREEMPHASIS)[: len(x)]


def _db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(x)) + 1e-30)


def formant_vowel(seconds: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(white noise through three formants at 500, 1500, 2500 Hz, the all-pole polynomial)."""
    a = [1.0]
    for freq, bandwidth in ((500, 150), (1500, 200), (2500, 250)):
        r = np.exp(-np.pi * bandwidth / RATE)
        a = np.convolve(a, [1, -2 * r * np.cos(2 * np.pi * freq / RATE), r * r])
    drive = np.random.default_rng(1).standard_normal(int(seconds * RATE))
    return lfilter([1.0], a, drive), np.asarray(a)


@pytest.mark.parametrize(
    "signal",
    [
        np.zeros(RATE),
        np.full(RATE, 0.5),  # DC
        np.clip(3.0 * np.sin(2 * np.pi * 220 * np.arange(RATE) / RATE), -1, 1),  # clipped tone
        np.r_[np.zeros(RATE // 2), np.random.default_rng(2).uniform(-1, 1, RATE // 2)],  # onset from silence
    ],
    ids=["silence", "dc", "clipped", "onset"],
)
def test_stays_finite_and_bounded_on_degenerate_input(signal):
    speech = _synthesis(signal)
    out = Postfilter()(speech, _lpc_of(signal), FRAME)
    assert out.shape == speech.shape and np.all(np.isfinite(out))
    size = Postfilter().subframe
    rms = lambda x: np.sqrt(np.mean(x[: len(x) // size * size].reshape(-1, size) ** 2, axis=1))  # noqa: E731
    assert np.all(rms(out) <= MAX_GAIN * rms(speech) + 1.0)  # never louder than the bound (plus 1 LSB)
    if not np.any(signal):
        assert not np.any(out)


def test_rejects_settings_that_would_not_sharpen():
    with pytest.raises(ValueError):
        Postfilter(numerator=0.9, denominator=0.8)
    with pytest.raises(ValueError):
        Postfilter(numerator=0.5, denominator=1.0)


def test_flat_spectrum_keeps_its_level_and_shape():
    speech = 3000.0 * np.random.default_rng(0).standard_normal(RATE)  # white where the postfilter runs
    signal = lfilter([1.0], [1.0, -PREEMPHASIS], speech) / SCALE  # the input whose pre-emphasis that is
    out = Postfilter()(speech, _lpc_of(signal), FRAME)
    assert abs(_db(out[800:]) - _db(speech[800:])) < 0.5
    _, before = welch(speech, RATE, nperseg=512)
    _, after = welch(out, RATE, nperseg=512)
    change = 10 * np.log10(after[4:-4] / before[4:-4])
    assert np.max(np.abs(change - np.mean(change))) < 1.5  # dB: no formant carved into a flat spectrum


def test_sharpens_the_formant_peaks_of_an_all_pole_spectrum():
    speech, a = formant_vowel()
    lpc = np.tile(a[1:], (len(speech) // FRAME + 1, 1))
    out = Postfilter()(speech, lpc, FRAME)
    freqs, before = welch(speech, RATE, nperseg=1024)
    _, after = welch(out, RATE, nperseg=1024)
    at = lambda spectrum, hz: 10 * np.log10(spectrum[np.argmin(np.abs(freqs - hz))])  # noqa: E731
    contrast = lambda s: at(s, 1500) - at(s, 1000)  # noqa: E731  formant against the valley below it
    assert contrast(after) > contrast(before) + 3.0
    assert freqs[np.argmax(after)] == pytest.approx(freqs[np.argmax(before)], abs=2 * RATE / 1024)
    assert abs(_db(out[800:]) - _db(speech[800:])) < 1.0  # the gain control keeps the level


def _codec(path: Path, **params):
    from evalkit.lpcnet.codec import LPCNetCodec

    return LPCNetCodec(str(path), hashlib.sha256(path.read_bytes()).hexdigest(), **params)


def test_card_parameter_changes_the_decoder_only(tmp_path):
    pytest.importorskip("torch")
    weights = tiny_lpcnet_weights(tmp_path)[0]
    x, _ = formant_vowel(0.5)
    voice = Audio((0.2 * x / np.max(np.abs(x)))[None].astype(np.float32), RATE, "voice")
    plain, filtered = _codec(weights, postfilter=False), _codec(weights, postfilter=True)
    assert filtered.config["postfilter"] is True and plain.config["postfilter"] is False
    stream, other = plain.encode_packets(voice), filtered.encode_packets(voice)
    assert stream.packets == other.packets  # the same 64-bit packets: the postfilter is decoder-side
    a, b = plain.decode_packets(stream).samples[0], filtered.decode_packets(other).samples[0]
    assert np.all(np.isfinite(b)) and not np.allclose(a, b)
    assert np.array_equal(b, filtered.decode_packets(other).samples[0])  # deterministic
    assert " pf " in filtered.info.version and " pf " not in plain.info.version  # the cache keys differ
    with pytest.raises(ConfigError, match="postfilter"):
        _codec(weights, postfilter="yes")


def test_every_lpcnet_card_names_its_postfilter_in_a_version_the_store_keeps():
    from evalkit.cards import load_cards

    cards = [c for c in load_cards().values() if c.backend.startswith("lpcnet") and c.unavailable() is None]
    assert cards
    for card in cards:
        version = card.build().info.version
        assert len(version) <= 64 and (" pf " in version) == card.params.get("postfilter", True), card.name

"""Reference conditions: BS.1534-3 low-pass anchors meet their mask; the P.810 MNRU hits its Q."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from evalkit.audio import Audio, resample
from evalkit.cards import load_cards
from evalkit.codecs.reference import MNRU, Lowpass, anchor_taps, mnru_process
from evalkit.errors import ConfigError


def response_db(taps: np.ndarray, sample_rate: int, points: int = 1 << 15) -> tuple[np.ndarray, np.ndarray]:
    freqs = np.linspace(0.0, sample_rate / 2, points)
    _, h = signal.freqz(taps, worN=freqs, fs=sample_rate)
    return freqs, 20 * np.log10(np.maximum(np.abs(h), 1e-12))


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(clean**2) / np.sum((noisy - clean) ** 2)))


def roundtrip_native(codec, samples: np.ndarray) -> np.ndarray:
    """Encode and decode at the codec's rate; drop the declared lookahead."""
    audio = Audio(samples, codec.info.sample_rate)
    out = codec.decode(codec.encode(audio)).samples[0].astype(np.float64)
    return out[codec.info.lookahead_samples :]


# -- low-pass anchors ----------------------------------------------------------------------


@pytest.mark.parametrize("cutoff, sample_rate", [(3500, 48000), (7000, 48000), (3500, 44100), (3500, 16000)])
def test_anchor_meets_bs1534_mask(cutoff, sample_rate):
    taps = anchor_taps(cutoff, sample_rate)
    freqs, db = response_db(taps, sample_rate)
    assert np.max(np.abs(db[freqs <= cutoff])) <= 0.1, "pass-band ripple beyond +-0.1 dB"
    assert np.max(db[freqs >= cutoff * 8 / 7]) <= -25.0, "less than 25 dB at 8/7 of the cut-off"
    assert np.max(db[freqs >= cutoff * 9 / 7]) <= -50.0, "less than 50 dB at 9/7 of the cut-off"


def test_anchor_7k_at_16k_fits_the_band():
    # 8/7 fc is Nyquist here: the transition is squeezed into 7-8 kHz and still holds 50 dB there.
    taps = anchor_taps(7000, 16000)
    freqs, db = response_db(taps, 16000)
    assert np.max(np.abs(db[freqs <= 7000])) <= 0.1
    assert db[-1] <= -50.0


@pytest.mark.parametrize("cutoff", [3500, 7000])
def test_anchor_is_linear_phase_with_integer_delay(cutoff):
    codec = Lowpass(cutoff, 48000)
    taps = codec.taps
    assert len(taps) % 2 == 1 and np.allclose(taps, taps[::-1])
    assert codec.info.lookahead_samples == (len(taps) - 1) // 2
    assert codec.info.family == "anchor" and f"n={len(taps)}" in codec.info.version
    impulse = np.zeros(4800)
    impulse[1000] = 0.5
    out = roundtrip_native(codec, impulse)
    assert int(np.argmax(np.abs(out))) == 1000


def test_anchor_passes_and_stops_tones_through_the_bitstream():
    codec = Lowpass(3500, 48000)
    t = np.arange(48000) / 48000
    for freq, low, high in [(1000, -0.1, 0.1), (3400, -0.1, 0.1), (4500, -200, -50)]:
        tone = 0.5 * np.sin(2 * np.pi * freq * t)
        out = roundtrip_native(codec, tone)[2000:-2000]
        gain = 20 * np.log10(np.sqrt(np.mean(out**2)) / np.sqrt(np.mean(tone[2000:-2000] ** 2)) + 1e-12)
        assert low <= gain <= high, f"{freq} Hz: {gain:.2f} dB"


@pytest.mark.parametrize(
    "params", [{"cutoff_hz": 30000}, {"cutoff_hz": 0}, {"sample_rate": 4000}, {"sample_rate": 48000.5}]
)
def test_anchor_rejects_impossible_designs(params):
    with pytest.raises(ConfigError):
        Lowpass(**params)


def test_anchor_cards():
    cards = load_cards()
    for name, cutoff in [("anchor-lp35", 3500), ("anchor-lp70", 7000)]:
        codec = cards[name].build()
        assert (codec.cutoff_hz, codec.info.sample_rate) == (cutoff, 48000)


# -- MNRU ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wb_speech(speech) -> np.ndarray:
    """The speech clip limited to 100-6500 Hz, so the MNRU's band filters leave it as is."""
    sos = signal.butter(8, [100, 6500], "bandpass", fs=16000, output="sos")
    return signal.sosfiltfilt(sos, resample(speech, 16000).samples[0].astype(np.float64))


@pytest.mark.parametrize("q_db", [5, 10, 25, 35])
def test_mnru_snr_is_q(q_db, speech):
    """P.810's Q: signal-path power over modulated-noise power, both at the output."""
    x = resample(speech, 16000).samples[0].astype(np.float64)
    clean = mnru_process(x, q_db, "wb", noise=False)
    assert snr_db(clean, mnru_process(x, q_db, "wb")) == pytest.approx(q_db, abs=0.5)


@pytest.mark.parametrize("q_db", [5, 10, 25])
def test_mnru_snr_against_input_through_the_bitstream(q_db, wb_speech):
    out = roundtrip_native(MNRU(q_db, "wb"), wb_speech)
    assert snr_db(wb_speech, out) == pytest.approx(q_db, abs=1.0)


def test_mnru_narrowband(speech):
    x = resample(speech, 8000).samples[0].astype(np.float64)
    clean = mnru_process(x, 15, "nb", noise=False)
    assert snr_db(clean, mnru_process(x, 15, "nb")) == pytest.approx(15, abs=0.5)
    assert MNRU(15, "nb").info.sample_rate == 8000


def test_mnru_snr_falls_with_q(wb_speech):
    snrs = [snr_db(wb_speech, roundtrip_native(MNRU(q, "wb"), wb_speech)) for q in (30, 20, 10, 0)]
    assert all(a > b + 5 for a, b in zip(snrs, snrs[1:])), snrs


def test_mnru_is_deterministic_per_seed(wb_speech):
    audio = Audio(wb_speech, 16000)
    first, again, other = MNRU(10, seed=0), MNRU(10, seed=0), MNRU(10, seed=1)
    assert first.encode(audio) == again.encode(audio)
    assert first.encode(audio) != other.encode(audio)
    assert first.info.lookahead_samples == 0 and first.info.family == "mnru"


@pytest.mark.parametrize("params", [{"q_db": 10, "band": "swb"}, {"q_db": "ten"}, {"q_db": 10, "seed": -1}])
def test_mnru_rejects_bad_parameters(params):
    with pytest.raises(ConfigError):
        MNRU(**params)


def test_mnru_cards():
    cards = load_cards()
    for name, q_db in [("mnru-q10-wb", 10), ("mnru-q25-wb", 25)]:
        codec = cards[name].build()
        assert (codec.q_db, codec.band, codec.info.sample_rate) == (q_db, "wb", 16000)

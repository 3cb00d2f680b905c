"""The shared mel filterbank equals librosa's (pinned) on the settings evalkit uses."""

import numpy as np
import pytest

from evalkit.melbank import mel_filterbank


@pytest.mark.parametrize(
    "rate, n_fft, n_mels, low, high, unit_area",
    [
        (16000, 512, 40, 60.0, 6000.0, False),  # content spectra
        (16000, 400, 40, 0.0, None, False),  # LPCNet speaker features
        (24000, 2048, 64, 0.0, None, True),  # neural mel loss
        (16000, 256, 64, 0.0, None, True),
    ],
)
def test_mel_filterbank_equals_librosa(rate, n_fft, n_mels, low, high, unit_area):
    librosa = pytest.importorskip("librosa")
    expected = librosa.filters.mel(
        sr=rate,
        n_fft=n_fft,
        n_mels=n_mels,
        fmin=low,
        fmax=high,
        htk=True,
        norm="slaney" if unit_area else None,
        dtype=np.float64,
    )
    bank = mel_filterbank(rate, n_fft, n_mels, low, high, unit_area)
    assert bank.shape == (n_mels, n_fft // 2 + 1)
    np.testing.assert_allclose(bank, expected, rtol=1e-12, atol=1e-15)


def test_triangles_peak_at_one_and_the_cached_bank_is_read_only():
    bank = mel_filterbank(16000, 512, 40, 60.0, 6000.0)
    assert np.all(bank.max(axis=1) > 0.5) and bank.max() <= 1.0 and bank.min() >= 0.0
    with pytest.raises(ValueError):
        bank[0, 0] = 2.0

"""DNSMOS with shared convolutions: equal to speechmos's own scoring on real clips, short and long."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import add_noise

from evalkit.audio import Audio, resample
from evalkit.datasets import load_dataset
from evalkit.demo_pipeline import DEMO_MANIFEST
from evalkit.metrics import dnsmos_windows, nonintrusive

pytestmark = pytest.mark.slow
TOLERANCE = 1e-3  # MOS points; the two paths differ by float rounding only (about 1e-6 here)


@pytest.fixture(scope="module")
def demo_speech() -> np.ndarray:
    return np.concatenate([resample(i.load(), 16000).samples[0] for i in load_dataset(DEMO_MANIFEST)])


def _speechmos(audio: np.ndarray, personalized: bool) -> dict:
    """speechmos's DNSMOS.__call__, windows one by one, on the same single-thread sessions."""
    from speechmos.dnsmos import DNSMOS

    folder = nonintrusive._models() / ("pdnsmos_models" if personalized else "dnsmos_models")
    model = DNSMOS.__new__(DNSMOS)
    model.primary_model_path = str(folder / "sig_bak_ovr.onnx")
    model.onnx_sess = nonintrusive._session(folder / "sig_bak_ovr.onnx")
    model.p808_onnx_sess = nonintrusive._session(nonintrusive._models() / "dnsmos_models" / "model_v8.onnx")
    return model(np.clip(audio, -1.0, 1.0), 16000, personalized)


@pytest.mark.parametrize(
    ("seconds", "offset", "noise_db", "personalized"),
    [
        (2.37, 0, None, False),  # tiled up to a window, a whole (odd) number of 10 ms frames: front repeated
        (2.50007, 8000, None, False),  # tiled, not a whole number of frames: front computed throughout
        (11.5, 16000, 20, False),  # three windows, noisy
        (9.2, 40000, None, True),  # one window, personalised model
    ],
)
def test_scores_match_speechmos(demo_speech, seconds, offset, noise_db, personalized):
    clip = demo_speech[offset : offset + int(seconds * 16000)].astype(np.float64)
    if noise_db is not None:
        clip = add_noise(Audio(clip, 16000), noise_db, seed=3).samples[0]
    expected = _speechmos(clip, personalized)
    got = nonintrusive._dnsmos_scores(clip, 16000, personalized)
    for key in ("sig_mos", "bak_mos", "ovrl_mos", "p808_mos"):
        assert got[key] == pytest.approx(expected[key], abs=TOLERANCE), key


def test_window_edges_and_skipped_chunks_match_the_whole_network(demo_speech):
    """Windows far apart on a long clip (the chunks between them are skipped): each window's raw
    outputs equal the unsplit network's on that window alone."""
    model, trunk, head = nonintrusive._dnsmos_model(False)
    primary = nonintrusive._session(nonintrusive._models() / "dnsmos_models" / "sig_bak_ovr.onnx")
    audio = demo_speech[: 40 * 16000]
    starts = [300, 2700]  # frames; the second window crosses a chunk boundary
    got = dnsmos_windows.raw_scores(trunk, head, audio, starts)
    for start, row in zip(starts, got):
        window = dnsmos_windows.window_audio(audio, start).astype(np.float32)[np.newaxis]
        np.testing.assert_allclose(row, primary.run(None, {"input_1": window})[0][0], atol=1e-4)


def test_windows_follow_speechmos_rounding():
    """speechmos's window bounds int((i + 9.01) * 16000) fall one sample short for some seconds i,
    and it skips those windows; the scored windows are the same."""
    starts = dnsmos_windows.window_starts(60 * 16000, 16000)
    seconds = [s // 100 for s in starts]
    assert seconds[:7] == list(range(7)) and 7 not in seconds and len(seconds) < 51
    assert all(int((i + 9.01) * 16000) - i * 16000 == 144160 for i in seconds)
